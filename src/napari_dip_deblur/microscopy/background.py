"""The background of a fluorescence image: camera offset plus diffuse light, in counts.

Fluorescence images are mostly dark: the background is the level of the darkest regions. It
is read as a low percentile of the image smoothed enough to average the shot noise away (the
raw minimum would sit several noise standard deviations below the true level). numpy /
scipy only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["estimate_background"]

SMOOTHING = 2.0
"""Gaussian sigma (px) that averages the noise before the percentile."""
PERCENTILE = 2.0


def estimate_background(counts: np.ndarray, *, percentile: float = PERCENTILE,
                        smoothing: float = SMOOTHING) -> float:
    """A constant background estimate in the image's units.

    Parameters
    ----------
    counts : ndarray
        The image (any number of axes; not modified).
    percentile : float
        Percentile of the smoothed image taken as the background, in [0, 50].
    smoothing : float
        Gaussian sigma in pixels of the smoothing, >= 0.

    Returns
    -------
    float
    """
    if not 0 <= percentile <= 50:
        raise ValueError(f"percentile must be in [0, 50], got {percentile!r}")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing!r}")
    smooth = ndimage.gaussian_filter(np.asarray(counts, dtype=float), smoothing,
                                     mode="reflect")
    return float(np.percentile(smooth, percentile))
