"""Synthetic test images with known blur: a camera-shake photo and a fluorescence image.

Everything here is generated from scikit-image's bundled data or from a seeded random
generator, so no download is ever needed. numpy/scipy/scikit-image only (no torch, no napari).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

__all__ = [
    "BlurredSample",
    "blurred_fluorescence",
    "blurred_photo",
    "gaussian_kernel",
    "motion_kernel",
]


@dataclass(frozen=True)
class BlurredSample:
    """A blurry image with the sharp image and the kernel that made it.

    Attributes
    ----------
    blurry : (M, N) ndarray of float32
        ``convolve(sharp, kernel, mode='same')`` plus noise, in the sharp image's range.
    sharp : (M, N) ndarray of float32
        The ground truth.
    kernel : (kh, kw) ndarray of float32
        The true blur kernel (convolution orientation, non-negative, sums to 1).
    name : str
        A short name for layers and files.
    """

    blurry: np.ndarray
    sharp: np.ndarray
    kernel: np.ndarray
    name: str


def motion_kernel(size: int = 15, *, seed: int = 0, length: float | None = None) -> np.ndarray:
    """A camera-shake kernel: a smooth random trajectory rasterised into ``size x size``.

    Parameters
    ----------
    size : int
        Odd side of the kernel array.
    seed : int
        Seed of the trajectory; the same seed gives the same kernel.
    length : float, optional
        Trajectory length in pixels; default ``0.6 * size``.

    Returns
    -------
    kernel : (size, size) ndarray of float32
        Non-negative, sums to 1, centred on its centre of mass (to the nearest pixel).
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3, got {size}")
    rng = np.random.default_rng(seed)
    length = 0.6 * size if length is None else float(length)
    n_steps = 400
    # A random walk in velocity (momentum) gives the smooth curved paths of hand shake.
    velocity = rng.standard_normal(2)
    velocity /= np.linalg.norm(velocity)
    points = np.empty((n_steps, 2))
    position = np.zeros(2)
    for i in range(n_steps):
        velocity += 0.35 * rng.standard_normal(2)
        velocity /= np.linalg.norm(velocity)
        position = position + velocity * (length / n_steps)
        points[i] = position
    points -= points.mean(axis=0)
    # Keep the path inside the array with a 1-pixel margin.
    extent = np.abs(points).max()
    half = (size - 3) / 2
    if extent > half:
        points *= half / extent
    points += (size - 1) / 2
    kernel = np.zeros((size, size))
    # Bilinear splatting of each trajectory point.
    r0 = np.floor(points[:, 0]).astype(int)
    c0 = np.floor(points[:, 1]).astype(int)
    fr = points[:, 0] - r0
    fc = points[:, 1] - c0
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (1, 0, fr * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 1, fr * fc),
    ):
        np.add.at(kernel, (r0 + dr, c0 + dc), w)
    kernel = ndimage.gaussian_filter(kernel, 0.5)
    kernel /= kernel.sum()
    return _recentre(kernel).astype(np.float32)


def gaussian_kernel(size: int = 15, sigma: float = 2.0) -> np.ndarray:
    """An isotropic Gaussian PSF of odd ``size``, sum 1 (a simple defocus/diffraction model)."""
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3, got {size}")
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def _recentre(kernel: np.ndarray) -> np.ndarray:
    """Shift a kernel so its centre of mass sits on the central pixel (no wrap-around)."""
    com = np.array(ndimage.center_of_mass(kernel))
    shift = np.round((np.array(kernel.shape) - 1) / 2 - com).astype(int)
    return ndimage.shift(kernel, shift, order=0, mode="constant")


def blurred_photo(
    size: int = 128,
    kernel_size: int = 15,
    *,
    blur_length: float | None = None,
    noise: float = 0.002,
    seed: int = 0,
) -> BlurredSample:
    """scikit-image's ``camera`` photo, resized, blurred by a motion kernel, with a little noise.

    Parameters
    ----------
    size : int
        Side of the square image.
    kernel_size : int
        Odd side of the motion kernel.
    blur_length : float, optional
        Length of the shake trajectory in pixels; default ``0.9 * kernel_size``.
    noise : float
        Standard deviation of additive Gaussian noise, relative to the [0, 1] range.
    seed : int
        Seed of the kernel and the noise.

    Returns
    -------
    BlurredSample
        Images in [0, 1], float32.
    """
    from skimage import data, transform

    sharp = transform.resize(data.camera().astype(np.float64) / 255.0, (size, size),
                             anti_aliasing=True)
    length = 0.9 * kernel_size if blur_length is None else blur_length
    kernel = motion_kernel(kernel_size, seed=seed, length=length)
    blurry = _blur(sharp, kernel, noise=noise, seed=seed)
    return BlurredSample(blurry, sharp.astype(np.float32), kernel, "camera")


def blurred_fluorescence(
    size: int = 128,
    *,
    psf_size: int = 11,
    psf_sigma: float = 1.8,
    photons: float = 200.0,
    seed: int = 0,
) -> BlurredSample:
    """A synthetic fluorescence image: spots and filaments, blurred, with Poisson noise.

    Parameters
    ----------
    size : int
        Side of the square image.
    psf_size, psf_sigma : int, float
        Size and width of the Gaussian point-spread function.
    photons : float
        Expected photon count at the brightest sharp pixel (lower = noisier).
    seed : int
        Seed of the structures and the noise.

    Returns
    -------
    BlurredSample
        ``blurry`` is in photon counts (uint16-like values stored as float32);
        ``sharp`` is the noise-free sharp image on the same scale.
    """
    rng = np.random.default_rng(seed)
    sharp = np.zeros((size, size))
    # Filaments: smooth random curves drawn with sub-pixel splatting.
    for _ in range(max(3, size // 24)):
        p = rng.uniform(0, size, 2)
        v = rng.standard_normal(2)
        v /= np.linalg.norm(v)
        for _ in range(6 * size):
            v += 0.08 * rng.standard_normal(2)
            v /= np.linalg.norm(v)
            p = p + 0.5 * v
            r, c = int(p[0]), int(p[1])
            if 0 <= r < size and 0 <= c < size:
                sharp[r, c] += 0.35
    # Spots: point-like vesicles of varied brightness.
    n_spots = size * size // 180
    rows = rng.integers(0, size, n_spots)
    cols = rng.integers(0, size, n_spots)
    np.add.at(sharp, (rows, cols), rng.uniform(0.5, 1.0, n_spots))
    sharp = ndimage.gaussian_filter(sharp, 0.6)
    sharp = sharp / sharp.max() * photons + 0.05 * photons  # background
    kernel = gaussian_kernel(psf_size, psf_sigma)
    blurred = signal.convolve(sharp, kernel, mode="same")
    blurry = rng.poisson(np.clip(blurred, 0, None)).astype(np.float32)
    return BlurredSample(blurry, sharp.astype(np.float32), kernel, "fluorescence")


def _blur(sharp: np.ndarray, kernel: np.ndarray, *, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    padded = np.pad(sharp, [((s - 1) // 2, (s - 1) // 2) for s in kernel.shape], mode="reflect")
    blurry = signal.convolve(padded, kernel, mode="valid")
    blurry = blurry + noise * rng.standard_normal(blurry.shape)
    return np.clip(blurry, 0.0, 1.0).astype(np.float32)
