"""Blind image deblurring with a deep image prior, as a Python library and a napari plugin.

The public API (``deblur``, ``deblur_iter``, ``PRESETS``, ...) is loaded lazily so that
importing the package (as napari does to read the manifest) does not import torch.

Examples
--------
>>> from napari_dip_deblur import deblur                      # doctest: +SKIP
>>> result = deblur(blurry, kernel_size=15)                   # doctest: +SKIP
>>> result.image, result.kernel                               # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "DeblurDivergedError",
    "Result",
    "Settings",
    "Snapshot",
    "available_devices",
    "deblur",
    "deblur_batch",
    "deblur_iter",
    "deconvolve_microscopy",
    "finish_early",
]

if TYPE_CHECKING:
    from .api import (
        DeblurDivergedError,
        Result,
        Snapshot,
        available_devices,
        deblur,
        deblur_iter,
        finish_early,
    )
    from .batch import deblur_batch
    from .microscopy import deconvolve_microscopy
    from .presets import PRESETS, Settings

_LAZY = {
    "deblur": "api",
    "deblur_iter": "api",
    "finish_early": "api",
    "Result": "api",
    "Snapshot": "api",
    "DeblurDivergedError": "api",
    "available_devices": "api",
    "deblur_batch": "batch",
    "deconvolve_microscopy": "microscopy",
    "PRESETS": "presets",
    "Settings": "presets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
