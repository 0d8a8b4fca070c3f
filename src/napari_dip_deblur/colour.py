"""Colour images: the grey image a kernel is estimated on, and the channels it is applied to.

A camera shake or a defocus blurs the red, green and blue channels with the same kernel (up to
chromatic aberration, ignored here). The kernel is therefore estimated once, on the luminance,
where the signal-to-noise ratio is best and the edges of all channels add up, and every colour
channel is then restored with that same kernel (:func:`napari_dip_deblur.restore.deblur_colour`):
the same linear blur undone on each channel, so no colour cast and no channel misalignment.
numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LUMINANCE_WEIGHTS", "ColourLayout", "colour_layout", "luminance"]

LUMINANCE_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "rec601": (0.299, 0.587, 0.114),
    "rec709": (0.2126, 0.7152, 0.0722),
    "mean": (1 / 3, 1 / 3, 1 / 3),
}
"""Weights of R, G, B in the luminance: ``"rec601"`` (the Y of JPEG's YCbCr, the default),
``"rec709"`` (HDTV, sRGB primaries) or ``"mean"`` (equal weights)."""


@dataclass(frozen=True)
class ColourLayout:
    """How the channels of a colour array are laid out.

    Attributes
    ----------
    channel_axis : int
        The (non-negative) axis holding the channels.
    n_colour : int
        Colour channels (3 for RGB, 3 for RGBA; 1 for grey + alpha).
    has_alpha : bool
        Whether the last channel is alpha (passed through untouched).
    """

    channel_axis: int
    n_colour: int
    has_alpha: bool


def colour_layout(shape: tuple[int, ...], channel_axis: int = -1,
                  alpha: bool | None = None) -> ColourLayout:
    """Check a colour array's shape and say which channels are colour and which alpha.

    Parameters
    ----------
    shape : tuple of int
        The array's shape; at least two spatial axes besides the channel axis.
    channel_axis : int
        The axis of the channels (napari's RGB layers and most files: the last).
    alpha : bool, optional
        Whether the last channel is alpha. Default: 4 channels (RGBA) or 2 (grey + alpha)
        have one, 3 (RGB) have none.

    Returns
    -------
    ColourLayout

    Raises
    ------
    ValueError
        If ``channel_axis`` is out of range, the array has fewer than three axes, or the
        channel axis does not hold 3 or 4 channels (2 with ``alpha=True``).
    """
    ndim = len(shape)
    if ndim < 3:
        raise ValueError(f"a colour image needs a channel axis besides the two spatial ones, "
                         f"got shape {shape}; for a grey image use channel_axis=None")
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis {channel_axis} is out of range for shape {shape}")
    axis = channel_axis % ndim
    n = shape[axis]
    if alpha is None:
        alpha = n in (2, 4)
    n_colour = n - 1 if alpha else n
    if n_colour not in (1, 3) or (n_colour == 1 and not alpha):
        given = f" with alpha={alpha}" if alpha else ""
        raise ValueError(f"channel_axis {channel_axis} holds {n} channels{given}; colour "
                         f"images have 3 (RGB) or 4 (RGBA, the last alpha) channels, or 2 "
                         f"(grey + alpha). For other multichannel data (fluorescence "
                         f"channels) treat the channels as planes of a stack (deblur_stack)")
    return ColourLayout(channel_axis=axis, n_colour=n_colour, has_alpha=bool(alpha))


def luminance(image: Any, *, channel_axis: int = -1, weights: str = "rec601",
              alpha: bool | None = None) -> np.ndarray:
    """The luminance of a colour image: a weighted sum of its R, G, B channels.

    Parameters
    ----------
    image : (..., 3 or 4) array_like
        RGB or RGBA values, any real dtype (alpha is ignored). Not modified.
    channel_axis : int
        The channel axis.
    weights : {"rec601", "rec709", "mean"}
        See :data:`LUMINANCE_WEIGHTS`.
    alpha : bool, optional
        As in :func:`colour_layout`.

    Returns
    -------
    ndarray of float64
        The image without its channel axis, on the input's intensity scale (a uint8 image
        gives values in [0, 255]).

    Examples
    --------
    >>> float(luminance(np.full((2, 2, 3), 100, np.uint8))[0, 0])
    100.0
    """
    array = np.asarray(image)
    layout = colour_layout(array.shape, channel_axis, alpha)
    if weights not in LUMINANCE_WEIGHTS:
        raise ValueError(f"weights must be one of {sorted(LUMINANCE_WEIGHTS)}, got {weights!r}")
    channels = np.moveaxis(array, layout.channel_axis, -1)[..., :layout.n_colour]
    if layout.n_colour == 1:
        return channels[..., 0].astype(np.float64)
    w = np.asarray(LUMINANCE_WEIGHTS[weights], dtype=np.float64)
    return channels.astype(np.float64) @ w
