"""Writer for blur kernels (any single image layer): ``.npy`` or ``.tif``/``.tiff``.

The array is written as it is in the layer (the widget's kernels are float32, non-negative
and sum to 1), so ``numpy.load`` or ``tifffile.imread`` gives it back bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_kernel"]

EXTENSIONS = (".npy", ".tif", ".tiff")


def write_kernel(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer's data (a kernel) to ``.npy`` or ``.tif``.

    Parameters
    ----------
    path : str
        Destination; its extension picks the format.
    data : array_like
        The layer's data.
    meta : dict
        The layer's attributes (napari passes ``name``, ``metadata``, ...). For TIFF, the
        layer name and the run's seed, preset and kernel size (when present) go into the
        image description as JSON.

    Returns
    -------
    list of str
        The path written.

    Raises
    ------
    ValueError
        If the extension is not one of ``.npy``, ``.tif``, ``.tiff``.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(
            f"cannot write a kernel to {target.name!r}: use a .npy, .tif or .tiff file name"
        )
    array = np.asarray(data)
    if suffix == ".npy":
        np.save(target, array, allow_pickle=False)
    else:
        import tifffile

        tifffile.imwrite(target, array, description=json.dumps(_description(meta)))
    return [str(target)]


def _description(meta: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {"name": meta.get("name")}
    run = meta.get("metadata") or {}
    for key in ("source", "preset", "kernel_size", "seed", "device", "iterations", "partial"):
        value = run.get(key)
        if isinstance(value, (str, int, float, bool, list)) or value is None:
            info[key] = value
    return info
