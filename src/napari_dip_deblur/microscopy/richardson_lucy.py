"""Richardson-Lucy deconvolution with a known PSF, background-aware and boundary-aware.

The model is Poisson: ``counts ~ Poisson(H x + b)`` with ``x >= 0`` the object, ``H`` the
blur by the PSF and ``b`` the background (camera offset + diffuse light), both in counts.
Richardson-Lucy (Richardson 1972; Lucy 1974) is the EM algorithm of its likelihood:

    x <- x / H^T m * H^T (m * counts / (H x + b))

It keeps ``x`` non-negative and, with ``b`` in the denominator, does not "deconvolve" the
background into the object. The object lives on a domain a PSF radius larger than the image
and ``m`` masks the recorded pixels (Bertero & Boccacci 2005), so light blurred in from
outside the field of view is explained by the margin, not by ringing at the borders.

RL fits noise if run long; :func:`richardson_lucy` stops by the discrepancy principle: when
the mean squared residual ``mean((counts - H x - b)^2)`` falls to ``tau`` times the noise
variance (estimated from the data, :func:`napari_dip_deblur.microscopy.noise_variance`), no
ground truth needed. All FFTs are N-d (``rfftn``), so a 3-D stack with a 3-D PSF runs
through the same code. numpy only.

References
----------
W. H. Richardson, "Bayesian-based iterative method of image restoration", JOSA 62, 1972.
L. B. Lucy, "An iterative technique for the rectification of observed distributions",
AJ 79, 1974.
M. Bertero, P. Boccacci, "A simple method for the reduction of boundary effects in the
Richardson-Lucy approach to image deconvolution", A&A 437, 2005.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_TAU", "RLResult", "richardson_lucy", "rl_iterates"]

DEFAULT_TAU = 1.0
"""Discrepancy-principle factor: stop when the mean squared residual reaches ``tau`` times
the noise variance."""
MAX_ITERATIONS = 300


@dataclass(frozen=True)
class RLResult:
    """The outcome of :func:`richardson_lucy`.

    Attributes
    ----------
    image : ndarray of float32
        The object plus the background ``b``: in the input's units (counts), non-negative.
    iterations : int
        The iterations run.
    residuals : tuple of float
        Mean squared residual after each iteration.
    """

    image: np.ndarray
    iterations: int
    residuals: tuple[float, ...]


class _Blur:
    """Convolution by a centred PSF on an image padded by the PSF's half-size, via FFTs."""

    def __init__(self, image_shape: tuple[int, ...], psf: np.ndarray) -> None:
        self.margin = tuple(s // 2 for s in psf.shape)
        self.shape = tuple(n + 2 * m for n, m in zip(image_shape, self.margin, strict=True))
        padded = np.zeros(self.shape)
        padded[tuple(slice(0, s) for s in psf.shape)] = psf
        # roll the PSF centre to the origin: a true convolution, no shift
        padded = np.roll(padded, [-(s // 2) for s in psf.shape], axis=tuple(range(psf.ndim)))
        self.axes = tuple(range(psf.ndim))
        self.otf = np.fft.rfftn(padded)
        self.inner = tuple(slice(m, m + n)
                           for m, n in zip(self.margin, image_shape, strict=True))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.fft.irfftn(np.fft.rfftn(x) * self.otf, s=self.shape, axes=self.axes)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return np.fft.irfftn(np.fft.rfftn(y) * np.conj(self.otf), s=self.shape,
                             axes=self.axes)


def rl_iterates(counts: np.ndarray, psf: np.ndarray, background: float | np.ndarray,
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Richardson-Lucy iterates without end: ``(object, model)`` on the image grid after
    each iteration, the object without the background, the model ``H x + b`` the expected
    counts it predicts."""
    counts = np.asarray(counts, dtype=float)
    blur = _Blur(counts.shape, np.asarray(psf, dtype=float))
    mask = np.zeros(blur.shape)
    mask[blur.inner] = 1.0
    data = np.zeros(blur.shape)
    data[blur.inner] = counts
    # the background only matters on the recorded pixels (the mask zeroes the rest); it is
    # extended into the margin so that the ratio stays finite there
    bg = np.pad(np.broadcast_to(np.asarray(background, dtype=float), counts.shape),
                [(m, m) for m in blur.margin], mode="edge")
    bg = np.maximum(bg, 1e-6)
    # H^T m is small near the outer edge of the margin: floor it so that the update there
    # stays bounded (those pixels are barely constrained by the data anyway)
    norm = np.maximum(blur.adjoint(mask), 1e-3)
    x = np.full(blur.shape, max(float(np.mean(counts - background)), 1e-3))
    while True:
        model = np.maximum(blur.forward(x), 0.0) + bg
        x = x * blur.adjoint(mask * data / model) / norm
        yield x[blur.inner], (np.maximum(blur.forward(x), 0.0) + bg)[blur.inner]


def richardson_lucy(counts: np.ndarray, psf: np.ndarray, background: float | np.ndarray,
                    *, iterations: int | None = None, noise_variance: float | None = None,
                    tau: float = DEFAULT_TAU, max_iterations: int = MAX_ITERATIONS,
                    ) -> RLResult:
    """Richardson-Lucy deconvolution with a known PSF and background.

    Parameters
    ----------
    counts : ndarray
        The recorded image in counts (any number of axes; not modified).
    psf : ndarray
        Centred PSF with the same number of axes (odd sides), summing to 1.
    background : float or ndarray
        Expected counts without object (offset + background), broadcastable to ``counts``.
    iterations : int, optional
        A fixed number of iterations. Without it, the discrepancy principle stops the run
        (``noise_variance`` is then required).
    noise_variance : float, optional
        Mean noise variance per pixel, in counts squared.
    tau : float
        Discrepancy factor (see :data:`DEFAULT_TAU`).
    max_iterations : int
        Cap for the discrepancy rule.

    Returns
    -------
    RLResult
    """
    if iterations is None and noise_variance is None:
        raise ValueError("give iterations or noise_variance (for the stopping rule)")
    if iterations is not None and iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations!r}")
    limit = iterations if iterations is not None else max_iterations
    data = np.asarray(counts, dtype=float)
    residuals: list[float] = []
    estimate = np.zeros_like(data)
    for estimate, model in rl_iterates(data, psf, background):  # noqa: B007
        residuals.append(float(np.mean((data - model) ** 2)))
        if len(residuals) >= limit:
            break
        if iterations is None and residuals[-1] <= tau * noise_variance:
            break
    image = (estimate + background).astype(np.float32)
    return RLResult(np.maximum(image, 0.0), len(residuals), tuple(residuals))
