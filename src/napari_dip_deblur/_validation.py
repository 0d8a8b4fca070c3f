"""Input checks shared by the blind, non-blind and real-input entry points (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["real_array"]


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
