"""When to stop Richardson-Lucy, without ground truth: cross-validation by Poisson thinning.

Each photon of a Poisson image, kept or not by a fair coin, splits the image into two
*independent* Poisson images of half the expected counts (binomial thinning). RL is run on
one half, and after each iteration its prediction ``H x + b / 2`` is scored by the Poisson
likelihood of the other half: the iteration where that held-out likelihood peaks is where RL
starts fitting the noise of its half. Both halves take a turn; with twice the photons the
full image bears more iterations, so the full run uses ``FULL_DATA_FACTOR`` times the
halves' mean (measured on the development set: ``docs/benchmarks/microscopy.md``).

Counts are turned into photons with the noise model (gain and offset,
:mod:`~napari_dip_deblur.microscopy.noise_model`). numpy only.
"""

from __future__ import annotations

import numpy as np

from .noise_model import NoiseModel
from .richardson_lucy import rl_iterates

__all__ = ["FULL_DATA_FACTOR", "cross_validated_iterations", "to_photons"]

FULL_DATA_FACTOR = 2.0
"""Iterations on the full image per iteration of the held-out optimum on a half."""


def to_photons(counts: np.ndarray, noise: NoiseModel) -> tuple[np.ndarray, float, float]:
    """Integer photon estimates ``round((counts - offset) / gain)``, with the offset read
    from the noise model as ``-constant / gain`` (the read noise is small beside it).

    Returns ``(photons, gain, offset)``."""
    gain = noise.gain
    if gain <= 0:
        raise ValueError("the image shows no signal-dependent (shot) noise: not photon counts")
    offset = -noise.constant / gain
    photons = np.rint((np.asarray(counts, dtype=float) - offset) / gain)
    return np.clip(photons, 0, None).astype(np.int64), gain, offset


def cross_validated_iterations(counts: np.ndarray, psf: np.ndarray, background: float,
                               noise: NoiseModel, *, max_iterations: int = 200,
                               seed: int = 0) -> int:
    """The RL iteration count for the full image, by two-fold Poisson thinning.

    Parameters
    ----------
    counts : ndarray
        The recorded image (not modified).
    psf : ndarray
        The PSF (centred, sum 1).
    background : float
        Expected counts without object, in the image's units.
    noise : NoiseModel
        Gain and offset of the counts.
    max_iterations : int
        The most iterations tried on each half.
    seed : int
        Seeds the thinning coin.

    Returns
    -------
    int
        ``FULL_DATA_FACTOR`` times the mean held-out optimum of the two halves (>= 1).
    """
    photons, gain, offset = to_photons(counts, noise)
    half_background = max((background - offset) / gain, 1e-3) / 2.0
    first = np.random.default_rng(seed).binomial(photons, 0.5)
    second = photons - first
    best = []
    for train, test in ((first, second), (second, first)):
        scores = []
        for i, (_, model) in enumerate(rl_iterates(train, psf, half_background)):
            scores.append(float(np.sum(model - test * np.log(model))))
            if i + 1 >= max_iterations:
                break
        best.append(int(np.argmin(scores)) + 1)
    return max(1, round(FULL_DATA_FACTOR * float(np.mean(best))))
