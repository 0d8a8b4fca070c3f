"""Loader for the Levin et al. (2009) blind-deconvolution benchmark (4 images x 8 kernels).

The data set is not shipped with the package: point `load_levin` at a folder holding
``im{i}_kernel{j}_img.png`` (blurry), ``im{i}.png`` (sharp) and ``levin09_kernels_float64.npz``
(true kernels), for instance with the environment variable ``DIP_DEBLUR_LEVIN``.
numpy / scikit-image only: no torch, no napari.

References
----------
A. Levin, Y. Weiss, F. Durand, W. T. Freeman, "Understanding and evaluating blind
deconvolution algorithms", CVPR 2009.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage import io

__all__ = [
    "ENV_VAR",
    "IMAGES",
    "KERNELS",
    "KERNEL_SIZES",
    "LevinCase",
    "levin_root",
    "load_levin",
    "load_levin_kernels",
]

ENV_VAR = "DIP_DEBLUR_LEVIN"
"""Environment variable naming the folder of the Levin data set."""

IMAGES = (1, 2, 3, 4)
"""Indices of the four sharp images."""

KERNELS = (1, 2, 3, 4, 5, 6, 7, 8)
"""Indices of the eight blur kernels."""

KERNEL_SIZES = {1: 17, 2: 15, 3: 13, 4: 27, 5: 11, 6: 19, 7: 21, 8: 21}
"""Kernel size SelfDeblur estimates for each kernel (its ``selfdeblur_levin.py``).

The true kernels are 19, 17, 15, 27, 13, 21, 23, 23 pixels wide, with a zero border, so these
sizes (true size - 2, kernel 4 unchanged) still hold their whole support.
"""

_KERNEL_FILE = "levin09_kernels_float64.npz"


@dataclass(frozen=True, eq=False)
class LevinCase:
    """One blurry image of the Levin set with its ground truth.

    The arrays are read-only (the sharp image is shared by the eight cases of one image).

    Attributes
    ----------
    image_index : int
        Sharp image ``i`` (1..4).
    kernel_index : int
        Blur kernel ``j`` (1..8).
    blurry : (255, 255) ndarray of float64
        The blurry photograph, in [0, 255].
    sharp : (255, 255) ndarray of float64
        The ground-truth sharp image, in [0, 255].
    kernel : (k, k) ndarray of float64
        The calibrated true kernel in convolution orientation (``blurry`` is close to
        ``scipy.signal.convolve(sharp, kernel, mode='same')`` up to a shift of a few pixels),
        non-negative, sums to 1.
    kernel_size : int
        The kernel size SelfDeblur estimates for this kernel (`KERNEL_SIZES`).
    name : str
        ``"im{i}_kernel{j}"``.
    """

    image_index: int
    kernel_index: int
    blurry: np.ndarray
    sharp: np.ndarray
    kernel: np.ndarray
    kernel_size: int
    name: str


def levin_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Find the folder of the Levin data set.

    Parameters
    ----------
    root : path-like, optional
        The folder. When omitted: the environment variable ``DIP_DEBLUR_LEVIN``, else
        ``shared/data/levin`` inside or beside the repository that holds the current working
        directory or this module.

    Returns
    -------
    pathlib.Path
        A folder that holds ``levin09_kernels_float64.npz``.

    Raises
    ------
    FileNotFoundError
        Saying where it looked and how to point at the data.
    """
    if root is None and os.environ.get(ENV_VAR):
        root = os.environ[ENV_VAR]
    if root is not None:
        path = Path(root).expanduser()
        if not (path / _KERNEL_FILE).is_file():
            raise FileNotFoundError(
                f"no Levin data set in {path} (missing {_KERNEL_FILE}); "
                f"check the folder given as root or in ${ENV_VAR}"
            )
        return path
    candidates = _default_candidates()
    for path in candidates:
        if (path / _KERNEL_FILE).is_file():
            return path
    looked = "\n  ".join(str(path) for path in candidates)
    raise FileNotFoundError(
        f"the Levin data set was not found; looked in:\n  {looked}\n"
        f"Set the environment variable {ENV_VAR} to the folder holding im1.png, "
        f"im1_kernel1_img.png, ... and {_KERNEL_FILE}, or pass root=..."
    )


