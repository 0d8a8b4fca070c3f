"""Kernel geometry: its support (how big the blur really is), cleaning and centring.

:func:`suggest_kernel_size` answers "which kernel size should I ask for?": it runs a short
blind estimation with a generous size and measures the support of the kernel found, i.e. the
smallest box holding most of its mass once the estimate's noise floor is removed. The other
functions are numpy only and serve the non-blind step too (a kernel is cleaned and centred
before it is applied, so the restored image stays aligned with the input).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .api import Snapshot

__all__ = [
    "KernelSizeSuggestion",
    "KernelSupport",
    "centre_kernel",
    "clean_kernel",
    "clean_option",
    "deconvolution_kernel",
    "fit_kernel",
    "kernel_floor",
    "kernel_support",
    "needs_cleaning",
    "suggest_kernel_size",
    "suggest_kernel_size_iter",
]

#: The default generous size of :func:`suggest_kernel_size` (blur streaks of hand shake
#: and of the Levin set are at most 27 px; microscope PSFs are usually smaller).
DEFAULT_MAX_SIZE = 41

#: What a suggestion run with the ``fast`` preset uses unless told otherwise: ``fast`` as it
#: was when the suggestion was measured (docs/benchmarks/real-inputs.md). Its 48-channel
#: generator of 2026-11-26 collapses more often on an oversized kernel, which a suggestion
#: run always has, and its fit check would double the run (docs/presets.md). One start, on
#: all of the crop it is given (its own ``region``): ``fast``'s two starts and its
#: ``estimation_crop`` came later, and would double the run or shrink its crop; so did the
#: kernel energy prior, which spreads the kernel and so could widen the measured support.
SUGGEST_FAST_OVERRIDES = {"channels": 64, "iterations": 300, "starts": 1,
                          "estimation_crop": None,
                          "phases": ({"start": 0.0, "terms": {"mae": 1.0}},
                                     {"start": 0.2, "terms": {"mae": 1.0, "ssim": 1.0}})}


@dataclass(frozen=True)
class KernelSupport:
    """Where a kernel's mass lies.

    Attributes
    ----------
    shape : (int, int)
        Height and width of the smallest box holding ``mass`` of the kernel's mass (after
        the floor is removed).
    box : (int, int, int, int)
        That box as ``(y0, x0, height, width)`` in the kernel array.
    floor : float
        The noise floor removed (in units of the kernel normalised to sum 1).
    mass : float
        The fraction asked for.
    touches_border : bool
        Whether the box reaches the kernel array's edge: the blur may be larger than the
        array, so the support is a lower bound.
    """

    shape: tuple[int, int]
    box: tuple[int, int, int, int]
    floor: float
    mass: float
    touches_border: bool


@dataclass(frozen=True)
class KernelSizeSuggestion:
    """The outcome of :func:`suggest_kernel_size`.

    Attributes
    ----------
    size : (int, int)
        The suggested odd kernel size (support plus a margin).
    support : KernelSupport
        The support measured on the generous estimate.
    max_size : (int, int)
        The generous size the estimate was run with.
    kernel : (kh, kw) ndarray of float32
        The generous estimate.
    result : Result
        The blind run (its ``image`` is the restored crop it ran on).
    region : Region or None
        The crop the run used (None: the whole image).
    """

    size: tuple[int, int]
    support: KernelSupport
    max_size: tuple[int, int]
    kernel: np.ndarray
    result: Any
    region: Any

    @property
    def reliable(self) -> bool:
        """False when the support reached the edge of the generous kernel: run again with a
        larger ``max_size``."""
        return not self.support.touches_border


def _as_kernel(kernel: Any) -> np.ndarray:
    array = np.asarray(kernel, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"kernel must be a non-empty 2-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("kernel contains NaN or infinite values")
    total = array.sum()
    if not total > 0:
        raise ValueError(f"kernel must have a positive sum, got {total:g}")
    return array / total


def kernel_floor(kernel: Any, *, quantile: float = 0.9) -> float:
    """The estimate's background level: a high quantile of its outermost ring of pixels.

    A blind estimate (a softmax output) is positive everywhere; far from the blur its values
    are noise. The outer ring of a generous kernel is background, so its 90th percentile is
    a level below which a pixel is indistinguishable from noise. Kernels smaller than 5 x 5
    have no ring to spare: their floor is 0.

    Parameters
    ----------
    kernel : (kh, kw) array_like
        Any positive scale (normalised to sum 1 here).
    quantile : float
        Quantile of the ring taken as the floor.

    Returns
    -------
    float
        The floor, in units of the kernel normalised to sum 1.
    """
    k = _as_kernel(kernel)
    if min(k.shape) < 5:
        return 0.0
    ring = np.concatenate([k[0], k[-1], k[1:-1, 0], k[1:-1, -1]])
    return float(np.quantile(ring, quantile))


def clean_kernel(kernel: Any, floor: float | None = None) -> np.ndarray:
    """Subtract the noise floor, clip at zero and renormalise to sum 1.

    Parameters
    ----------
    kernel : (kh, kw) array_like
    floor : float, optional
        Default: :func:`kernel_floor`. If nothing is left above the floor, the kernel is
        returned normalised but otherwise unchanged.

    Returns
    -------
    (kh, kw) ndarray of float32
    """
    k = _as_kernel(kernel)
    floor = kernel_floor(k) if floor is None else float(floor)
    cleaned = np.clip(k - floor, 0.0, None)
    if cleaned.sum() <= 0:
        cleaned = k
    return (cleaned / cleaned.sum()).astype(np.float32)


def needs_cleaning(kernel: Any, *, spare: float = 0.4, mass: float = 0.97) -> bool:
    """Whether a blind estimate looks oversized, so that its noise floor should go.

    A softmax estimate is positive everywhere. Where the blur fills the array the floor is
    a few pixels of tail and removing it costs a little; where the array is much larger than
    the blur, the floor covers many empty pixels and removing it pays. The estimate counts as
    oversized when the box holding ``mass`` of it (:func:`kernel_support`) does not touch the
    border and leaves at least ``spare`` of the array's height and of its width empty.

    Parameters
    ----------
    kernel : (kh, kw) array_like
        A blind estimate (any positive scale).
    spare : float
        Fraction of each side that must be empty, in (0, 1). The default 0.4 was chosen on
        the kernels of finished runs (``benchmarks/kernel_cleaning.py``): it cleans 1 of 32
        estimates at the Levin sizes (no measurable cost; 0.25 would clean 8 and cost
        0.13 dB) and the 27 -> 41 and 11 -> 25 px oversized runs (+0.7 and +0.1 dB), but
        not the 15 -> 29 px one (a 12 x 18 px support; cleaning would have gained 1.6 dB).
    mass : float
        Passed to :func:`kernel_support`.

    Returns
    -------
    bool
    """
    if not 0 < spare < 1:
        raise ValueError(f"spare must lie in (0, 1), got {spare!r}")
    k = _as_kernel(kernel)
    support = kernel_support(k, mass)
    return (not support.touches_border
            and all(s <= (1 - spare) * n for s, n in zip(support.shape, k.shape, strict=True)))


def deconvolution_kernel(kernel: Any, clean: bool | str = "auto", *,
                         max_shape: tuple[int, int] | None = None) -> np.ndarray:
    """A blind estimate made ready for a non-blind deconvolution: cleaned, then centred.

    Centring keeps the restored image aligned with the input (an estimate may sit several
    pixels off its array's centre, most of all when the array is oversized) and costs
    nothing at the right size.

    Parameters
    ----------
    kernel : (kh, kw) array_like
        A blind estimate (any positive scale); not modified.
    clean : bool or "auto"
        Remove the noise floor (:func:`clean_kernel`): always, never, or ``"auto"`` where
        :func:`needs_cleaning` says the estimate is oversized.
    max_shape : (int, int), optional
        The image's shape: a centred kernel that would outgrow it is cropped (about its
        centre) to the largest odd sides that fit.

    Returns
    -------
    (kh', kw') ndarray of float32
        Sum 1, odd sides if the input's are; larger than the input by twice its offset
        (:func:`centre_kernel`). Cropping it back (:func:`fit_kernel`) before deconvolving
        would cut the far tails of an off-centre estimate: -0.3 dB on the Levin set.
    """
    clean = clean_option(clean)
    k = _as_kernel(kernel)
    if clean is True or (clean == "auto" and needs_cleaning(k)):
        k = clean_kernel(k)
    centred = centre_kernel(k)
    if max_shape is not None:
        fits = tuple(min(n, m if m % 2 else m - 1)
                     for n, m in zip(centred.shape, max_shape, strict=True))
        if fits != centred.shape:
            centred = fit_kernel(centred, fits)
    return centred


def clean_option(clean: Any) -> bool | str:
    """``clean`` checked: True, False (numpy booleans too) or "auto"; else ValueError."""
    if isinstance(clean, (bool, np.bool_)):
        return bool(clean)
    if isinstance(clean, str) and clean == "auto":
        return "auto"
    raise ValueError(f"clean must be True, False or 'auto', got {clean!r}")


def fit_kernel(kernel: Any, shape: tuple[int, int]) -> np.ndarray:
    """Crop or zero-pad a centred kernel (odd sides) to ``shape`` about its centre, sum 1.

    Parameters
    ----------
    kernel : (kh, kw) array_like
    shape : (int, int)
        Odd sides.

    Returns
    -------
    (shape) ndarray of float32
        A unit impulse if nothing of the kernel falls inside ``shape``.
    """
    k = _as_kernel(kernel)
    out = np.zeros(shape, np.float32)
    (kh, kw), (oh, ow) = k.shape, shape
    src_y, dst_y = max(0, (kh - oh) // 2), max(0, (oh - kh) // 2)
    src_x, dst_x = max(0, (kw - ow) // 2), max(0, (ow - kw) // 2)
    h, w = min(kh, oh), min(kw, ow)
    out[dst_y:dst_y + h, dst_x:dst_x + w] = k[src_y:src_y + h, src_x:src_x + w]
    total = out.sum()
    if total <= 0:
        out[oh // 2, ow // 2] = total = 1.0
    return out / total


def kernel_support(kernel: Any, mass: float = 0.97, *, floor: float | None = None
                   ) -> KernelSupport:
    """The smallest box holding ``mass`` of a kernel's mass, after removing its noise floor.

    Parameters
    ----------
    kernel : (kh, kw) array_like
        A blur kernel (any positive scale).
    mass : float
        Fraction of the mass (above the floor) the box must hold, in (0, 1].
    floor : float, optional
        Default :func:`kernel_floor`; pass 0 for an exact (noise-free) kernel.

    Returns
    -------
    KernelSupport

    Notes
    -----
    Every box size is tried, with a summed-area table giving the heaviest position of each
    size; the box of smallest area reaching ``mass`` wins (ties: the squarer one). For a
    41 x 41 kernel that is at most about 1 M box sums: 5 to 50 milliseconds.

    Examples
    --------
    >>> k = np.zeros((9, 9)); k[4, 2:7] = 1          # a 5 px horizontal streak
    >>> kernel_support(k, floor=0).shape
    (1, 5)
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass must lie in (0, 1], got {mass!r}")
    k = _as_kernel(kernel)
    floor = kernel_floor(k) if floor is None else float(floor)
    above = np.clip(k - floor, 0.0, None)
    if above.sum() <= 0:
        above = k
    above = above / above.sum()
    rows, cols = above.shape
    table = np.zeros((rows + 1, cols + 1))
    table[1:, 1:] = above.cumsum(0).cumsum(1)
    target = mass - 1e-9
    best: tuple[int, float, int, int, int, int] | None = None
    for h in range(1, rows + 1):
        y0 = np.arange(rows - h + 1)[:, None]
        for w in range(1, cols + 1):
            if best is not None and h * w > best[0]:
                break
            x0 = np.arange(cols - w + 1)[None, :]
            sums = (table[y0 + h, x0 + w] - table[y0, x0 + w]
                    - table[y0 + h, x0] + table[y0, x0])
            flat = int(np.argmax(sums))
            if sums.flat[flat] >= target:
                iy, ix = np.unravel_index(flat, sums.shape)
                key = (h * w, abs(h - w))
                if best is None or key < (best[0], best[1]):
                    best = (h * w, abs(h - w), int(iy), int(ix), h, w)
                break
    # The whole array holds all the mass, so some box always qualifies.
    _, _, y0_, x0_, h, w = best if best is not None else (0, 0, 0, 0, rows, cols)
    touches = y0_ == 0 or x0_ == 0 or y0_ + h == rows or x0_ + w == cols
    return KernelSupport(shape=(h, w), box=(y0_, x0_, h, w), floor=floor, mass=float(mass),
                         touches_border=bool(touches))


