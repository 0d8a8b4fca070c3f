"""Where to estimate the kernel: a rectangle of the image, given or chosen automatically.

A blind run costs time and memory in proportion to the pixels it fits, and the kernel of a
uniform blur is the same everywhere, so on a large image the kernel is estimated on a crop
and then applied to the whole image by non-blind deconvolution
(:func:`napari_dip_deblur.restore.deblur_large`). This module only picks and checks the
crop: numpy and scipy, no torch, no napari.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["Region", "as_region", "auto_region", "gradient_energy", "region_from_text"]


@dataclass(frozen=True)
class Region:
    """An axis-aligned rectangle of a 2-D image, in pixels.

    Attributes
    ----------
    y0, x0 : int
        Top-left corner (row, column), inclusive.
    height, width : int
        Size in pixels.
    """

    y0: int
    x0: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices: ``image[region.slices]`` is the crop."""
        return (slice(self.y0, self.y0 + self.height), slice(self.x0, self.x0 + self.width))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(y0, x0, height, width)``, the form the CLI's ``--region`` takes."""
        return (self.y0, self.x0, self.height, self.width)

    def __str__(self) -> str:
        return f"{self.height}x{self.width} at (y={self.y0}, x={self.x0})"


def region_from_text(text: str) -> Region:
    """Parse ``"y0,x0,h,w"`` (the CLI's ``--region``) into a :class:`Region`.

    Raises
    ------
    ValueError
        Unless the text holds four integers separated by commas.
    """
    try:
        values = [int(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f"region must be 'y0,x0,height,width' (four integers), got {text!r}")
    return Region(*values)


def as_region(value: Region | Sequence[int] | Any, image_shape: tuple[int, int],
              *, min_side: int = 16) -> Region:
    """Check a region against an image: a :class:`Region` or ``(y0, x0, height, width)``.

    Parameters
    ----------
    value : Region or sequence of 4 int
        The rectangle.
    image_shape : (int, int)
        The image's ``(rows, cols)``.
    min_side : int
        Smallest accepted height and width (the blind run needs 16 pixels at least).

    Returns
    -------
    Region

    Raises
    ------
    ValueError
        If the rectangle is malformed, smaller than ``min_side``, or not inside the image.
    """
    if isinstance(value, Region):
        region = value
    else:
        try:
            numbers = [v for v in value]
        except TypeError:
            numbers = []
        if len(numbers) != 4 or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in numbers):
            raise ValueError(f"region must be a Region or (y0, x0, height, width) integers, "
                             f"got {value!r}")
        region = Region(*(int(v) for v in numbers))
    rows, cols = image_shape
    if region.height < min_side or region.width < min_side:
        raise ValueError(f"region must be at least {min_side}x{min_side} pixels, got "
                         f"{region.height}x{region.width}")
    if (region.y0 < 0 or region.x0 < 0 or region.y0 + region.height > rows
            or region.x0 + region.width > cols):
        raise ValueError(f"region {region} does not lie inside the {rows}x{cols} image")
    return region


def gradient_energy(image: np.ndarray) -> np.ndarray:
    """Squared gradient magnitude of a 2-D image (central differences), as float64.

    High where there are edges and texture: where a blur kernel leaves the most evidence.
    """
    array = np.asarray(image, dtype=np.float64)
    gy = ndimage.correlate1d(array, [-0.5, 0.0, 0.5], axis=0, mode="nearest")
    gx = ndimage.correlate1d(array, [-0.5, 0.0, 0.5], axis=1, mode="nearest")
    return gy * gy + gx * gx


def auto_region(image: Any, size: int | tuple[int, int] = 256, *,
                smoothing: float = 2.0, saturation: float | None = 0.98) -> Region:
    """The crop of a given size where a blind run learns the most about the kernel.

    Picks the ``size`` crop with the highest mean gradient energy of the image smoothed by a
    Gaussian of ``smoothing`` pixels: strong, extended edges carry the blur's signature and
    survive the smoothing, while flat areas carry none and fine stochastic texture (grass,
    gravel, noise), which has high raw gradient energy but is a poor guide for a blind
    estimate, is damped, though not always enough: on a test mosaic it still picked a
    gravel texture once (``docs/real-inputs.md``). Gradients next to saturated pixels are
    ignored, as far as the smoothing spreads them (clipped highlights break the linear blur
    model). Candidates are every crop on a
    grid of ``size / 8`` steps, scored with a summed-area table: a 4096 x 4096 image takes
    a few seconds.

    Parameters
    ----------
    image : (M, N) array_like
        The image (one channel or the luminance of a colour image).
    size : int or (int, int)
        Crop size; clipped to the image.
    smoothing : float
        Sigma (pixels) of the Gaussian applied before measuring gradients; 0 for none.
    saturation : float or None
        Pixels at or above ``min + saturation * (max - min)`` count as saturated (with their
        neighbours). None keeps all.

    Returns
    -------
    Region

    Raises
    ------
    ValueError
        If the image is not 2-D or ``size`` is not positive.
    """
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D to choose a region, got shape {array.shape}")
    height, width = (size, size) if np.isscalar(size) else tuple(size)
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    height, width = min(int(height), array.shape[0]), min(int(width), array.shape[1])
    smoothed = ndimage.gaussian_filter(array.astype(np.float32), smoothing) if smoothing > 0 \
        else array
    energy = gradient_energy(smoothed)
    if saturation is not None:
        lo, hi = float(array.min()), float(array.max())
        if hi > lo:
            clipped = array >= lo + saturation * (hi - lo)
            if clipped.any() and clipped.mean() < 0.5:  # a mostly bright image is not
                # "saturated". The smoothing spreads a clipped edge's gradient as far as the
                # Gaussian reaches (gaussian_filter's radius, 4 sigma), plus the gradient's
                # own pixel and a 2-pixel margin: mask all of that.
                reach = 3 + (int(4.0 * smoothing + 0.5) if smoothing > 0 else 0)
                energy[ndimage.maximum_filter(clipped, size=2 * reach + 1)] = 0.0
    table = np.zeros((energy.shape[0] + 1, energy.shape[1] + 1))
    table[1:, 1:] = energy.cumsum(0).cumsum(1)
    step_y, step_x = max(1, height // 8), max(1, width // 8)
    ys = _positions(array.shape[0] - height, step_y)
    xs = _positions(array.shape[1] - width, step_x)
    y0, x0 = ys[:, None], xs[None, :]
    sums = (table[y0 + height, x0 + width] - table[y0, x0 + width]
            - table[y0 + height, x0] + table[y0, x0])
    iy, ix = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return Region(int(ys[iy]), int(xs[ix]), height, width)


def _positions(last: int, step: int) -> np.ndarray:
    """Start positions 0, step, 2 step, ... and always ``last`` itself."""
    return np.unique(np.append(np.arange(0, last + 1, step), last))