def _default_candidates() -> list[Path]:
    """``shared/data/levin`` inside and beside each enclosing repository, without repeats."""
    bases: list[Path] = []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        repo = _enclosing_repo(start)
        bases.extend([repo, repo.parent] if repo is not None else [start.parent])
    candidates: list[Path] = []
    for base in bases:
        path = (base / "shared" / "data" / "levin").resolve()
        if path not in candidates:
            candidates.append(path)
    return candidates


def _enclosing_repo(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return None


def load_levin_kernels(root: str | os.PathLike[str] | None = None) -> dict[int, np.ndarray]:
    """The eight true kernels, in convolution orientation.

    Parameters
    ----------
    root : path-like, optional
        The data folder (see `levin_root`).

    Returns
    -------
    dict of int to ndarray of float64
        Kernel index (1..8) to its kernel, which sums to 1.

    Notes
    -----
    The stored float kernels (``Levin09.mat``) satisfy ``blurry ~ correlate(sharp, k)``, so
    the convolution kernel is ``k`` rotated by 180°. Checked on all 32 pairs: aligned as in
    `~napari_dip_deblur.metrics.levin_score`, ``convolve(sharp, kernel, mode='same')`` matches
    the blurry photograph at 40-49 dB PSNR, against 25-43 dB with ``k`` unrotated (better in
    every pair, by at least 2.7 dB).
    """
    path = levin_root(root) / _KERNEL_FILE
    with np.load(path) as stored:
        kernels = {j: np.asarray(stored[f"kernel{j}"], dtype=np.float64) for j in KERNELS}
    return {j: _read_only(np.ascontiguousarray(k[::-1, ::-1])) for j, k in kernels.items()}


def load_levin(
    root: str | os.PathLike[str] | None = None,
    *,
    images: Iterable[int] | None = None,
    kernels: Iterable[int] | None = None,
) -> list[LevinCase]:
    """Load the Levin et al. (2009) benchmark: blurry images, ground truth and kernels.

    Parameters
    ----------
    root : path-like, optional
        The data folder; by default found as `levin_root` describes.
    images : iterable of int, optional
        Sharp-image indices to load (1..4); all by default.
    kernels : iterable of int, optional
        Kernel indices to load (1..8); all by default.

    Returns
    -------
    list of LevinCase
        Ordered by image, then kernel: ``im1_kernel1, im1_kernel2, ..., im4_kernel8``.

    Raises
    ------
    FileNotFoundError
        If the folder or one of its files is missing.
    ValueError
        If an index is out of range or an image is not 8-bit grayscale.

    Examples
    --------
    >>> cases = load_levin()                                  # doctest: +SKIP
    >>> len(cases), cases[0].name, cases[0].kernel_size       # doctest: +SKIP
    (32, 'im1_kernel1', 17)
    """
    folder = levin_root(root)
    image_ids = _indices(images, IMAGES, "images")
    kernel_ids = _indices(kernels, KERNELS, "kernels")
    true_kernels = load_levin_kernels(folder)
    cases = []
    for i in image_ids:
        sharp = _read_gray(folder / f"im{i}.png")
        for j in kernel_ids:
            cases.append(
                LevinCase(
                    image_index=i,
                    kernel_index=j,
                    blurry=_read_gray(folder / f"im{i}_kernel{j}_img.png"),
                    sharp=sharp,
                    kernel=true_kernels[j],
                    kernel_size=KERNEL_SIZES[j],
                    name=f"im{i}_kernel{j}",
                )
            )
    return cases


def _indices(chosen: Iterable[int] | None, valid: tuple[int, ...], name: str) -> list[int]:
    if chosen is None:
        return list(valid)
    picked = sorted({int(index) for index in chosen})
    wrong = [index for index in picked if index not in valid]
    if wrong or not picked:
        raise ValueError(f"{name} must be a non-empty selection of {valid}, got {picked}")
    return picked


def _read_gray(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"missing Levin file {path}")
    image = io.imread(path)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            f"{path} should be an 8-bit grayscale image, got shape {image.shape}, "
            f"dtype {image.dtype}"
        )
    return _read_only(image.astype(np.float64))


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
