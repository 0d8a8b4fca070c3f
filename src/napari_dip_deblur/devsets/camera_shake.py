"""The camera-shake development set: scikit-image photos blurred by random-trajectory kernels.

Forty cases, made in seconds from scikit-image's bundled images and a seeded generator, with
no file to download or commit: ten sharp 255 x 255 images (five grey, five colour; none from
the Levin et al. set) x four camera-shake kernels each, one from every size class:

- ``"small"``: kernel sizes 11-27 px, the range of the Levin set (two per image);
- ``"medium"``: 29-39 px;
- ``"large"``: 41-75 px.

A 1 % Gaussian noise (std 0.01 on the [0, 1] scale) is added to ten cases, one per image,
spread over the size classes; the other thirty are noise-free (but for the 8-bit rounding of
:attr:`CameraShakeCase.blurry_uint8`, which is what a user's photo would carry).

The kernels follow Boracchi & Foi (2012): a particle with a random initial direction moves
at constant speed; at every step its velocity takes a Gaussian acceleration, a pull back
towards its start (the hand's inertia) and, now and then, a jerk that turns it round; the
path over a random exposure (its first 25-100 %) is rasterised with bilinear (sub-pixel)
weights. Each path is scaled
so that its extent is the case's kernel size, and the kernel is centred on its centre of
mass, so the blurry image is aligned with the sharp one (to the nearest pixel) as a blind
method that centres its kernel would leave it.

The blurry image is the sharp image *convolved* with the kernel over a larger window of the
photo ('valid' convolution): its borders hold the blur of real image content beyond the
crop, as in a real photograph, not a periodic or mirrored extension.

numpy / scipy / scikit-image only; no torch, no napari. This is a *development* set: every
hyperparameter, rule and threshold is chosen on it, the Levin set is only reported.

References
----------
G. Boracchi, A. Foi, "Modeling the performance of image restoration from motion blur",
IEEE TIP 21(8), 2012.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import ndimage, signal

__all__ = [
    "IMAGE_SIDE",
    "NOISE_STD",
    "SIZE_CLASSES",
    "CameraShakeCase",
    "camera_shake_case",
    "camera_shake_case_names",
    "camera_shake_cases",
    "size_class",
    "support_size",
    "trajectory_kernel",
]

IMAGE_SIDE = 255
"""Side of every sharp and blurry image (as the Levin set's)."""

NOISE_STD = 0.01
"""Standard deviation of the Gaussian noise of the noisy cases, on the [0, 1] scale."""

MAX_KERNEL = 75
"""Largest side of a kernel array; the photos are cropped with this much margin."""

SIZE_CLASSES = {"small": (11, 27), "medium": (29, 39), "large": (41, 75)}
"""Kernel-size classes (inclusive bounds of the kernel size a user would give)."""

_SAMPLES_PER_PIXEL = 4  # path samples per pixel of length: consecutive splats overlap


@dataclass(frozen=True, eq=False)
class CameraShakeCase:
    """One blurry image with its sharp original and its blur kernel.

    Attributes
    ----------
    name : str
        ``"<image>_k<kernel size>"``, e.g. ``"camera_k23"``; ``"_n"`` added for noisy cases.
    image : str
        The scikit-image photo it is cropped from.
    sharp : (255, 255) or (255, 255, 3) ndarray of float32
        The ground truth, in [0, 1]; RGB for the colour photos.
    blurry : ndarray of float32, same shape
        ``sharp`` convolved with ``kernel`` (each colour channel alike), plus the noise,
        clipped to [0, 1].
    kernel : (s, s) ndarray of float32
        The blur kernel in *convolution* orientation, non-negative, sum 1, odd side ``s``
        (11..75), its centre of mass on the middle pixel.
    kernel_size : int
        The kernel size a user would give: the side of the kernel's support (its bounding
        box), rounded up to odd. At most the kernel array's side (which is centred on the
        centre of mass, so it may be larger).
    size_class : str
        ``"small"``, ``"medium"`` or ``"large"`` (:data:`SIZE_CLASSES`).
    noise_std : float
        Standard deviation of the added Gaussian noise on the [0, 1] scale (0 or 0.01).
    seed : int
        Seed of the kernel's trajectory and of the noise.
    """

    name: str
    image: str
    sharp: np.ndarray
    blurry: np.ndarray
    kernel: np.ndarray
    kernel_size: int
    size_class: str
    noise_std: float
    seed: int

    @property
    def colour(self) -> bool:
        """Whether the images are RGB."""
        return self.sharp.ndim == 3

    @property
    def blurry_uint8(self) -> np.ndarray:
        """The blurry image rounded to 8 bits, as a user's photo would be."""
        return np.clip(np.rint(self.blurry * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- kernels


def trajectory_kernel(size: int, *, seed: int = 0, max_side: int = MAX_KERNEL) -> np.ndarray:
    """A camera-shake kernel: a Boracchi-Foi random trajectory whose support spans ``size``.

    Parameters
    ----------
    size : int
        Odd kernel size a user would give, 11 to 75: the larger side of the kernel's
        support, rounded up to odd.
    seed : int
        Seed of the trajectory; the same seed gives the same kernel.
    max_side : int
        Largest allowed side of the returned (centre-of-mass centred) array; a path whose
        centre of mass lies too far off its middle for that is drawn again.

    Returns
    -------
    kernel : (s, s) ndarray of float32
        Non-negative, sums to 1, odd ``s`` with ``size <= s <= max_side``, its centre of
        mass on the middle pixel (to the nearest pixel), convolution orientation.

    Raises
    ------
    ValueError
        If ``size`` is not an odd integer in [11, 75] or ``max_side`` is smaller than it.
    """
    if not (isinstance(size, (int, np.integer)) and size % 2 == 1 and 11 <= size <= 75):
        raise ValueError(f"size must be an odd integer in 11..75, got {size!r}")
    if max_side < size:
        raise ValueError(f"max_side ({max_side}) must be at least size ({size})")
    rng = np.random.default_rng(seed)
    for _ in range(100):
        path = _shake_path(rng)
        kernel = _rasterise(path, size)
        centred = _centre_on_mass(kernel)
        if centred.shape[0] <= max_side:
            return centred.astype(np.float32)
    raise RuntimeError(f"no trajectory of size {size} fits in {max_side} px (seed {seed})")


def _shake_path(rng: np.random.Generator, steps: int = 2000) -> np.ndarray:
    """A random camera-shake path as ``(n, 2)`` row/column positions: Boracchi & Foi's
    (2012) ``createTrajectory``, then the part of it seen in a random exposure."""
    # The trajectory's own parameters, drawn per path as in the released code.
    anxiety = 0.1 * rng.uniform()            # how much the hand wanders
    centripetal = 0.7 * rng.uniform()        # the pull back towards the start (inertia)
    gaussian = 10.0 * rng.uniform()          # strength of the random acceleration
    jerk_rate = 0.2 * rng.uniform()          # frequency of the abrupt turns ("big shakes")
    step = 64.0 / (steps - 1)                # constant speed; the path is rescaled later
    velocity = step * np.exp(1j * rng.uniform(0, 2 * np.pi))
    positions = np.zeros(steps, dtype=complex)
    for t in range(steps - 1):
        jerk = 0.0
        if rng.uniform() < jerk_rate * anxiety:
            jerk = 2 * velocity * np.exp(1j * (np.pi + rng.uniform() - 0.5))
        kick = gaussian * (rng.standard_normal() + 1j * rng.standard_normal())
        velocity = velocity + jerk + anxiety * (kick - centripetal * positions[t]) * step
        velocity = step * velocity / abs(velocity)
        positions[t + 1] = positions[t] + velocity
    # The exposure: the first part of the path (at least a quarter), as createPSFs does.
    length = int(steps * rng.uniform(0.25, 1.0))
    part = positions[:length]
    return np.stack([part.imag, part.real], axis=1)


def _rasterise(path: np.ndarray, size: int) -> np.ndarray:
    """The path scaled so that its larger extent is ``size - 2`` px, resampled densely and
    splatted with bilinear weights into a ``size x size`` array, sum 1."""
    path = path - path.min(axis=0)
    extent = float(path.max())
    if extent == 0:
        raise RuntimeError("a camera-shake path did not move")
    path = path * ((size - 2) / extent)
    # Resample by arc length so that every pixel along the path gets weight in proportion
    # to the time spent there (the speed is constant) and the splats overlap (connected).
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    count = max(2, int(np.ceil(arc[-1] * _SAMPLES_PER_PIXEL)))
    samples = np.linspace(0.0, arc[-1], count)
    points = np.stack([np.interp(samples, arc, path[:, i]) for i in range(2)], axis=1)
    # Centre the extent in the array, with the sub-pixel offset the path has.
    points += (size - 1 - points.max(axis=0)) / 2
    kernel = np.zeros((size, size))
    r0 = np.clip(np.floor(points[:, 0]).astype(int), 0, size - 2)
    c0 = np.clip(np.floor(points[:, 1]).astype(int), 0, size - 2)
    fr = points[:, 0] - r0
    fc = points[:, 1] - c0
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                           (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        np.add.at(kernel, (r0 + dr, c0 + dc), weight)
    return kernel / kernel.sum()


def _centre_on_mass(kernel: np.ndarray) -> np.ndarray:
    """The kernel trimmed to its support and zero-padded to the smallest odd square whose
    middle pixel is its centre of mass (rounded)."""
    rows, cols = np.nonzero(kernel)
    kernel = kernel[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    centre = np.rint(ndimage.center_of_mass(kernel)).astype(int)
    half = int(max(centre.max(), (np.array(kernel.shape) - 1 - centre).max()))
    side = 2 * half + 1
    out = np.zeros((side, side))
    top, left = half - centre
    out[top : top + kernel.shape[0], left : left + kernel.shape[1]] = kernel
    return out


def support_size(kernel: np.ndarray) -> int:
    """The larger side of a kernel's support (its non-zero bounding box), rounded up to odd."""
    rows, cols = np.nonzero(kernel)
    side = int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1
    return side + 1 - side % 2


def size_class(kernel_size: int) -> str:
    """The class (:data:`SIZE_CLASSES`) of a kernel size."""
    for name, (low, high) in SIZE_CLASSES.items():
        if low <= kernel_size <= high:
            return name
    raise ValueError(f"kernel_size {kernel_size} is in no size class {SIZE_CLASSES}")


# --------------------------------------------------------------------------- images


def _load(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


# (scikit-image name, scale, (row, col) of the crop's centre as fractions of the image).
# Scales below 1 are anti-aliased; chelsea (300 px high) is enlarged by 1.12 (cubic) to hold
# the 329 px window the largest kernel needs, so its finest detail is slightly soft.
_PHOTOS: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("camera", 1.0, (0.45, 0.5)),
    ("moon", 1.0, (0.5, 0.5)),
    ("brick", 1.0, (0.5, 0.5)),
    ("grass", 1.0, (0.5, 0.5)),
    ("gravel", 1.0, (0.5, 0.5)),
    ("astronaut", 0.75, (0.45, 0.5)),
    ("coffee", 1.0, (0.5, 0.5)),
    ("rocket", 0.85, (0.5, 0.45)),
    ("chelsea", 1.12, (0.5, 0.5)),
    ("hubble_deep_field", 0.6, (0.5, 0.5)),
)

# Kernel sizes a user would give, per photo: a small one (11-19), one of Levin's larger
# sizes (21-27), a medium one (29-39) and a large one (41-75); noisy: the index of the
# kernel (0-3) that gets 1 % noise, rotating over the size classes.
_SIZES = (
    (11, 21, 29, 41),
    (13, 23, 31, 45),
    (15, 25, 33, 49),
    (17, 27, 35, 53),
    (19, 21, 37, 57),
    (11, 23, 39, 61),
    (13, 25, 29, 65),
    (15, 27, 31, 69),
    (17, 21, 33, 73),
    (19, 23, 35, 75),
)
_NOISY = (0, 1, 2, 3, 1, 2, 3, 0, 2, 3)


@cache
def _photo(name: str, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """A (255 + 74)-px square window of the photo, in [0, 1], float64 (read-only)."""
    from skimage import transform

    image = _load(name).astype(np.float64) / 255.0
    if scale != 1.0:
        channel_axis = -1 if image.ndim == 3 else None
        image = transform.rescale(image, scale, anti_aliasing=scale < 1,
                                  channel_axis=channel_axis, order=3)
        image = np.clip(image, 0.0, 1.0)
    side = IMAGE_SIDE + MAX_KERNEL - 1
    if min(image.shape[:2]) < side:
        raise RuntimeError(f"{name} at scale {scale} is smaller than {side} px")
    top = int(np.clip(round(centre[0] * image.shape[0]) - side // 2, 0, image.shape[0] - side))
    left = int(np.clip(round(centre[1] * image.shape[1]) - side // 2, 0, image.shape[1] - side))
    window = np.ascontiguousarray(image[top : top + side, left : left + side])
    window.flags.writeable = False
    return window


def _blur(window: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The central ``IMAGE_SIDE`` square of ``window`` convolved with ``kernel`` ('valid' on
    just the margin the kernel needs), each channel alike."""
    half = kernel.shape[0] // 2
    margin = (window.shape[0] - IMAGE_SIDE) // 2
    lo, hi = margin - half, margin + IMAGE_SIDE + half
    part = window[lo:hi, lo:hi]
    if part.ndim == 2:
        return signal.fftconvolve(part, kernel, mode="valid")
    return np.stack([signal.fftconvolve(part[..., c], kernel, mode="valid")
                     for c in range(part.shape[2])], axis=-1)


def _case(index: int, which: int) -> CameraShakeCase:
    name, scale, centre = _PHOTOS[index]
    kernel_size = _SIZES[index][which]
    seed = 1000 + 10 * index + which
    noisy = _NOISY[index] == which
    kernel = trajectory_kernel(kernel_size, seed=seed)
    window = _photo(name, scale, centre)
    margin = (window.shape[0] - IMAGE_SIDE) // 2
    sharp = window[margin : margin + IMAGE_SIDE, margin : margin + IMAGE_SIDE]
    blurry = _blur(window, kernel.astype(np.float64))
    noise_std = NOISE_STD if noisy else 0.0
    if noisy:
        # A separate stream from the kernel's, so the noise does not change the kernel.
        blurry = blurry + noise_std * np.random.default_rng([seed, 1]).standard_normal(
            blurry.shape)
    blurry = np.clip(blurry, 0.0, 1.0)
    size = support_size(kernel)
    if size != kernel_size:  # the rasterisation spans exactly the size asked for
        raise RuntimeError(f"kernel of seed {seed} spans {size} px, not {kernel_size}")
    short = {"hubble_deep_field": "hubble"}.get(name, name)
    return CameraShakeCase(
        name=f"{short}_k{size}" + ("_n" if noisy else ""),
        image=name,
        sharp=sharp.astype(np.float32),
        blurry=blurry.astype(np.float32),
        kernel=kernel,
        kernel_size=size,
        size_class=size_class(size),
        noise_std=noise_std,
        seed=seed,
    )


def _case_names() -> dict[str, tuple[int, int]]:
    """Case name -> (photo index, kernel index), without building the images."""
    names = {}
    for index, (name, _, _) in enumerate(_PHOTOS):
        short = {"hubble_deep_field": "hubble"}.get(name, name)
        for which, size in enumerate(_SIZES[index]):
            noisy = "_n" if _NOISY[index] == which else ""
            names[f"{short}_k{size}{noisy}"] = (index, which)
    return names


def camera_shake_cases() -> list[CameraShakeCase]:
    """All cases of the camera-shake development set, in a fixed order.

    The order interleaves the size classes (each photo's small, Levin-size, medium and large
    kernel, photo after photo), so that the first cases of a run already span all classes.

    Returns
    -------
    list of CameraShakeCase
        40 cases; the same arrays on every call (deterministic, a few seconds).
    """
    return [_case(index, which) for index, which in _case_names().values()]


def camera_shake_case(name: str) -> CameraShakeCase:
    """One case of the set by name (see :func:`camera_shake_case_names`).

    Raises
    ------
    ValueError
        If no case has that name.
    """
    names = _case_names()
    if name not in names:
        raise ValueError(f"no camera-shake case named {name!r}; the cases are {list(names)}")
    return _case(*names[name])


def camera_shake_case_names() -> list[str]:
    """The names of the cases, in the order of :func:`camera_shake_cases`, without building
    them."""
    return list(_case_names())
