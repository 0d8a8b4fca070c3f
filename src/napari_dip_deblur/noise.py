"""Noise in the data: its level, and noise-aware fitting.

:func:`estimate_noise_level` measures the noise of a blurry image; the fit check of
:func:`napari_dip_deblur.deblur_iter` (``retry_mae_ratio``) compares the final data misfit
with it.

Noise-aware fitting keeps a total-variation prior in the last interval of the schedule.

With noisy data (photon-limited microscopy, high-ISO photos) the data term of the last
interval fits the noise too: the generator is flexible enough to reproduce it. Lee & Choi
suggest keeping the TV prior of the middle interval in the last one for such images. Here
this is a schedule transform: :func:`noise_aware_phases` returns a preset's phases with
``"tv": weight`` added to the last phase, for the ``phases=`` override of
:func:`napari_dip_deblur.deblur` (and of every wrapper that passes overrides on).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .engine.schedule import Phase

__all__ = ["DEFAULT_TV_WEIGHT", "NOISE_AWARE_NONBLIND_WEIGHT", "NOISE_LEVEL_FLOOR",
           "estimate_noise_level", "noise_aware_overrides", "noise_aware_phases"]

NOISE_LEVEL_FLOOR = 0.002
"""The least noise level the fit check assumes, on the [0, 1] scale the engine fits (half
an 8-bit grey level): a synthetic image with no noise would otherwise make every fit look
poor. The 32 Levin photographs measure 0.0014-0.0021."""


def estimate_noise_level(image: np.ndarray) -> float:
    """Standard deviation of additive white noise in a 2-D image (Immerkaer's estimator).

    The image is filtered with the difference of two Laplacians,
    ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]``, which cancels locally planar intensity; the
    mean absolute response over the valid positions, times ``sqrt(pi / 2) / 6``, is the
    noise's standard deviation. Blurred images have little structure left at this scale,
    which suits the estimator.

    Parameters
    ----------
    image : (M, N) array_like
        At least 3 x 3; any real dtype, in the units the result is wanted in.

    Returns
    -------
    float

    References
    ----------
    .. [1] J. Immerkaer, "Fast Noise Variance Estimation", Computer Vision and Image
       Understanding 64(2), 300-302, 1996.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(estimate_noise_level(0.5 + 0.01 * rng.standard_normal((256, 256))), 3)
    0.01
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 3:
        raise ValueError(f"estimate_noise_level needs a 2-D image of at least 3 x 3, "
                         f"got shape {x.shape}")
    # The mask is separable: the second difference along rows, then along columns.
    rows = x[:-2] - 2 * x[1:-1] + x[2:]
    response = rows[:, :-2] - 2 * rows[:, 1:-1] + rows[:, 2:]
    return float(np.sqrt(np.pi / 2) / 6 * np.abs(response).mean())

DEFAULT_TV_WEIGHT = 0.01
"""The TV weight of :func:`noise_aware_phases` (as in the ``staged`` preset's middle interval;
``docs/benchmarks/real-inputs.md`` shows its effect on a Poisson-noisy fluorescence image)."""


def noise_aware_phases(preset: Any = "fast", tv_weight: float = DEFAULT_TV_WEIGHT
                       ) -> tuple[Phase, ...]:
    """A preset's loss schedule with total variation kept in its last phase.

    Parameters
    ----------
    preset : str or Settings
        A name in :data:`napari_dip_deblur.PRESETS` (not "auto": name the preset) or a
        :class:`~napari_dip_deblur.presets.Settings`.
    tv_weight : float
        Weight of the TV term (mean of ``|dx| + |dy|`` of the generated image on a [0, 1]
        scale) added to the last phase's data terms; > 0.

    Returns
    -------
    tuple of Phase
        Pass as ``phases=`` to :func:`napari_dip_deblur.deblur`.

    Examples
    --------
    >>> noise_aware_phases("fast", 0.02)[-1]
    Phase(start=0.2, terms={'mae': 1.0, 'ssim': 1.0, 'kernel_energy': 0.01, 'tv': 0.02})
    """
    from .presets import preset_settings

    try:
        settings = preset_settings(preset)
    except ValueError as error:
        raise ValueError(f"{error} (name the preset rather than 'auto')") from None
    if isinstance(tv_weight, bool) or not isinstance(tv_weight, numbers.Real) \
            or not math.isfinite(tv_weight) or tv_weight <= 0:
        raise ValueError(f"tv_weight must be a finite number > 0, got {tv_weight!r}")
    phases = list(settings.phases)
    last = phases[-1]
    phases[-1] = Phase(last.start, {**dict(last.terms), "tv": float(tv_weight)},
                       last.kernel_lr_scale)
    return tuple(phases)


def noise_aware_overrides(preset: Any = "fast", tv_weight: float = DEFAULT_TV_WEIGHT
                          ) -> dict[str, Any]:
    """Overrides for noisy data, to splat into ``deblur``: TV kept in the last phase
    (:func:`noise_aware_phases`) and no final non-blind deconvolution, whose light prior
    would bring the noise back (measured on Poisson-noisy fluorescence:
    ``docs/benchmarks/real-inputs.md``); the result is the generator's TV-regularised image.
    """
    return {"phases": noise_aware_phases(preset, tv_weight), "final_deconvolution": "none"}


NOISE_AWARE_NONBLIND_WEIGHT = 3e-4
"""The non-blind prior weight :func:`napari_dip_deblur.restore.restore_iter` uses with
``noise_aware`` unless ``nonblind_options`` sets one (3x the default: a stronger prior for
noisy data; on a Poisson-noisy fluorescence image with the true PSF it scored 25.05 dB
against 24.59 dB for the default)."""
