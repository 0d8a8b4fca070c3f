"""Input checks shared by the blind, non-blind and real-input entry points (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_MAGNITUDE", "check_values", "normalised_kernel", "real_array"]

#: The largest magnitude accepted in an image or kernel. Results are float32 (largest
#: 3.4e38) and the non-blind step works in float32: this leaves a factor of 340 for a
#: restored image's overshoot and the arithmetic on it.
MAX_MAGNITUDE = 1e36


def real_array(value: Any, name: str = "image", *, finite: bool = True) -> np.ndarray:
    """``np.asarray(value)`` if it is a non-empty array of real numbers (not bool).

    Raises
    ------
    ValueError
        Naming ``name``: not convertible to an array (e.g. ragged nested lists), a
        non-numeric, boolean, complex, datetime or timedelta dtype, an empty array, or
        (``finite``) the value checks of :func:`check_values`.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged lists, objects numpy cannot convert
        raise ValueError(f"{name} cannot be read as an array of numbers: {error}") from None
    if array.dtype.kind not in "iuf":  # bool, complex, object, str, datetime, timedelta
        raise ValueError(f"{name} must hold real numbers (integer or float), got dtype "
                         f"{array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if finite:
        check_values(array, name)
    return array


def check_values(array: np.ndarray, name: str = "image") -> tuple[float, float]:
    """The ``(min, max)`` of a real array, checked: finite and within :data:`MAX_MAGNITUDE`.

    A float array's min and max are NaN where any value is, and infinite where any value is,
    so two reductions check it without an array of flags the size of the input.

    Raises
    ------
    ValueError
        Naming ``name``: NaN or infinite values, or values beyond ``MAX_MAGNITUDE``.
    """
    lo, hi = float(array.min()), float(array.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values; fill or mask them first")
    if max(-lo, hi) > MAX_MAGNITUDE:
        raise ValueError(f"{name} has values up to {max(-lo, hi):.3g} in magnitude, beyond "
                         f"{MAX_MAGNITUDE:.0e} (results are float32, which ends at 3.4e38): "
                         f"rescale it first")
    return lo, hi


def normalised_kernel(psf: np.ndarray, image_shape: tuple[int, ...], *,
                      image_name: str = "image", non_negative: bool = False) -> np.ndarray:
    """A 2-D kernel checked against an image and divided by its sum (float64, a new array).

    Raises
    ------
    ValueError
        Even sides, larger than ``image_shape``, NaN or infinite values, negative values
        (with ``non_negative``), or a sum <= 0.
    """
    kh, kw = psf.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel must have odd sides so its centre is the middle pixel, got "
                         f"{kh}x{kw}; pad it with a row or column of zeros on the side away "
                         f"from its centre")
    if kh > image_shape[0] or kw > image_shape[1]:
        raise ValueError(f"kernel ({kh}x{kw}) is larger than the {image_name} "
                         f"({image_shape[0]}x{image_shape[1]})")
    values = psf.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("kernel contains NaN or infinite values")
    if non_negative and values.min() < 0:
        raise ValueError(f"kernel has negative values (min {values.min():.3g}): a blur kernel "
                         f"is non-negative; clip them to 0 if they are noise "
                         f"(np.clip(kernel, 0, None))")
    total = values.sum()
    if not total > 0:
        raise ValueError(f"kernel must sum to a positive value (it is normalised to sum 1), "
                         f"got sum {total}")
    return values / total
