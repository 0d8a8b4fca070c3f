"""Input checks shared by the blind, non-blind and real-input entry points (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["normalised_kernel", "real_array"]


def real_array(value: Any, name: str = "image", *, finite: bool = True) -> np.ndarray:
    """``np.asarray(value)`` if it is a non-empty array of real numbers (not bool).

    Raises
    ------
    ValueError
        Naming ``name``: a non-numeric or boolean dtype, an empty array, or (``finite``)
        NaN or infinite values.
    """
    array = np.asarray(value)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                   or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers (integer or float), got dtype "
                         f"{array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if finite and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; fill or mask them first")
    return array


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
