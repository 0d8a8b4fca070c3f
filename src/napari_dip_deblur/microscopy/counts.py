"""Does an image look like photon counts? Then the microscopy preset is the one to suggest.

Counts are integers, non-negative, and their noise grows with their level (shot noise):
the noise model fitted on the image (:mod:`.noise_model`) shows a clearly positive gain that
explains most of the variance in the bright parts. numpy only.
"""

from __future__ import annotations

import numpy as np

from .noise_model import estimate_noise_model

__all__ = ["looks_like_counts"]

CROP = 512
"""Side of the central crop that is examined (the test stays fast on large images)."""
MIN_SHOT_SHARE = 0.5
"""Share of the noise variance at the bright end (99th percentile) that shot noise must
explain."""


def looks_like_counts(image: object) -> bool:
    """True when ``image`` is a 2-D integer array of non-negative values whose noise grows
    with the signal as photon counts' does; False otherwise (never raises for an array).

    Parameters
    ----------
    image : array_like
        Not modified. Colour images, stacks and images under 32 x 32 give False; larger
        images are judged on a central crop of at most 512 x 512.
    """
    array = np.asarray(image)
    if array.ndim != 2 or min(array.shape) < 32 or not np.issubdtype(array.dtype, np.integer):
        return False
    top = [max((n - CROP) // 2, 0) for n in array.shape]
    array = array[top[0]:top[0] + CROP, top[1]:top[1] + CROP]
    if array.min() < 0 or array.max() == array.min():
        return False
    noise = estimate_noise_model(array)
    bright = float(np.percentile(array, 99))
    total = float(noise.variance(bright))
    return noise.gain > 0 and noise.gain * (bright - array.min()) >= MIN_SHOT_SHARE * total
