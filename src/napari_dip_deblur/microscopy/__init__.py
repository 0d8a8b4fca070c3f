"""Widefield fluorescence deconvolution: photon counts, smooth centred PSFs, Poisson noise.

:func:`deconvolve_microscopy` restores an image blindly (or with a measured ``psf=``) and
returns it in the input's units; :func:`estimate_psf` returns the PSF alone;
:func:`looks_like_counts` says whether an image looks like photon counts (so that the
microscopy preset can be suggested). One job per module: :mod:`.psf` (parametric families),
:mod:`.background`, :mod:`.noise_model`, :mod:`.blind` (the PSF estimate),
:mod:`.richardson_lucy`, :mod:`.stopping`, :mod:`.blind_rl` (the classic baseline). No
torch, no napari.
"""

PRESET = "microscopy"
"""The preset name under which the CLI and the widget offer this package."""

from .counts import looks_like_counts  # noqa: E402
from .deconvolve import MicroscopyResult, deconvolve_microscopy, estimate_psf  # noqa: E402
from .psf import FAMILIES, PSFModel, psf_width, render_psf  # noqa: E402

__all__ = [
    "FAMILIES",
    "PRESET",
    "MicroscopyResult",
    "PSFModel",
    "deconvolve_microscopy",
    "estimate_psf",
    "looks_like_counts",
    "psf_width",
    "render_psf",
]
