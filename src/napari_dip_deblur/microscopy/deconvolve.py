"""Blind deconvolution of a widefield fluorescence image: the public entry of the package.

1. the background (offset + diffuse light) is estimated (:mod:`.background`);
2. the noise model (gain, offset) is fitted (:mod:`.noise_model`);
3. the PSF is estimated as the parametric family and width that best explain the image's
   power spectrum (:mod:`.blind`), unless a measured PSF is given (``psf=``);
4. Richardson-Lucy restores the image with that PSF and background (:mod:`.richardson_lucy`),
   for the iteration count that Poisson-thinning cross-validation picks (:mod:`.stopping`).

The result is in the input's units (counts), float32, non-negative, with the background
kept (object + background), so intensities can still be quantified. numpy / scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .background import estimate_background
from .blind import estimate_psf_model
from .noise_model import NoiseModel, estimate_noise_model
from .psf import PSFModel
from .richardson_lucy import DEFAULT_TAU, richardson_lucy
from .stopping import cross_validated_iterations

__all__ = ["MicroscopyResult", "deconvolve_microscopy", "estimate_psf"]

MAX_ITERATIONS = 400
"""Cap on the RL iterations of the full image."""


@dataclass(frozen=True)
class MicroscopyResult:
    """The outcome of :func:`deconvolve_microscopy`.

    Attributes
    ----------
    image : (M, N) ndarray of float32
        The restored image in the input's units: object + background, non-negative.
    psf : ndarray of float64
        The PSF used (estimated or given), centred, sum 1.
    model : PSFModel or None
        The fitted parametric PSF; None when a PSF was given.
    background : float
        The background estimate (counts).
    noise : NoiseModel
        The fitted noise model.
    iterations : int
        The Richardson-Lucy iterations run.
    """

    image: np.ndarray
    psf: np.ndarray
    model: PSFModel | None
    background: float
    noise: NoiseModel
    iterations: int


def _as_image(image: object) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"image must be a 2-D array, got shape {array.shape}")
    if min(array.shape) < 32:
        raise ValueError(f"image must be at least 32 x 32 pixels, got {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"image must hold integers or floats, got dtype {array.dtype}")
    array = array.astype(float)  # a copy: the caller's array is never modified
    if not np.all(np.isfinite(array)):
        raise ValueError("image holds NaN or infinite values")
    return array


def estimate_psf(image: object, *, size: int | None = None) -> tuple[np.ndarray, PSFModel]:
    """Estimate the PSF of a 2-D fluorescence image (counts) blindly.

    Parameters
    ----------
    image : (M, N) array_like
        At least 32 x 32; not modified.
    size : int, optional
        Odd side of the returned PSF array (default: the family's support).

    Returns
    -------
    psf : ndarray of float64
        Centred, non-negative, sums to 1.
    model : PSFModel
        The parametric family and width.
    """
    counts = _as_image(image)
    background = estimate_background(counts)
    model = estimate_psf_model(counts - background).model
    return model.render(size), model


def deconvolve_microscopy(image: object, *, psf: np.ndarray | None = None,
                          background: float | None = None, iterations: int | None = None,
                          seed: int = 0) -> MicroscopyResult:
    """Deconvolve a 2-D widefield fluorescence image, blindly or with a measured PSF.

    Parameters
    ----------
    image : (M, N) array_like
        Photon counts (e.g. ``uint16``), at least 32 x 32; not modified.
    psf : ndarray, optional
        A measured PSF (odd sides, non-negative; normalised here). Without it the PSF is
        estimated.
    background : float, optional
        Expected counts without object; estimated when left out.
    iterations : int, optional
        Richardson-Lucy iterations; chosen by cross-validation when left out.
    seed : int
        Seeds the cross-validation's thinning.

    Returns
    -------
    MicroscopyResult

    Examples
    --------
    >>> from napari_dip_deblur.devsets.fluorescence import make_case
    >>> case = make_case("beads", "gaussian-1.2", peak=500)
    >>> result = deconvolve_microscopy(case.blurry)
    >>> result.image.dtype, result.image.shape, result.model.family
    (dtype('float32'), (128, 128), 'gaussian')
    """
    counts = _as_image(image)
    if iterations is not None and (not isinstance(iterations, int | np.integer)
                                   or iterations < 1):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if background is None:
        background = estimate_background(counts)
    elif not np.isfinite(background):
        raise ValueError(f"background must be a finite number, got {background!r}")
    noise = estimate_noise_model(counts)
    model = None
    if psf is None:
        model = estimate_psf_model(counts - background).model
        kernel = model.render()
    else:
        kernel = _check_psf(psf)
    if iterations is None:
        if noise.gain > 0:
            iterations = min(cross_validated_iterations(counts, kernel, background, noise,
                                                        seed=seed), MAX_ITERATIONS)
            result = richardson_lucy(counts, kernel, background, iterations=iterations)
        else:  # no visible shot noise: fall back on the discrepancy principle
            variance = float(np.mean(noise.variance(counts)))
            result = richardson_lucy(counts, kernel, background, noise_variance=variance,
                                     tau=DEFAULT_TAU, max_iterations=MAX_ITERATIONS)
    else:
        result = richardson_lucy(counts, kernel, background, iterations=iterations)
    return MicroscopyResult(result.image, kernel, model, float(background), noise,
                            result.iterations)


def _check_psf(psf: object) -> np.ndarray:
    kernel = np.asarray(psf, dtype=float)
    if kernel.ndim != 2 or any(s % 2 == 0 for s in kernel.shape):
        raise ValueError(f"psf must be a 2-D array with odd sides, got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)) or kernel.min() < 0 or kernel.sum() <= 0:
        raise ValueError("psf must be finite and non-negative with a positive sum")
    return kernel / kernel.sum()
