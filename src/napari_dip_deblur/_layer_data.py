"""The one place where the arrays to deblur are taken out of napari layers.

Pure functions of layers and the viewer's dims state (passed in explicitly, no viewer
needed): numpy in, numpy out, nothing is computed on the pixels. A plane is the 2-D image
on the displayed axes (with its colour axis for RGB(A) layers); a stack is the layer with
its displayed axes moved last (:func:`planes_last`), as the library's
:func:`~napari_dip_deblur.restore.restore_iter` expects; a region is a Shapes layer's
rectangle in the image's pixel coordinates (:func:`region_from_shapes`); a known kernel is
an image layer's data, copied as it is (:func:`kernel_from_layer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import napari

__all__ = [
    "Plane",
    "PlaneLocation",
    "kernel_from_layer",
    "locate_plane",
    "plane_from_layer",
    "planes_back",
    "planes_last",
    "region_from_shapes",
]


@dataclass(frozen=True)
class PlaneLocation:
    """Where a 2-D plane lies in an image layer (no pixel data).

    Attributes
    ----------
    index : tuple of int or slice
        The index into ``layer.data`` that gives ``data`` (``slice(None)`` on the two
        displayed axes and on an RGB layer's colour axis, an integer on every other axis).
    axes : tuple of int
        The two layer axes of the plane, in increasing order.
    label : str
        A human-readable position of the plane, e.g. ``"t=3, z=10"``, ``"axis -3=2"`` (for
        unnamed axes), or ``"2-D image"``.
    scale, translate : tuple of float
        The layer's scale and translate on the two axes of the plane.
    rgb : bool
        Whether the layer is RGB(A): its data has a last colour axis, kept in the plane.
    """

    index: tuple[int | slice, ...]
    axes: tuple[int, int]
    label: str
    scale: tuple[float, float]
    translate: tuple[float, float]
    rgb: bool = False

    @property
    def stack_axes(self) -> tuple[int, ...]:
        """The layer axes besides the plane's (and the colour axis), in order."""
        return tuple(self.position)

    @property
    def position(self) -> dict[int, int]:
        """The integer index of every non-displayed layer axis, as ``{axis: index}``."""
        return {ax: int(i) for ax, i in enumerate(self.index) if not isinstance(i, slice)}

    def as_metadata(self) -> dict[str, Any]:
        """The location as plain data, for ``layer.metadata``."""
        return {
            "plane": self.label,
            "plane_index": {str(k): v for k, v in self.position.items()},
            "plane_axes": list(self.axes),
        }


@dataclass(frozen=True)
class Plane:
    """A 2-D plane of an image layer, ready to be deblurred.

    Attributes
    ----------
    data : (M, N) or (M, N, C) ndarray
        A copy of the plane, in the layer's dtype (the layer's data is never aliased); RGB
        layers keep their colour axis last.
    location : PlaneLocation
        Where the plane came from.
    """

    data: np.ndarray
    location: PlaneLocation


def plane_from_layer(
    layer: napari.layers.Layer,
    point: Sequence[float] | None = None,
    displayed: Sequence[int] | None = None,
    axis_labels: Sequence[str] | None = None,
) -> Plane:
    """Take (a copy of) the 2-D plane shown in the viewer out of an image layer.

    Parameters and errors are those of `locate_plane`.

    Returns
    -------
    Plane
        The plane, copied, and where it came from.
    """
    where = locate_plane(layer, point, displayed, axis_labels)
    return Plane(data=np.array(layer.data[where.index], copy=True), location=where)


def locate_plane(
    layer: napari.layers.Layer,
    point: Sequence[float] | None = None,
    displayed: Sequence[int] | None = None,
    axis_labels: Sequence[str] | None = None,
) -> PlaneLocation:
    """Find the 2-D plane of an image layer that the viewer shows, without reading it.

    Parameters
    ----------
    layer : napari.layers.Layer
        Must be a single-scale ``Image`` layer with at least two (spatial) axes; an RGB(A)
        layer's colour axis is kept in the plane.
    point : sequence of float, optional
        The viewer's position in world coordinates (``viewer.dims.point``); its trailing
        ``layer.ndim`` entries locate the plane on the non-displayed axes. Default: the
        first plane (index 0 on every non-displayed axis).
    displayed : sequence of int, optional
        The world axes on screen (``viewer.dims.displayed``). Default: the last two.
    axis_labels : sequence of str, optional
        World axis names for the label (``viewer.dims.axis_labels``).

    Returns
    -------
    PlaneLocation
        The index of the plane in ``layer.data`` and its scale and translate.

    Raises
    ------
    TypeError
        If ``layer`` is not an Image layer.
    ValueError
        If the layer is multiscale, has fewer than two axes, if the viewer shows
        three axes (3-D display), or if the current position lies outside the layer.
    """
    from napari.layers import Image

    if not isinstance(layer, Image):
        raise TypeError(
            f"{layer.name!r} is a {type(layer).__name__} layer; choose an Image layer to deblur."
        )
    if layer.multiscale:
        raise ValueError(
            f"{layer.name!r} is a multiscale (pyramid) image, which is not supported yet; "
            "open its full-resolution level as a plain image layer."
        )
    ndim = layer.ndim
    if ndim < 2:
        raise ValueError(f"{layer.name!r} has {ndim} axis; deblurring needs a 2-D image.")

    world_ndim = max(len(point), ndim) if point is not None else ndim
    offset = world_ndim - ndim  # layer axis i is world axis i + offset
    displayed = tuple(displayed) if displayed is not None else (world_ndim - 2, world_ndim - 1)
    if len(displayed) != 2:
        raise ValueError(
            "Deblurring works on one 2-D plane, but the viewer displays "
            f"{len(displayed)} axes; switch the viewer to 2-D display."
        )
    axes = tuple(sorted(int(d) - offset for d in displayed))
    if axes[0] < 0:
        raise ValueError(
            f"{layer.name!r} has no data along a displayed axis; display two of its axes."
        )

    if point is None:
        coords = np.zeros(ndim)
    else:
        coords = np.asarray(layer.world_to_data(np.asarray(point, dtype=float)), dtype=float)
    # napari's default axis labels, "-3", "-2", "-1", for any missing (or stale) ones
    labels = [str(k - world_ndim) for k in range(world_ndim)]
    if axis_labels is not None and len(axis_labels) == world_ndim:
        labels = [str(name) for name in axis_labels]
    index: list[int | slice] = []
    where: list[str] = []
    for ax in range(ndim):
        if ax in axes:
            index.append(slice(None))
            continue
        i = int(np.floor(coords[ax] + 0.5))
        if not 0 <= i < layer.data.shape[ax]:
            raise ValueError(
                f"The current position is outside {layer.name!r} along axis "
                f"{labels[ax + offset]!r} (index {i}, size {layer.data.shape[ax]}); "
                "move the slider into the layer."
            )
        index.append(i)
        name = labels[ax + offset]
        # napari's default labels are axis numbers ("-3"): say "axis -3=1", not "-3=1".
        where.append(f"axis {name}={i}" if name.lstrip("-").isdigit() else f"{name}={i}")

    rgb = bool(layer.rgb)
    if rgb:
        index.append(slice(None))  # the colour axis, last in layer.data
    scale = tuple(float(layer.scale[a]) for a in axes)
    translate = tuple(float(layer.translate[a]) for a in axes)
    return PlaneLocation(
        index=tuple(index),
        axes=(axes[0], axes[1]),
        label=", ".join(where) if where else "2-D image",
        scale=(scale[0], scale[1]),
        translate=(translate[0], translate[1]),
        rgb=rgb,
    )


def planes_last(data: Any, axes: tuple[int, int], rgb: bool = False) -> Any:
    """A view of a layer's data with the plane's two axes moved last (before the colour
    axis of RGB data): ``(*stack, M, N[, C])``, the layout of ``restore_iter``. No copy."""
    target = (-3, -2) if rgb else (-2, -1)
    return np.moveaxis(data, axes, target)


def planes_back(array: Any, axes: tuple[int, int], rgb: bool = False) -> Any:
    """The inverse of :func:`planes_last`: a view in the layer's axis order."""
    source = (-3, -2) if rgb else (-2, -1)
    return np.moveaxis(array, source, axes)


def region_from_shapes(
    shapes: napari.layers.Layer,
    image: napari.layers.Layer,
    location: PlaneLocation,
    point: Sequence[float] | None = None,
) -> Any:
    """The first rectangle of a Shapes layer as a region of an image layer's plane.

    The rectangle's corners are taken to world coordinates (the Shapes layer's own scale
    and translate) and then to the image's data coordinates; the region is the bounding box
    of the pixels whose centres lie inside, clipped to the plane.

    Parameters
    ----------
    shapes : napari.layers.Shapes
        Its first shape of type ``"rectangle"`` is used.
    image : napari.layers.Image
        The image the region is for.
    location : PlaneLocation
        The plane (`locate_plane`): the region lies on its two axes.
    point : sequence of float, optional
        The viewer's position (``viewer.dims.point``), for the axes the rectangle does not
        span.

    Returns
    -------
    napari_dip_deblur.regions.Region
        ``(y0, x0, height, width)`` in the plane's pixels. Not checked for size: the
        library refuses regions too small to estimate on, with a message.

    Raises
    ------
    TypeError
        If ``shapes`` is not a Shapes layer.
    ValueError
        If it has no rectangle, or the rectangle does not overlap the plane.
    """
    from napari.layers import Shapes

    from .regions import Region

    if not isinstance(shapes, Shapes):
        raise TypeError(f"{shapes.name!r} is a {type(shapes).__name__} layer; choose a "
                        "Shapes layer holding a rectangle.")
    kinds = list(shapes.shape_type)
    if "rectangle" not in kinds:
        raise ValueError(f"The Shapes layer {shapes.name!r} holds no rectangle: draw one "
                         "with its rectangle tool around a well-textured part of the image.")
    vertices = np.asarray(shapes.data[kinds.index("rectangle")], dtype=float)
    world_ndim = max(len(point) if point is not None else 0, image.ndim, shapes.ndim)
    base = np.zeros(world_ndim)
    if point is not None:
        base[world_ndim - len(point):] = np.asarray(point, dtype=float)
    corners = []
    for vertex in vertices:
        world = base.copy()
        moved = np.asarray(shapes.data_to_world(vertex), dtype=float)
        world[world_ndim - len(moved):] = moved
        data = np.asarray(image.world_to_data(world), dtype=float)
        corners.append((data[location.axes[0]], data[location.axes[1]]))
    rows, cols = (image.data.shape[a] for a in location.axes)
    (lo_y, lo_x), (hi_y, hi_x) = np.min(corners, axis=0), np.max(corners, axis=0)
    eps = 1e-6  # corners on pixel centres survive the round trip through world space
    y0, x0 = max(0, int(np.ceil(lo_y - eps))), max(0, int(np.ceil(lo_x - eps)))
    y1 = min(rows - 1, int(np.floor(hi_y + eps)))
    x1 = min(cols - 1, int(np.floor(hi_x + eps)))
    if y1 < y0 or x1 < x0:
        raise ValueError(f"The rectangle in {shapes.name!r} does not overlap the image "
                         f"{image.name!r} ({rows}x{cols} pixels).")
    return Region(y0, x0, y1 - y0 + 1, x1 - x0 + 1)


def kernel_from_layer(layer: napari.layers.Layer) -> np.ndarray:
    """A copy of an image layer's data, to be used as a known blur kernel.

    A measured PSF or the kernel layer of an earlier run. Nothing is checked or changed
    here beyond the layer's type: whether the array is a usable kernel (2-D, odd sides,
    non-negative, no larger than the image) is checked by the library
    (:func:`~napari_dip_deblur.restore.restore_iter`), which says what is wrong.

    Parameters
    ----------
    layer : napari.layers.Image
        Single-scale.

    Returns
    -------
    ndarray
        ``layer.data``, copied (the layer is never aliased), in its own dtype and shape.

    Raises
    ------
    TypeError
        If ``layer`` is not an Image layer.
    ValueError
        If it is multiscale.
    """
    from napari.layers import Image

    if not isinstance(layer, Image):
        raise TypeError(f"{layer.name!r} is a {type(layer).__name__} layer; a known kernel "
                        "must be an Image layer holding a 2-D kernel.")
    if layer.multiscale:
        raise ValueError(f"The known kernel {layer.name!r} is a multiscale (pyramid) image; "
                         "a kernel must be a single 2-D array.")
    return np.array(layer.data, copy=True)
