"""Widefield fluorescence deconvolution: photon counts, smooth centred PSFs, Poisson noise.

:func:`deconvolve_microscopy` restores an image blindly (or with a measured ``psf=``) and
returns it in the input's units; :func:`estimate_psf` returns the PSF alone;
:func:`looks_like_counts` says whether an image looks like photon counts (so that the
microscopy preset can be suggested). One job per module: :mod:`.psf` (parametric families),
:mod:`.background`, :mod:`.noise_model`, :mod:`.blind` (the PSF estimate),
:mod:`.richardson_lucy`, :mod:`.stopping`, :mod:`.blind_rl` (the classic baseline). No
torch, no napari.
"""

from .counts import looks_like_counts
from .deconvolve import MicroscopyResult, deconvolve_microscopy, estimate_psf
from .psf import FAMILIES, PSFModel, psf_width, render_psf

__all__ = [
    "FAMILIES",
    "MicroscopyResult",
    "PSFModel",
    "deconvolve_microscopy",
    "estimate_psf",
    "looks_like_counts",
    "psf_width",
    "render_psf",
]
