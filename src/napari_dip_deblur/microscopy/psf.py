"""Parametric widefield PSF families, defined by their optical transfer functions (OTFs).

Each family is a radially symmetric OTF of one width parameter (in pixels), multiplied by
the pixel's own integration (a sinc per axis). The PSF is the inverse FFT of that product on
an odd grid: it is centred on the middle pixel, symmetric, band-limited (smooth) and, after
clipping the tiny negative ripples of the inverse FFT, non-negative and normalised to sum 1.

- ``"gaussian"``: ``width`` is the standard deviation sigma. In focus, a Gaussian
  approximates the Airy core (sigma ~ 0.21 lambda / NA).
- ``"airy"``: the in-focus diffraction pattern of a circular pupil; ``width`` is the radius
  of its first dark ring (0.61 lambda / NA), so its OTF cuts off at 1.22 / width cycles/px.
- ``"defocus"``: the same pupil with a quadratic (defocus) phase of ``defocus`` waves at its
  edge (scalar Fourier optics; Born & Wolf): the core spreads towards a disc of radius about
  ``4 * defocus * width / 1.22`` px with rings. Its OTF, the autocorrelation of the pupil, is
  computed numerically once per defocus value and scaled with ``width``.

All frequencies are handled as an N-d radial coordinate with a spacing per axis
(:func:`radial_frequency`), so a 3-D PSF (a z axis with its own spacing and profile) is an
extension of :func:`otf`, not a rewrite. numpy / scipy only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FAMILIES",
    "PSFModel",
    "otf",
    "psf_width",
    "radial_frequency",
    "render_psf",
]

FAMILIES = ("gaussian", "defocus", "airy")
"""The parametric families, by name."""

_PUPIL_GRID = 256
_PUPIL_RADIUS = 40  # pupil radius in grid bins: the OTF's cutoff (80 bins) stays inside


@dataclass(frozen=True)
class PSFModel:
    """One member of a parametric PSF family.

    Attributes
    ----------
    family : str
        One of :data:`FAMILIES`.
    width : float
        The family's width parameter in pixels (sigma, or the in-focus first-ring radius).
    defocus : float
        Pupil-edge defocus phase in waves (``"defocus"`` only; 0 otherwise).
    """

    family: str
    width: float
    defocus: float = 0.0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if not (np.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be a positive number of pixels, got {self.width!r}")
        if not (np.isfinite(self.defocus) and self.defocus >= 0):
            raise ValueError(f"defocus must be >= 0 waves, got {self.defocus!r}")
        if self.family != "defocus" and self.defocus != 0:
            raise ValueError(f"defocus applies to the 'defocus' family only, not {self.family!r}")

    def otf(self, frequency: np.ndarray) -> np.ndarray:
        """The OTF at radial frequencies ``frequency`` (cycles per pixel), without the pixel
        integration; see :func:`otf`."""
        return otf(self, frequency)

    def render(self, size: int | Sequence[int] | None = None) -> np.ndarray:
        """The PSF as a normalised array; see :func:`render_psf`."""
        return render_psf(self, size)

    def support(self) -> int:
        """An odd side (px) that holds all but a negligible tail of the PSF."""
        reach = {"gaussian": 3.5 * self.width,
                 "defocus": (4.0 * self.defocus / 1.22 + 2.5) * self.width,
                 "airy": 2.5 * self.width}[self.family]
        return 2 * int(np.ceil(reach)) + 1


def radial_frequency(shape: Sequence[int], spacing: Sequence[float] | None = None,
                     real: bool = False) -> np.ndarray:
    """The radial frequency (cycles per pixel) of every bin of an FFT of ``shape``.

    Parameters
    ----------
    shape : sequence of int
        The array shape (any number of axes).
    spacing : sequence of float, optional
        Pixel size per axis relative to the lateral pixel (1 for every axis by default); a
        z axis with a larger step is where 3-D comes in.
    real : bool
        The layout of ``numpy.fft.rfftn`` (last axis halved) instead of ``fftn``.
    """
    spacing = [1.0] * len(shape) if spacing is None else list(spacing)
    axes = [np.fft.fftfreq(n, d) for n, d in zip(shape[:-1], spacing[:-1], strict=True)]
    last = np.fft.rfftfreq if real else np.fft.fftfreq
    axes.append(last(shape[-1], spacing[-1]))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))


def otf(model: PSFModel, frequency: np.ndarray) -> np.ndarray:
    """The family's OTF (real, radially symmetric, 1 at zero frequency).

    Parameters
    ----------
    model : PSFModel
    frequency : ndarray
        Radial frequencies in cycles per pixel.
    """
    k = np.asarray(frequency, dtype=float)
    if model.family == "gaussian":
        return np.exp(-2.0 * (np.pi * model.width * k) ** 2)
    if model.family == "defocus":
        coherent_cutoff = 0.61 / model.width  # NA / lambda, cycles per pixel
        q, profile = _defocus_profile(round(float(model.defocus), 4))
        return np.interp(k / coherent_cutoff, q, profile, right=0.0)
    # airy: the autocorrelation of a circular pupil (the "chinese hat")
    q = np.clip(k * model.width / 1.22, 0.0, 1.0)  # incoherent cutoff 2 NA / lambda
    return (2.0 / np.pi) * (np.arccos(q) - q * np.sqrt(1.0 - q**2))


@functools.lru_cache(maxsize=256)
def _defocus_profile(waves: float) -> tuple[np.ndarray, np.ndarray]:
    """The radial OTF of a circular pupil with ``waves`` of defocus at its edge, against the
    frequency in units of the coherent cutoff (0 to 2): the autocorrelation of the pupil,
    computed as the Fourier transform of the intensity PSF on a fine grid."""
    f = np.fft.fftfreq(_PUPIL_GRID) * _PUPIL_GRID / _PUPIL_RADIUS
    rho = np.hypot(f[:, None], f[None, :])
    pupil = np.where(rho <= 1.0, np.exp(2j * np.pi * waves * rho**2), 0.0)
    intensity = np.abs(np.fft.ifft2(pupil)) ** 2
    transfer = np.real(np.fft.fft2(intensity))
    profile = transfer[0, : 2 * _PUPIL_RADIUS + 2] / transfer[0, 0]
    q = np.arange(len(profile)) / _PUPIL_RADIUS
    return q, profile


def _pixel_integration(shape: Sequence[int], real: bool = False) -> np.ndarray:
    """The transfer function of square pixels (a sinc per axis): the PSF is what a pixel
    collects, not a point sample."""
    axes = [np.fft.fftfreq(n) for n in shape[:-1]]
    axes.append((np.fft.rfftfreq if real else np.fft.fftfreq)(shape[-1]))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    out = np.ones([len(a) for a in axes])
    for g in grids:
        out = out * np.sinc(g)
    return out


def render_psf(model: PSFModel, size: int | Sequence[int] | None = None) -> np.ndarray:
    """The PSF of ``model`` as a centred, normalised, non-negative array.

    Parameters
    ----------
    model : PSFModel
    size : int or sequence of int, optional
        Odd side (or one odd side per axis; two for 2-D). Default: ``model.support()``.

    Returns
    -------
    ndarray of float64
        Sums to 1; its maximum is at the centre pixel; symmetric under flips of each axis.
    """
    if size is None:
        size = model.support()
    shape = (int(size),) * 2 if np.isscalar(size) else tuple(int(s) for s in size)
    if any(s < 1 or s % 2 == 0 for s in shape):
        raise ValueError(f"size must be odd and positive, got {size!r}")
    # Evaluate on a grid a few times larger than the output so that the periodic
    # inverse FFT does not fold the tail back into the window, then crop.
    big = tuple(max(4 * s, 64) | 1 for s in shape)
    transfer = otf(model, radial_frequency(big, real=True)) * _pixel_integration(big, True)
    psf = np.fft.fftshift(np.fft.irfftn(transfer, s=big, axes=tuple(range(len(big)))))
    centre = [b // 2 for b in big]
    window = tuple(slice(c - s // 2, c + s // 2 + 1) for c, s in zip(centre, shape, strict=True))
    psf = np.clip(psf[window], 0.0, None)
    return psf / psf.sum()


def psf_width(psf: np.ndarray, upsample: int = 8) -> float:
    """The full width at half maximum of a 2-D PSF, in pixels, as the diameter of the disc
    whose area equals that of the region at or above half the peak.

    The PSF is upsampled by Fourier interpolation first (PSFs are smooth), so widths of a
    couple of pixels are measured to a few percent. Works for any PSF array, parametric or
    measured, so an estimate and the truth are compared on the same footing.
    """
    psf = np.asarray(psf, dtype=float)
    if psf.ndim != 2:
        raise ValueError(f"psf must be 2-D, got shape {psf.shape}")
    spectrum = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(_odd(psf))))
    # zero frequency at index N // 2 of the padded (N = upsample * n) spectrum, as
    # ifftshift expects
    pad = [(upsample * n // 2 - n // 2, upsample * n - n - (upsample * n // 2 - n // 2))
           for n in spectrum.shape]
    fine = np.fft.fftshift(np.real(np.fft.ifft2(np.fft.ifftshift(np.pad(spectrum, pad)))))
    above = np.count_nonzero(fine >= 0.5 * fine.max())
    return float(2.0 * np.sqrt(above / np.pi) / upsample)


def _odd(psf: np.ndarray) -> np.ndarray:
    """Pad a PSF to odd sides (the FFT interpolation keeps the centre on a pixel)."""
    return np.pad(psf, [(0, 1 - n % 2) for n in psf.shape])
