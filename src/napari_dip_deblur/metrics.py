"""Quality measures for blind deblurring: the Levin et al. (2009) image score and kernel errors.

The image score is the protocol behind every published number on the Levin benchmark
(Levin's ``comp_upto_shift``, as run by SelfDeblur's ``statistic/statistic_levin.m``):

1. crop ``crop`` (15) pixels from every border of the ground truth;
2. resample the estimate at every sub-pixel shift in ``[-max_shift, max_shift]`` (5 px) in
   steps of ``step`` (0.25 px), with bilinear interpolation, and keep the shift with the
   smallest sum of squared differences to the cropped ground truth;
3. report PSNR (peak 255) and SSIM (Wang et al. 2004: Gaussian 11x11 window, sigma 1.5,
   K1 = 0.01, K2 = 0.03, data range 255, population covariances, mean of the 'valid' map)
   of the aligned crop.

A blind method recovers the image only up to a translation (shifting the image one way and the
kernel the other leaves the blur unchanged), hence the alignment.

All images are expected in the range [0, 255] (8-bit scale) as floats, or as ``uint8``.
numpy / scipy / scikit-image only: no torch, no napari.

References
----------
A. Levin, Y. Weiss, F. Durand, W. T. Freeman, "Understanding and evaluating blind
deconvolution algorithms", CVPR 2009.
Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
visibility to structural similarity", IEEE TIP 13(4), 2004.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import signal
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = [
    "KernelError",
    "LevinAlignment",
    "LevinScore",
    "kernel_error",
    "levin_align",
    "levin_score",
]

PEAK = 255.0
"""Peak value of the 8-bit scale the Levin protocol works on."""

_SSIM_OPTIONS = {
    "data_range": PEAK,
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "K1": 0.01,
    "K2": 0.03,
}
_SSIM_WINDOW = 11  # what skimage's Gaussian (sigma 1.5, truncate 3.5) spans


@dataclass(frozen=True)
class LevinScore:
    """Image quality of an estimate under the Levin et al. (2009) protocol.

    Attributes
    ----------
    psnr : float
        Peak signal-to-noise ratio in dB (peak 255) of the aligned, cropped estimate;
        ``inf`` when it matches the truth exactly.
    ssim : float
        Mean structural similarity of the aligned, cropped estimate.
    shift : tuple of float
        ``(dy, dx)``, the displacement (rows, columns) of the estimate's content relative to
        the truth that the alignment undid: the aligned image is the estimate sampled at
        ``(y + dy, x + dx)``.
    """

    psnr: float
    ssim: float
    shift: tuple[float, float]


@dataclass(frozen=True, eq=False)
class LevinAlignment:
    """The estimate aligned onto the cropped ground truth (Levin's ``tI1``).

    Attributes
    ----------
    aligned : (M - 2 crop, N - 2 crop) ndarray of float64
        The estimate resampled at the best shift, on the crop of the truth.
    reference : (M - 2 crop, N - 2 crop) ndarray of float64
        The cropped ground truth.
    shift : tuple of float
        ``(dy, dx)`` as in `LevinScore`.
    sse : float
        Sum of squared differences between ``aligned`` and ``reference``.
    """

    aligned: np.ndarray
    reference: np.ndarray
    shift: tuple[float, float]
    sse: float


@dataclass(frozen=True)
class KernelError:
    """How far an estimated blur kernel is from the true one, up to a translation.

    Attributes
    ----------
    ncc : float
        Largest normalised cross-correlation ``<k_est, shifted k_true> / (|k_est| |k_true|)``
        over all integer shifts; 1 for identical kernels (up to shift and scale), 0 for
        kernels with no overlap at any shift.
    l2 : float
        Euclidean distance between the two kernels, each normalised to sum 1, at the shift
        that maximises ``ncc``.
    shift : tuple of float
        ``(dy, dx)``, the displacement of the estimate's content relative to the truth at that
        shift, with both kernels centred on their middle pixel (half-integers when the two
        sizes differ in parity).
    """

    ncc: float
    l2: float
    shift: tuple[float, float]


# --------------------------------------------------------------------------- image score


def levin_score(
    estimate: ArrayLike,
    truth: ArrayLike,
    *,
    crop: int = 15,
    max_shift: float = 5.0,
    step: float = 0.25,
) -> LevinScore:
    """Score a deblurred image against the ground truth as Levin et al. (2009) do.

    Parameters
    ----------
    estimate : (M, N) array_like
        The restored image, in [0, 255] (float) or ``uint8``. It is scored as given: no
        clipping or rounding.
    truth : (M, N) array_like
        The sharp ground truth, in [0, 255] (float) or ``uint8``.
    crop : int, optional
        Pixels removed from every border of the truth before comparing (15).
    max_shift : float, optional
        Largest shift, in pixels, searched along each axis (5). Must not exceed ``crop``.
    step : float, optional
        Spacing of the searched shifts, in pixels (0.25).

    Returns
    -------
    LevinScore
        PSNR (dB, peak 255), SSIM and the shift that aligned the estimate.

    Raises
    ------
    ValueError
        If the images are not 2-D, differ in shape, contain non-finite values, if the truth
        looks like a [0, 1] image, or if ``crop``, ``max_shift`` or ``step`` do not fit.

    Notes
    -----
    The search covers ``(2 max_shift / step + 1) ** 2`` shifts (1681 by default). It is exact
    but fast: the squared error of a bilinear blend of four integer-shifted copies is a
    quadratic form in the blend weights, so only the inner products between integer-shifted
    residuals are computed on pixels, and every sub-pixel shift's error follows from them.
    Ties (equal errors) go to the smallest shift.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.random.default_rng(0).uniform(0, 255, (64, 64))
    >>> levin_score(np.roll(truth, 2, axis=1), truth).shift
    (0.0, 2.0)
    """
    alignment = levin_align(estimate, truth, crop=crop, max_shift=max_shift, step=step)
    with np.errstate(divide="ignore"):  # an exact match has infinite PSNR
        psnr = peak_signal_noise_ratio(alignment.reference, alignment.aligned, data_range=PEAK)
    ssim = structural_similarity(alignment.reference, alignment.aligned, **_SSIM_OPTIONS)
    return LevinScore(psnr=float(psnr), ssim=float(ssim), shift=alignment.shift)


def levin_align(
    estimate: ArrayLike,
    truth: ArrayLike,
    *,
    crop: int = 15,
    max_shift: float = 5.0,
    step: float = 0.25,
) -> LevinAlignment:
    """Align an estimate onto the cropped ground truth by the best sub-pixel shift.

    Parameters are those of `levin_score`, which calls this and then measures PSNR and SSIM.
    Useful on its own for error ratios (``sse`` of a blind estimate over that of a non-blind
    one) and for showing the aligned image.

    Parameters
    ----------
    estimate, truth : (M, N) array_like
        As in `levin_score`.
    crop : int, optional
        Border removed from the truth.
    max_shift : float, optional
        Largest shift searched along each axis.
    step : float, optional
        Spacing of the searched shifts.

    Returns
    -------
    LevinAlignment
        The aligned estimate, the cropped truth, the shift and the squared error.
    """
    est, ref = _as_image_pair(estimate, truth)
    shifts = _shift_grid(ref.shape, crop, max_shift, step)
    reference = ref[crop : ref.shape[0] - crop, crop : ref.shape[1] - crop]
    padded = np.pad(est, ((0, 1), (0, 1)), mode="edge")  # zero-weight tap at +max_shift
    errors = _shift_errors(padded, reference, crop, shifts)
    iy, ix = _argmin_nearest_zero(errors, shifts[:, None] ** 2 + shifts[None, :] ** 2)
    dy, dx = float(shifts[iy]), float(shifts[ix])
    aligned = _bilinear_window(padded, crop, reference.shape, dy, dx)
    sse = float(np.sum((aligned - reference) ** 2))
    return LevinAlignment(aligned=aligned, reference=reference, shift=(dy, dx), sse=sse)


def _as_image_pair(estimate: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate two images and return them as float64 arrays."""
    est = _as_float_image(estimate, "estimate")
    ref = _as_float_image(truth, "truth")
    if est.shape != ref.shape:
        raise ValueError(
            f"estimate and truth must have the same shape, got {est.shape} and {ref.shape}; "
            "crop or pad the estimate to the blurry image's size first"
        )
    if not np.issubdtype(np.asarray(truth).dtype, np.integer) and 0 < ref.max() <= 1.0:
        raise ValueError(
            "truth looks like a [0, 1] image (max <= 1); the Levin protocol works on the "
            "8-bit scale: multiply both images by 255"
        )
    return est, ref


def _as_float_image(image: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D grayscale image, got shape {array.shape}; "
            "score colour images channel by channel or on their luminance"
        )
    if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _shift_grid(shape: tuple[int, int], crop: int, max_shift: float, step: float) -> np.ndarray:
    """The searched shifts ``-max_shift, -max_shift + step, ... <= max_shift``."""
    if not (isinstance(crop, (int, np.integer)) and crop >= 0):
        raise ValueError(f"crop must be a non-negative integer, got {crop!r}")
    if not (math.isfinite(max_shift) and max_shift >= 0):
        raise ValueError(f"max_shift must be a finite number >= 0, got {max_shift!r}")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    if math.ceil(max_shift) > crop:
        raise ValueError(
            f"max_shift ({max_shift}) must not exceed crop ({crop}): the shifted estimate "
            "would be sampled outside the image"
        )
    inner = (shape[0] - 2 * crop, shape[1] - 2 * crop)
    if min(inner) < _SSIM_WINDOW:
        raise ValueError(
            f"images of shape {shape} cropped by {crop} leave {inner}, smaller than the "
            f"{_SSIM_WINDOW}x{_SSIM_WINDOW} SSIM window; use a smaller crop or larger images"
        )
    count = math.floor(2 * max_shift / step + 1e-9) + 1
    return -max_shift + step * np.arange(count)


def _shift_errors(
    padded: np.ndarray, reference: np.ndarray, origin: int, shifts: np.ndarray
) -> np.ndarray:
    """Squared error of the bilinearly shifted estimate for every pair of shifts.

    ``padded`` is the estimate with one extra (edge) row and column; the window of
    ``reference``'s shape starting at ``(origin, origin)`` is compared with ``reference``.

    Returns
    -------
    errors : (S, S) ndarray
        ``errors[i, j]`` is the error at shift ``(shifts[i], shifts[j])``.

    Notes
    -----
    A shift ``s = n + f`` (``n`` integer, ``0 <= f < 1``) blends the integer-shifted residuals
    ``R[n] = window(n) - reference`` and ``R[n + 1]`` with weights ``1 - f`` and ``f`` (per
    axis). The squared norm of a blend of the four corners ``R[n, m] .. R[n + 1, m + 1]`` needs
    only their inner products, which are computed once for all integer offsets.
    """
    base = np.floor(shifts).astype(np.intp)
    frac = shifts - base
    offsets = np.arange(base.min(), base.max() + 2)  # every integer corner used
    gram = _corner_products(padded, reference, origin, offsets)
    n = (base - offsets[0])[:, None]  # row corner index, per searched dy
    m = (base - offsets[0])[None, :]  # column corner index, per searched dx
    u0, u1 = (1 - frac)[:, None], frac[:, None]
    v0, v1 = (1 - frac)[None, :], frac[None, :]
    s00, s01, s10, s11, s1m = gram
    return (
        (u0 * v0) ** 2 * s00[n, m]
        + (u0 * v1) ** 2 * s00[n, m + 1]
        + (u1 * v0) ** 2 * s00[n + 1, m]
        + (u1 * v1) ** 2 * s00[n + 1, m + 1]
        + 2 * u0 * u0 * v0 * v1 * s01[n, m]
        + 2 * u1 * u1 * v0 * v1 * s01[n + 1, m]
        + 2 * u0 * u1 * v0 * v0 * s10[n, m]
        + 2 * u0 * u1 * v1 * v1 * s10[n, m + 1]
        + 2 * u0 * u1 * v0 * v1 * (s11[n, m] + s1m[n, m])
    )


def _corner_products(
    padded: np.ndarray, reference: np.ndarray, origin: int, offsets: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Inner products between neighbouring integer-shifted residuals.

    With ``R[a, b] = padded[origin + a + y, origin + b + x] - reference[y, x]`` (``a, b`` taken
    from ``offsets``), returns ``s00[a, b] = <R[a,b], R[a,b]>``, ``s01 = <R[a,b], R[a,b+1]>``,
    ``s10 = <R[a,b], R[a+1,b]>``, ``s11 = <R[a,b], R[a+1,b+1]>`` and
    ``s1m = <R[a,b+1], R[a+1,b]>`` (indices into ``offsets``).
    """
    k = offsets.size
    h, w = reference.shape
    s00, s01 = np.empty((k, k)), np.empty((k, k - 1))
    s10, s11, s1m = np.empty((k - 1, k)), np.empty((k - 1, k - 1)), np.empty((k - 1, k - 1))

    def residual_row(a: int) -> np.ndarray:
        rows = padded[origin + offsets[a] : origin + offsets[a] + h]
        stack = [rows[:, origin + b : origin + b + w] - reference for b in offsets]
        return np.stack(stack).reshape(k, h * w)

    current = residual_row(0)
    for a in range(k):
        same = current @ current.T
        s00[a] = np.diag(same)
        s01[a] = np.diag(same, 1)
        if a + 1 < k:
            following = residual_row(a + 1)
            cross = current @ following.T  # cross[b, c] = <R[a, b], R[a + 1, c]>
            s10[a] = np.diag(cross)
            s11[a] = np.diag(cross, 1)
            s1m[a] = np.diag(cross, -1)
            current = following
    return s00, s01, s10, s11, s1m


def _bilinear_window(
    image: np.ndarray, origin: int, shape: tuple[int, int], dy: float, dx: float
) -> np.ndarray:
    """``image`` sampled bilinearly at ``(origin + y + dy, origin + x + dx)`` on a grid."""
    h, w = shape
    n, m = math.floor(dy), math.floor(dx)
    fy, fx = dy - n, dx - m
    top = origin + n
    left = origin + m
    rows = (1 - fy) * image[top : top + h] + fy * image[top + 1 : top + 1 + h]
    return (1 - fx) * rows[:, left : left + w] + fx * rows[:, left + 1 : left + 1 + w]


def _argmin_nearest_zero(values: np.ndarray, distance: np.ndarray) -> tuple[int, int]:
    """Index of the smallest value; among exact ties, the one with the smallest distance."""
    ties = values == values.min()
    index = np.argmin(np.where(ties, distance, np.inf))
    iy, ix = np.unravel_index(index, values.shape)
    return int(iy), int(ix)


# --------------------------------------------------------------------------- kernel error


def kernel_error(estimate: ArrayLike, truth: ArrayLike) -> KernelError:
    """Compare an estimated blur kernel with the true one, up to an integer translation.

    Parameters
    ----------
    estimate : (kh, kw) array_like
        The estimated kernel, in convolution orientation. Any positive scale.
    truth : (th, tw) array_like
        The true kernel, in the same orientation. Sizes may differ (e.g. 17x17 vs 19x19).

    Returns
    -------
    KernelError
        ``ncc`` (max normalised cross-correlation), ``l2`` (distance of the sum-1 kernels at
        that shift) and the shift.

    Raises
    ------
    ValueError
        If a kernel is not 2-D, is empty, holds non-finite values, is all zero or has a
        non-positive sum.

    Notes
    -----
    Both kernels are embedded, zero-padded, in a canvas large enough for every relative
    integer shift with any overlap, and the full 2-D cross-correlation gives the inner
    product at all of them. The correlation is not mean-subtracted, so for non-negative
    kernels ``0 <= ncc <= 1``. A kernel in the wrong orientation (rotated 180°) scores
    visibly lower than the same kernel correctly oriented, unless it is symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> k = np.zeros((5, 5)); k[1, 1:4] = 1
    >>> e = kernel_error(np.pad(k, 1), k)
    >>> round(e.ncc, 6), round(e.l2, 6), e.shift
    (1.0, 0.0, (0.0, 0.0))
    """
    est = _as_kernel(estimate, "estimate")
    ref = _as_kernel(truth, "truth")
    corr = signal.correlate(est, ref, mode="full", method="direct")
    ncc_map = corr / (np.linalg.norm(est) * np.linalg.norm(ref))
    # corr[i, j] pairs est[p] with ref[p - t], t = (i, j) - (th - 1, tw - 1): the truth
    # displaced by t in the estimate's array coordinates.
    t_rows = np.arange(corr.shape[0]) - (ref.shape[0] - 1)
    t_cols = np.arange(corr.shape[1]) - (ref.shape[1] - 1)
    # Centre-relative displacement of the estimate w.r.t. the truth.
    d_rows = t_rows + (ref.shape[0] - 1) / 2 - (est.shape[0] - 1) / 2
    d_cols = t_cols + (ref.shape[1] - 1) / 2 - (est.shape[1] - 1) / 2
    distance = d_rows[:, None] ** 2 + d_cols[None, :] ** 2
    i, j = _argmin_nearest_zero(-ncc_map, distance)
    l2 = _l2_at_offset(est / est.sum(), ref / ref.sum(), (int(t_rows[i]), int(t_cols[j])))
    return KernelError(
        ncc=float(ncc_map[i, j]), l2=l2, shift=(float(d_rows[i]), float(d_cols[j]))
    )


def _as_kernel(kernel: ArrayLike, name: str) -> np.ndarray:
    if np.ndim(kernel) != 2:
        raise ValueError(f"{name} kernel must be 2-D, got shape {np.shape(kernel)}")
    array = _as_float_image(kernel, f"{name} kernel")
    if array.size == 0:
        raise ValueError(f"{name} kernel is empty")
    if not np.any(array):
        raise ValueError(f"{name} kernel is all zero")
    if array.sum() <= 0:
        raise ValueError(f"{name} kernel must have a positive sum, got {array.sum():g}")
    return array


def _l2_at_offset(est: np.ndarray, ref: np.ndarray, offset: tuple[int, int]) -> float:
    """``|est - ref displaced by offset|`` on a canvas holding both kernels entirely."""
    (eh, ew), (rh, rw) = est.shape, ref.shape
    canvas = np.zeros((eh + 2 * (rh - 1), ew + 2 * (rw - 1)))
    canvas[rh - 1 : rh - 1 + eh, rw - 1 : rw - 1 + ew] += est
    top, left = rh - 1 + offset[0], rw - 1 + offset[1]
    canvas[top : top + rh, left : left + rw] -= ref
    return float(np.linalg.norm(canvas))