def centre_kernel(kernel: Any) -> np.ndarray:
    """Zero-pad a kernel so its centre of mass falls on (within half a pixel of) the
    central pixel, and normalise it to sum 1.

    A blind estimate is known only up to a translation (the image shifts the other way).
    Deconvolving with a centred kernel keeps the restored image aligned with the blurry
    one: the same place in both arrays shows the same object. The kernel grows by twice the
    shift (no mass is lost, nothing wraps around).

    Parameters
    ----------
    kernel : (kh, kw) array_like

    Returns
    -------
    (kh', kw') ndarray of float32
        Odd sizes stay odd.
    """
    k = _as_kernel(kernel)
    cy = float((k.sum(axis=1) * np.arange(k.shape[0])).sum())
    cx = float((k.sum(axis=0) * np.arange(k.shape[1])).sum())
    pads = []
    for centroid, size in ((cy, k.shape[0]), (cx, k.shape[1])):
        shift = int(np.rint((size - 1) / 2 - centroid))  # > 0: mass lies before the centre
        pads.append((2 * shift, 0) if shift > 0 else (0, -2 * shift))
    return np.pad(k, pads).astype(np.float32)


def _odd_at_least(value: int, minimum: int = 3) -> int:
    value = max(int(value), minimum)
    return value if value % 2 else value + 1


