"""The one place where the 2-D array to deblur is taken out of a napari layer.

Pure functions of a layer and the viewer's dims state (passed in explicitly, no viewer
needed): numpy in, numpy out, nothing is computed on the pixels. Colour support will come
here too (a later issue): today RGB(A) layers are refused with a message saying what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import napari

__all__ = ["Plane", "PlaneLocation", "locate_plane", "plane_from_layer"]


@dataclass(frozen=True)
class PlaneLocation:
    """Where a 2-D plane lies in an image layer (no pixel data).

    Attributes
    ----------
    index : tuple of int or slice
        The index into ``layer.data`` that gives ``data`` (``slice(None)`` on the two
        displayed axes, an integer on every other axis).
    axes : tuple of int
        The two layer axes of the plane, in increasing order.
    label : str
        A human-readable position of the plane, e.g. ``"t=3, z=10"``, ``"axis -3=2"`` (for
        unnamed axes), or ``"2-D image"``.
    scale, translate : tuple of float
        The layer's scale and translate on the two axes of the plane.
    """

    index: tuple[int | slice, ...]
    axes: tuple[int, int]
    label: str
    scale: tuple[float, float]
    translate: tuple[float, float]

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
    data : (M, N) ndarray
        A copy of the plane, in the layer's dtype (the layer's data is never aliased).
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
        Must be a single-scale, non-RGB ``Image`` layer with at least two axes.
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
        If the layer is RGB, multiscale, has fewer than two axes, if the viewer shows
        three axes (3-D display), or if the current position lies outside the layer.
    """
    from napari.layers import Image

    if not isinstance(layer, Image):
        raise TypeError(
            f"{layer.name!r} is a {type(layer).__name__} layer; choose an Image layer to deblur."
        )
    if layer.rgb:
        raise ValueError(
            f"{layer.name!r} is a colour (RGB) image, and colour deblurring is not supported "
            "yet. Split it into channels first (right-click the layer > Split RGB) and "
            "deblur one channel."
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

    scale = tuple(float(layer.scale[a]) for a in axes)
    translate = tuple(float(layer.translate[a]) for a in axes)
    return PlaneLocation(
        index=tuple(index),
        axes=(axes[0], axes[1]),
        label=", ".join(where) if where else "2-D image",
        scale=(scale[0], scale[1]),
        translate=(translate[0], translate[1]),
    )
