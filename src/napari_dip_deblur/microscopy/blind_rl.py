"""Classic blind Richardson-Lucy (Fish, Brinicombe, Pike & Walker, JOSA A 12, 1995): the
baseline microscopists know, kept to compare against.

RL updates of the image with the PSF fixed alternate with RL updates of the PSF with the
image fixed (the same multiplicative rule with the roles swapped); the PSF is kept
non-negative, inside a square support, and normalised. The image is reflect-padded by the
support's half-size so that the circular FFTs do not wrap across the borders. numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blind_richardson_lucy"]


def _gaussian(size: int, sigma: float) -> np.ndarray:
    r = np.arange(size) - size // 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def blind_richardson_lucy(counts: np.ndarray, background: float, *, psf_size: int = 31,
                          outer: int = 20, inner: int = 5, initial_sigma: float = 2.0,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Alternating blind RL.

    Parameters
    ----------
    counts : (M, N) ndarray
        The image in counts (not modified).
    background : float
        Expected counts without object.
    psf_size : int
        Odd side of the PSF support.
    outer, inner : int
        Alternations, and RL iterations of each unknown per alternation.
    initial_sigma : float
        Sigma (px) of the initial Gaussian PSF.

    Returns
    -------
    image : (M, N) ndarray of float32
        Object plus background, in counts.
    psf : (psf_size, psf_size) ndarray
        The PSF estimate, centred in its support, sum 1.
    """
    y = np.asarray(counts, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"counts must be 2-D, got shape {y.shape}")
    if psf_size < 3 or psf_size % 2 == 0:
        raise ValueError(f"psf_size must be odd and >= 3, got {psf_size!r}")
    half = psf_size // 2
    data = np.pad(y, half, mode="reflect")
    shape = data.shape
    support = np.zeros(shape, dtype=bool)
    support[:psf_size, :psf_size] = True
    support = np.roll(support, (-half, -half), axis=(0, 1))  # centred on the origin
    h = np.zeros(shape)
    h[:psf_size, :psf_size] = _gaussian(psf_size, initial_sigma)
    h = np.roll(h, (-half, -half), axis=(0, 1))
    x = np.full(shape, max(float(np.mean(y - background)), 1e-3))
    fft, ifft = np.fft.rfft2, lambda a: np.fft.irfft2(a, s=shape)
    for _ in range(outer):
        fx = fft(x)
        for _ in range(inner):  # the PSF, image fixed
            ratio = data / (np.maximum(ifft(fx * fft(h)), 0.0) + background)
            h = h * ifft(fft(ratio) * np.conj(fx)) / x.sum()
            h = np.where(support, np.maximum(h, 0.0), 0.0)
            h /= h.sum()
        fh = fft(h)
        for _ in range(inner):  # the image, PSF fixed
            ratio = data / (np.maximum(ifft(fft(x) * fh), 0.0) + background)
            x = x * ifft(fft(ratio) * np.conj(fh))
    image = (x[half:half + y.shape[0], half:half + y.shape[1]] + background).astype(np.float32)
    psf = np.fft.fftshift(h)[shape[0] // 2 - half:shape[0] // 2 + half + 1,
                             shape[1] // 2 - half:shape[1] // 2 + half + 1]
    return np.maximum(image, 0.0), psf / psf.sum()