def suggest_kernel_size(
    image: Any,
    max_size: int | tuple[int, int] | None = None,
    *,
    mass: float = 0.97,
    margin: int = 2,
    region: Any = "auto",
    region_size: int = 256,
    **deblur_kwargs: Any,
) -> KernelSizeSuggestion:
    """Suggest a kernel size: run a blind estimate with a generous size, measure the support.

    Parameters
    ----------
    image : (M, N) array_like
        The blurry image (grey; for colour pass its luminance,
        :func:`napari_dip_deblur.colour.luminance`). Not modified.
    max_size : int or (int, int), optional
        The generous size to estimate with; default 41, or less on a small image
        (a third of its shorter side, odd).
    mass : float
        Fraction of the kernel's mass (above its noise floor) the support holds.
    margin : int
        Pixels added to the support's height and width (the suggestion is rounded up to odd).
    region : "auto", None, Region or (y0, x0, height, width)
        Crop to run on: "auto" (default) picks the best-textured ``region_size`` crop when
        the image is larger than that, None uses the whole image.
    region_size : int
        Side of the automatic crop.
    **deblur_kwargs
        Passed to :func:`napari_dip_deblur.deblur` (``preset``, ``iterations``, ``seed``,
        ``device``, overrides). A few hundred iterations are enough for the support. With
        the ``fast`` preset, :data:`SUGGEST_FAST_OVERRIDES` fill ``channels`` and
        ``iterations`` where they are not given.

    Returns
    -------
    KernelSizeSuggestion
        ``size`` is the suggestion; ``reliable`` is False when the blur looked as large as
        ``max_size`` (run again with a larger one).

    Notes
    -----
    How well this works on the Levin set is measured in ``docs/benchmarks/real-inputs.md``.
    """
    steps = suggest_kernel_size_iter(image, max_size, mass=mass, margin=margin,
                                     region=region, region_size=region_size,
                                     yield_every=10**9, **deblur_kwargs)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def suggest_kernel_size_iter(
    image: Any,
    max_size: int | tuple[int, int] | None = None,
    *,
    mass: float = 0.97,
    margin: int = 2,
    region: Any = "auto",
    region_size: int = 256,
    yield_every: int = 10,
    **deblur_kwargs: Any,
) -> Generator[Snapshot, None, KernelSizeSuggestion]:
    """:func:`suggest_kernel_size` step by step: yields the blind run's snapshots (every
    ``yield_every`` iterations), then returns the suggestion (``StopIteration.value``;
    ``suggestion = yield from suggest_kernel_size_iter(...)``). Closing it early stops the
    run without a suggestion: that is how the napari widget cancels "Suggest size"."""
    from .api import deblur_iter, result_of
    from .regions import as_region, auto_region

    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D (pass the luminance of a colour image), got "
                         f"shape {array.shape}")
    if isinstance(region, str):
        if region != "auto":
            raise ValueError(f"region must be 'auto', None, a Region or (y0, x0, h, w), "
                             f"got {region!r}")
        chosen = (auto_region(array, region_size)
                  if max(array.shape) > region_size else None)
    elif region is None:
        chosen = None
    else:
        chosen = as_region(region, array.shape)
    crop = array[chosen.slices] if chosen is not None else array
    if max_size is None:
        side = _odd_at_least(min(crop.shape) // 3)
        side = side if side <= min(crop.shape) else side - 2
        max_size = min(DEFAULT_MAX_SIZE, side)
    from .api import resolve_device
    from .presets import DEFAULT_PRESET, preset_for_device

    preset = deblur_kwargs.get("preset", DEFAULT_PRESET)
    device_type = resolve_device(deblur_kwargs.get("device", "auto")).type
    if preset_for_device(preset, device_type) == "fast":
        given = {k: v for k, v in deblur_kwargs.items()
                 if v is not None or k not in SUGGEST_FAST_OVERRIDES}
        deblur_kwargs = {**SUGGEST_FAST_OVERRIDES, **given}
    seed = deblur_kwargs.pop("seed", 0)
    final = None
    for final in deblur_iter(crop, max_size, seed=seed, yield_every=yield_every,
                             **deblur_kwargs):
        yield final
    result = result_of(final, seed)
    support = kernel_support(result.kernel, mass)
    kh, kw = result.kernel.shape
    size = (min(_odd_at_least(support.shape[0] + margin), kh),
            min(_odd_at_least(support.shape[1] + margin), kw))
    return KernelSizeSuggestion(size=size, support=support, max_size=(kh, kw),
                                kernel=result.kernel, result=result, region=chosen)

