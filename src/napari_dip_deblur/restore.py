"""Real inputs: estimate a kernel where it is best estimated, then apply it everywhere.

The blind method (:func:`napari_dip_deblur.deblur_iter`) fits one 2-D grey image, and its
cost grows with the pixels. Colour photos, stacks and large images are handled here in two
steps:

1. **estimate** the kernel blindly on one 2-D image: the luminance of a colour image
   (:func:`~napari_dip_deblur.colour.luminance`), one plane of a stack, or a region of it
   (:mod:`~napari_dip_deblur.regions`);
2. **apply** it to every colour channel of every plane by fast non-blind deconvolution
   (:func:`napari_dip_deblur.nonblind.deconvolve`), after removing the estimate's noise floor
   and centring it (:mod:`~napari_dip_deblur.kernel_size`), so the result stays aligned with
   the input.

In ``mode="per_plane"`` step 1 runs on every plane of a stack (its own kernel each). With a
known kernel (``kernel=``: a measured PSF, an earlier estimate) step 1 is skipped and every
plane is restored with that kernel.
:func:`restore_iter` is the generator (progress over planes and within each blind run;
``close()`` stops at once, ``stop`` finishes the plane in hand first); :func:`restore`
blocks; :func:`deblur_colour`, :func:`deblur_stack` and :func:`deblur_large` are the same
with the defaults of each use.
Memory is estimated before anything runs (:mod:`~napari_dip_deblur.memory`). No napari.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import memory as _memory
from ._validation import check_values, normalised_kernel, real_array
from .api import (
    MIN_SIDE,
    Snapshot,
    deblur_iter,
    normalise_kernel_size,
    out_of_range,
    resolve_device,
)
from .colour import LUMINANCE_WEIGHTS, colour_layout, luminance
from .kernel_size import clean_option, deconvolution_kernel, fit_kernel
from .memory import MemoryEstimate, check_memory, estimate_memory
from .noise import NOISE_AWARE_NONBLIND_WEIGHT, noise_aware_phases
from .presets import DEFAULT_PRESET, Settings, preset_for_device, resolve_settings
from .regions import Region, as_region, auto_region, gradient_energy

__all__ = [
    "MODES",
    "RestoreProgress",
    "RestoreResult",
    "deblur_colour",
    "deblur_large",
    "deblur_stack",
    "restore",
    "restore_iter",
]

MODES = ("shared", "per_plane")
"""``"shared"``: one kernel, estimated on one plane (or a region of it), applied to every
plane. ``"per_plane"``: a blind estimate on each plane, each plane restored with its own."""

NONBLIND_METHODS = ("hyper_laplacian", "wiener")

REGION_FAST_OVERRIDES = {"iterations": 600, "channels": 32, "starts": 1}
"""What the ``fast`` preset changes when it estimates a kernel on a region (a crop of a few
hundred pixels a side), unless ``iterations`` or ``channels`` are given; a key the caller
gives (``starts=2``) stays as given. A 32-channel generator for 600 iterations, one start.
(With a region, the blind run fits all of it: ``estimation_crop`` is set to None unless
given.) On three 4096 x 4096 test mosaics (2-core CPU, ``docs/benchmarks/real-inputs.md``)
it found better kernels than the preset's own settings, in less time: on 2026-11-25 against
300 x 64 (NCC 0.96 / 0.96 / 0.90 against 0.88 / 0.95 / 0.89; 82-100 s in all against
99-107 s), and on 2026-11-26 against two starts of 440 x 48, the preset's settings since
(NCC 0.947 / 0.950 / 0.936 against 0.924 / 0.898 / 0.920; whole-image PSNR 29.13 / 29.57 /
32.37 against 24.50 / 29.06 / 29.16 dB; 73-81 s in all against 170-183 s)."""

# Progress units: a blind iteration counts 1; a non-blind plane counts about as many
# iterations as it takes time. Measured on the 2-core CPU on 2026-11-25: a 4096 x 4096
# hyper-Laplacian deconvolution in 11.9 s (docs/nonblind.md), a `fast` iteration (64
# channels) at 281 x 281 in 0.40 s (docs/benchmarks/speed.md). They only weight the bar.
_NONBLIND_SECONDS_PER_PIXEL = 7e-7
_BLIND_SECONDS_PER_PIXEL_CHANNEL = 8e-8


@dataclass(frozen=True)
class RestoreResult:
    """The outcome of :func:`restore` (and of the last progress of :func:`restore_iter`).

    Attributes
    ----------
    image : ndarray of float32
        The restored data: the input's shape, axis order and intensity scale (alpha copied
        unchanged). Not clipped.
    kernel : (kh, kw) ndarray of float32 or None
        ``mode="shared"``: the kernel applied to every plane (centred, its noise floor
        removed if ``clean`` says so, sums to 1, convolution orientation), cropped to
        ``kernel_size`` (the deconvolution used it whole); with ``kernel=`` given, that
        kernel divided by its sum. None in ``"per_plane"`` mode.
    kernels : (*stack_shape, kh, kw) ndarray of float32 or None
        ``mode="per_plane"``: the kernel applied to each plane. None in ``"shared"`` mode.
    estimate : Snapshot or None
        The blind run's final snapshot (``mode="shared"``): its ``image`` is the deep-image-
        prior restoration of the region it ran on (no final deconvolution there), its
        ``kernel`` the raw estimate. None with a given kernel (no blind run).
    mode : str
    reference : tuple of int or None
        ``mode="shared"``: the stack index of the plane the kernel was estimated on (None
        with a given kernel).
    regions : tuple of (Region or None)
        The region of each blind run (None: the whole plane); empty with a given kernel.
    settings : dict
        Everything used: the blind run's settings, the non-blind method and options, the
        luminance weights, the data range, the memory estimate; ``kernel_source`` is
        ``"estimated"`` or ``"given"``. A run ended by ``stop`` (:func:`restore_iter`) adds
        ``stopped`` (True), ``planes_restored`` and, where a blind run was cut short,
        ``finished_early``; its planes not restored hold the input.
    wall_time : float
        Seconds.
    """

    image: np.ndarray
    kernel: np.ndarray | None
    kernels: np.ndarray | None
    estimate: Snapshot | None
    mode: str
    reference: tuple[int, ...] | None
    regions: tuple[Region | None, ...]
    settings: dict[str, Any]
    wall_time: float


@dataclass(frozen=True)
class RestoreProgress:
    """Where a :func:`restore_iter` run stands.

    The arrays ``image``, ``kernels`` and ``restored`` are the run's own working arrays,
    filled in place as planes complete (copy them to keep a snapshot). A run stopped early
    (``close()``, an error) leaves in them every plane finished so far: a partial result.

    Attributes
    ----------
    stage : {"estimate", "apply", "done"}
        Blind estimation (``snapshot`` is its latest state), non-blind restoration of
        ``plane`` (reported after each colour channel), or finished (``result`` is set;
        also after a ``stop``, see :func:`restore_iter`).
        With a given kernel there is no "estimate" stage.
    step, total : int
        Work done and planned, in units of about one blind iteration (for progress bars).
        With a given kernel: one step a plane (``total`` is the number of planes).
    plane : int or None
        Flat index of the plane being worked on; None while a shared kernel is estimated.
    plane_index : tuple of int or None
        The same as an index into the stack's leading axes.
    n_planes, planes_done : int
    snapshot : Snapshot or None
        The blind run's latest snapshot (stage "estimate").
    kernel : ndarray or None
        The kernel being applied (stages "apply" and "done").
    image : ndarray of float32
        The output array (input's shape): restored planes, the input elsewhere.
    kernels : ndarray of float32 or None
        ``mode="per_plane"``: ``(*stack_shape, kh, kw)``, zeros for planes not done yet.
    restored : ndarray of bool
        ``stack_shape``: which planes hold their restoration.
    elapsed : float
        Seconds since the run started.
    result : RestoreResult or None
        Set on the final progress (stage "done").
    region : Region or None
        Stage "estimate": the region of ``plane_index`` (or of the reference plane) the blind
        run fits, chosen already when ``region="auto"``; None for the whole plane (and in
        the other stages). ``snapshot.image`` covers this region.
    """

    stage: str
    step: int
    total: int
    plane: int | None
    plane_index: tuple[int, ...] | None
    n_planes: int
    planes_done: int
    snapshot: Snapshot | None
    kernel: np.ndarray | None
    image: np.ndarray
    kernels: np.ndarray | None
    restored: np.ndarray
    elapsed: float
    result: RestoreResult | None = None
    region: Region | None = None


@dataclass
class _Job:
    """Everything the generator needs, validated (internal)."""

    data: np.ndarray  # input viewed as (*stack, M, N[, C]) (channel axis moved last)
    out: np.ndarray  # output viewed the same way
    out_full: np.ndarray  # output in the input's layout
    stack_shape: tuple[int, ...]
    colour: Any  # ColourLayout or None
    weights: str
    kernel_shape: tuple[int, int]
    known_kernel: np.ndarray | None  # a given kernel (float32, sum 1): no blind run
    mode: str
    reference: tuple[int, ...] | None
    region: Any  # None, "auto" or Region
    region_size: int
    settings: Settings | None  # None with a given kernel
    seed: int
    device: str
    yield_every: int
    method: str
    nonblind_options: dict[str, Any]
    clean: bool | str
    data_range: float
    memory: MemoryEstimate
    extra_settings: dict[str, Any]


def restore_iter(
    image: Any,
    kernel_size: int | tuple[int, int] | None = None,
    *,
    kernel: Any = None,
    mode: str = "shared",
    channel_axis: int | None = None,
    alpha: bool | None = None,
    luminance_weights: str = "rec601",
    reference: int | tuple[int, ...] | None = None,
    region: Region | tuple[int, int, int, int] | str | None = None,
    region_size: int = 256,
    method: str = "hyper_laplacian",
    nonblind_options: Mapping[str, Any] | None = None,
    clean: bool | str = "auto",
    noise_aware: float | None = None,
    preset: str | Settings = DEFAULT_PRESET,
    iterations: int | None = None,
    seed: int = 0,
    device: str = "auto",
    yield_every: int = 10,
    out: np.ndarray | None = None,
    memory_check: bool = True,
    stop: Any = None,
    **overrides: Any,
) -> Iterator[RestoreProgress]:
    """Blind estimation on one 2-D image, non-blind restoration of every plane: a generator.

    Arguments are checked and the memory estimated when this is called (before the first
    ``next``). Closing the generator stops the work at once (within one blind iteration or
    one colour channel of the non-blind step); the last progress's arrays hold what was done.
    Setting ``stop`` ends the run more gently: the plane in hand is finished first, with the
    kernel found so far if its blind run was still going, and the run ends with a result.

    With ``kernel`` given (a measured PSF, a kernel estimated earlier) there is no blind run:
    every colour channel of every plane is restored by
    :func:`napari_dip_deblur.nonblind.deconvolve` with that kernel, with the same
    ``method``, ``nonblind_options`` and ``noise_aware`` weight as after a blind estimate.

    Parameters
    ----------
    image : (*stack, M, N) or (*stack, M, N, C) array_like
        Grey 2-D image, a stack of them (time, z, channels: any number of leading axes), or
        colour images (``channel_axis``). Any real dtype and range; not modified.
    kernel_size : int or (int, int), optional
        Odd kernel size, a bit larger than the blur (:func:`~napari_dip_deblur.kernel_size.
        suggest_kernel_size` can suggest one). Required for a blind estimate; with
        ``kernel`` it may be left out (it is the kernel's shape) and, if given, must equal
        the kernel's shape.
    kernel : (kh, kw) array_like, optional
        A known blur kernel in convolution orientation (a measured PSF, an earlier
        estimate): 2-D, odd sides with the centre on the middle pixel, non-negative, finite,
        a positive sum, no larger than a plane. It is used as it is (not cleaned, not
        centred), divided by its sum; not modified. Given a kernel, ``mode`` must be
        "shared" and ``reference``, ``region``, ``iterations`` and ``overrides`` (which only
        steer a blind estimate) must be left out; ``preset``, ``seed``, ``device``,
        ``clean``, ``luminance_weights`` and ``region_size`` are not used (the non-blind
        step runs on the CPU).
    mode : {"shared", "per_plane"}
        One kernel for all planes, or one per plane (see :data:`MODES`). Irrelevant for a
        single 2-D (or colour) image.
    channel_axis : int, optional
        The colour axis (RGB or RGBA; napari's RGB layers: -1). The kernel is estimated on the
        luminance and applied to each colour channel; alpha is copied. None: grey data.
    alpha : bool, optional
        Whether the last channel is alpha (default: 4 channels are RGBA).
    luminance_weights : {"rec601", "rec709", "mean"}
        How colour channels are mixed for the estimation (default: JPEG's Y).
    reference : int or tuple of int, optional
        ``mode="shared"``: the plane to estimate on, as a flat index or a stack index.
        Default: the plane with the most gradient energy (the sharpest, best-textured one).
    region : None, "auto", Region or (y0, x0, height, width)
        Where in the plane to estimate: the whole plane (None), the best-textured
        ``region_size`` crop ("auto"; the whole plane if smaller), or a given rectangle.
        With a region, the ``fast`` preset runs :data:`REGION_FAST_OVERRIDES` unless
        ``iterations`` or ``channels`` are given. None with a preset that has an
        ``estimation_crop`` (``fast``: 144 px below 21 px kernels, else 176) fits the
        best-textured crop of that side, with the preset's own settings, as
        :func:`napari_dip_deblur.deblur` does.
    region_size : int
        Side of the automatic region.
    method : {"hyper_laplacian", "wiener"}
        The non-blind solver (:func:`napari_dip_deblur.nonblind.deconvolve`).
    nonblind_options : dict, optional
        Further keywords for ``deconvolve`` (``weight``, ``alpha``, ``iterations``, ``edge``).
        After a blind estimate, ``weight`` defaults to the preset's
        ``final_deconvolution_weight`` where its ``final_deconvolution`` is ``method``
        (``fast``: 1.25e-4), as in :func:`~napari_dip_deblur.deblur`; with a given ``kernel``
        to ``deconvolve``'s own. Its ``data_range`` defaults to 255 for uint8 data (as
        ``deconvolve`` reads it) and to the span of all colour values of all planes
        otherwise, so every plane and channel is treated alike.
    clean : bool or "auto"
        Remove the estimate's noise floor before applying it
        (:func:`~napari_dip_deblur.kernel_size.clean_kernel`): always, never, or
        ``"auto"`` (default) where the estimate looks oversized
        (:func:`~napari_dip_deblur.kernel_size.needs_cleaning`). The estimate is centred
        in every case, so the restored image stays aligned with the input.
    noise_aware : float, optional
        Keep a TV prior of this weight in the last interval of the blind run
        (:func:`~napari_dip_deblur.noise.noise_aware_phases`), for noisy data; e.g. 0.01.
        It also raises the non-blind prior's default weight to
        :data:`~napari_dip_deblur.noise.NOISE_AWARE_NONBLIND_WEIGHT` (with or without a given
        ``kernel``) unless ``nonblind_options`` sets one.
    preset, iterations, seed, device, **overrides
        The blind run's settings, as in :func:`napari_dip_deblur.deblur`.
    yield_every : int
        A progress every this many blind iterations.
    out : ndarray, optional
        A float32 array of the input's shape to write the result into (e.g. a napari layer's
        data); it is first filled with the input. Default: a new array.
    memory_check : bool
        Refuse (``InsufficientMemoryError``) a run that would not fit in memory.
    stop : threading.Event, optional
        Anything with an ``is_set()`` method, read after every progress (e.g. set by a Cancel
        button or a Ctrl-C handler). Once it is set, a blind run still estimating ends at
        once and the plane it serves (the reference plane, the plane of a per-plane run, the
        one image) is restored with the kernel it has reached, as
        :func:`napari_dip_deblur.finish_early` does for a grey image; a plane being restored
        is finished. The run then ends with a "done" progress whose result has
        ``settings["stopped"] = True`` and keeps the input in the planes not restored
        (``progress.restored`` says which are). Early in a blind run the kernel is still
        near its flat start and deconvolving with it blows the plane far out of range: then
        the plane keeps the input and ``settings["finished_early"]`` is False (True where the
        kernel so far was applied).

    Yields
    ------
    RestoreProgress
        The last one has ``stage == "done"`` and its ``result`` set.

    Raises
    ------
    ValueError
        A bad argument (naming it), or a plane the blind run refuses (constant, NaN, ...); a
        bad ``kernel`` (not 2-D, an even side, negative, NaN or infinite values, a sum <= 0,
        larger than a plane), a ``kernel_size`` that differs from its shape, or neither
        ``kernel_size`` nor ``kernel``.
    InsufficientMemoryError
        (a ``ValueError`` and ``MemoryError``) the run would not fit; the message says what
        to change.
    DeblurDivergedError
        (while iterating) a blind run diverged.
    """
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise ValueError(f"stop must be None or have an is_set() method (a threading.Event), "
                         f"got {type(stop).__name__}")
    job = _prepare(image, kernel_size, kernel=kernel, mode=mode, channel_axis=channel_axis,
                   alpha=alpha,
                   weights=luminance_weights, reference=reference, region=region,
                   region_size=region_size, method=method, nonblind_options=nonblind_options,
                   clean=clean, noise_aware=noise_aware, preset=preset, iterations=iterations,
                   seed=seed, device=device, yield_every=yield_every, out=out,
                   memory_check=memory_check, overrides=overrides)
    if job.known_kernel is not None:  # no blind run
        return _run(job, None, stop)
    # The first blind run is set up now, so its own checks also fire before the first next().
    if not job.stack_shape:
        first_plane: tuple[int, ...] | None = ()
    else:
        first_plane = job.reference if job.mode == "shared" else _index(job.stack_shape, 0)
    first = _blind_run(job, first_plane)
    return _run(job, first, stop)


def restore(image: Any, kernel_size: int | tuple[int, int] | None = None,
            **kwargs: Any) -> RestoreResult:
    """:func:`restore_iter` run to the end; takes the same arguments (but ``yield_every``).

    Parameters
    ----------
    image : (*stack, M, N) or (*stack, M, N, C) array_like
        As for :func:`restore_iter`; not modified.
    kernel_size : int or (int, int), optional
        Odd kernel size of the blind estimate; may be left out when ``kernel`` is given.
    **kwargs
        As for :func:`restore_iter`, e.g. ``kernel=psf`` to restore with a known kernel
        instead of estimating one.

    Returns
    -------
    RestoreResult

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> sharp = np.random.default_rng(0).uniform(0, 1, (64, 64))
    >>> psf = np.ones((1, 5)) / 5                       # a known 1 x 5 horizontal blur
    >>> blurry = signal.convolve(sharp, psf, mode="same")
    >>> r = restore(blurry, kernel=psf)                 # no blind run
    >>> r.image.shape, r.kernel.shape, r.estimate is None
    ((64, 64), (1, 5), True)
    """
    if "yield_every" in kwargs:
        raise ValueError("yield_every is for restore_iter; restore returns the end result only")
    final = None
    for final in restore_iter(image, kernel_size, yield_every=10**9, **kwargs):  # noqa: B007
        pass
    if final is None or final.result is None:  # cannot happen: the generator ends with "done"
        raise RuntimeError("the run ended without a result")
    return final.result


def deblur_colour(image: Any, kernel_size: int | tuple[int, int] | None = None, *,
                  channel_axis: int = -1, **kwargs: Any) -> RestoreResult:
    """Deblur a colour (RGB/RGBA) image: one kernel estimated on the luminance, applied to
    each colour channel by non-blind deconvolution; alpha passed through.

    Parameters
    ----------
    image : (M, N, 3 or 4) array_like (or a stack of them, ``(*stack, M, N, C)``)
        Colour values (uint8, uint16 or float); not modified.
    kernel_size : int or (int, int), optional
        Required unless ``kernel`` is given.
    channel_axis : int
        The colour axis (default: last).
    **kwargs
        As for :func:`restore_iter` (``kernel`` to apply a known kernel to each channel
        without a blind run, ``luminance_weights``, ``region``, ``method``, ``preset``,
        ``iterations``, ``seed``, ``device``, overrides...).

    Returns
    -------
    RestoreResult
        ``image`` has the input's shape and intensity scale, float32; ``kernel`` is the one
        kernel applied to every channel.

    Examples
    --------
    >>> from skimage import data                                          # doctest: +SKIP
    >>> r = deblur_colour(data.astronaut()[::4, ::4], 9, iterations=300)  # doctest: +SKIP
    >>> r.image.shape, r.kernel.shape                                     # doctest: +SKIP
    ((128, 128, 3), (9, 9))
    """
    return restore(image, kernel_size, channel_axis=channel_axis, **kwargs)


def deblur_stack(stack: Any, kernel_size: int | tuple[int, int] | None = None, *,
                 mode: str = "shared", **kwargs: Any) -> RestoreResult:
    """Deblur every plane of a stack (time, z, channels: any leading axes).

    ``mode="shared"`` estimates one kernel on one plane (``reference``, default the
    best-textured) and applies it to every plane; ``mode="per_plane"`` runs a blind estimate
    on each plane; ``kernel=psf`` (with ``mode="shared"``) applies a known kernel to every
    plane without a blind run. For progress and cancellation use :func:`restore_iter`, which
    takes the same arguments.

    Parameters
    ----------
    stack : (*stack, M, N) array_like (or colour with ``channel_axis``)
        Not modified.
    kernel_size : int or (int, int), optional
        Required unless ``kernel`` is given.
    mode : {"shared", "per_plane"}
    **kwargs
        As for :func:`restore_iter`.

    Returns
    -------
    RestoreResult
        ``image`` has the stack's shape; ``kernel`` (shared) or ``kernels``
        (``(*stack, kh, kw)``, per plane).
    """
    return restore(stack, kernel_size, mode=mode, **kwargs)


def deblur_large(image: Any, kernel_size: int | tuple[int, int] | None = None, *,
                 region: Region | tuple[int, int, int, int] | str | None = "auto",
                 region_size: int = 224, **kwargs: Any) -> RestoreResult:
    """Deblur a large image: estimate the kernel on a region, restore the whole image.

    Parameters
    ----------
    image : (M, N) array_like (or colour with ``channel_axis``, or a stack)
    kernel_size : int or (int, int), optional
        Required unless ``kernel`` is given.
    region : "auto", Region or (y0, x0, height, width)
        Where to estimate (default: the best-textured ``region_size`` crop). With a given
        ``kernel`` nothing is estimated: leave it at "auto" (or None); a rectangle is refused.
    region_size : int
        Side of the automatic crop. 224 (not 256 as elsewhere) keeps a 4096 x 4096 image
        under two minutes on a 2-core CPU with the ``fast`` preset: the blind part's cost
        grows with the crop's pixels.
    **kwargs
        As for :func:`restore_iter`. With the ``fast`` preset (the default on a CPU) and
        neither ``iterations`` nor ``channels`` given, the estimate on the region uses
        :data:`REGION_FAST_OVERRIDES` (600 iterations of a 32-channel generator), which
        found better kernels in the same time on the test mosaics.

    Returns
    -------
    RestoreResult

    Notes
    -----
    Time and memory of the blind part depend on the region only; the non-blind part is a
    few FFTs of the full image. Measurements at 4096 x 4096:
    ``docs/benchmarks/real-inputs.md``.
    """
    if kwargs.get("kernel") is not None and isinstance(region, str) and region == "auto":
        region = None  # the default: nothing to estimate with a given kernel
    return restore(image, kernel_size, region=region, region_size=region_size, **kwargs)


# --------------------------------------------------------------------------- preparation


def _auto_region_shape(region_size: int, plane_shape: tuple[int, int]) -> tuple[int, int]:
    """The shape of the automatic region: ``region_size`` a side, clipped to the plane."""
    return (min(region_size, plane_shape[0]), min(region_size, plane_shape[1]))


def _prepare(image: Any, kernel_size: Any, *, kernel: Any, mode: str, channel_axis: int | None,
             alpha: bool | None, weights: str, reference: Any, region: Any, region_size: int,
             method: str, nonblind_options: Mapping[str, Any] | None, clean: bool | str,
             noise_aware: float | None, preset: Any, iterations: int | None, seed: int,
             device: str, yield_every: int, out: np.ndarray | None, memory_check: bool,
             overrides: dict[str, Any]) -> _Job:
    array = real_array(image, finite=False)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if weights not in LUMINANCE_WEIGHTS:
        raise ValueError(f"luminance_weights must be one of {sorted(LUMINANCE_WEIGHTS)}, "
                         f"got {weights!r}")
    if channel_axis is not None:
        if isinstance(channel_axis, (bool, np.bool_)) \
                or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis must be None or an int (e.g. -1), got "
                            f"{channel_axis!r}")
        layout = colour_layout(array.shape, channel_axis, alpha)
        data = np.moveaxis(array, layout.channel_axis, -1)
        spatial_ndim = 3
    else:
        if alpha is not None:
            raise ValueError("alpha applies to colour images only: give channel_axis too")
        layout, data, spatial_ndim = None, array, 2
    if data.ndim < spatial_ndim:
        raise ValueError(f"image must have at least two spatial axes, got shape {array.shape}")
    stack_shape = tuple(data.shape[:data.ndim - spatial_ndim])
    plane_shape = tuple(data.shape[len(stack_shape):len(stack_shape) + 2])
    if min(plane_shape) < MIN_SIDE:
        hint = (" (is it a colour image? pass channel_axis=-1)"
                if layout is None and array.shape[-1] in (3, 4) else "")
        raise ValueError(f"image planes must be at least {MIN_SIDE}x{MIN_SIDE}, got planes of "
                         f"{plane_shape[0]}x{plane_shape[1]} in shape {array.shape}{hint}")
    known = None
    if kernel is not None:
        known = _check_kernel(kernel, plane_shape)
        _check_known_kernel_arguments(known.shape, kernel_size, mode=mode, reference=reference,
                                      region=region, iterations=iterations,
                                      overrides=overrides, plane_shape=plane_shape)
    elif kernel_size is None:
        raise ValueError("give kernel_size (the odd size of the kernel to estimate, e.g. 15) "
                         "or kernel (a known kernel, e.g. a measured PSF)")

    if method not in NONBLIND_METHODS:
        raise ValueError(f"method must be one of {NONBLIND_METHODS}, got {method!r}")
    options = dict(nonblind_options or {})
    bad = set(options) - {"weight", "alpha", "iterations", "edge", "data_range"}
    if bad:
        raise ValueError(f"nonblind_options: unknown key(s) {sorted(bad)}; accepted: weight, "
                         f"alpha, iterations, edge, data_range")
    _check_nonblind_options(options)
    if isinstance(region_size, bool) or not isinstance(region_size, (int, np.integer)) \
            or region_size < 16:
        raise ValueError(f"region_size must be an integer >= 16, got {region_size!r}")

    if known is not None:
        blind_shape = plane_shape  # unused: no blind run
    elif isinstance(region, str):
        if region != "auto":
            raise ValueError(f"region must be None, 'auto', a Region or (y0, x0, height, "
                             f"width), got {region!r}")
        blind_shape = _auto_region_shape(region_size, plane_shape)
    elif region is not None:
        region = as_region(region, plane_shape)
        blind_shape = region.shape
    else:
        blind_shape = plane_shape
    kernel_shape = (tuple(known.shape) if known is not None
                    else normalise_kernel_size(kernel_size, blind_shape))

    ref = None
    if mode == "shared" and stack_shape:
        ref = _check_reference(reference, stack_shape)
    elif reference is not None and mode != "shared":
        raise ValueError("reference applies to mode='shared' only")
    elif reference is not None and reference not in (0, ()):
        raise ValueError(f"reference {reference!r}: this image has a single plane")

    extra: dict[str, Any] = {}
    settings: Settings | None = None
    if known is None:
        torch_device = resolve_device(device)
        settings = resolve_settings(preset_for_device(preset, torch_device.type), iterations,
                                    **overrides)
        if (region is not None and settings.name == "fast" and iterations is None
                and "channels" not in overrides):
            # what the caller gave (starts=...) stays as given
            region_overrides = {k: v for k, v in REGION_FAST_OVERRIDES.items()
                                if k not in overrides}
            settings = resolve_settings(settings, **region_overrides)
            extra["region_overrides"] = region_overrides
        # The kernel's size may set the crop and the iterations (``fast``: 144 px below 21).
        settings = settings.for_kernel(kernel_shape)
        if region is None and settings.estimation_crop is not None:
            # The preset's crop (``fast``: 144 or 176 px), with its own settings: the
            # best-textured crop of that side, as ``deblur`` would fit it.
            region, region_size = "auto", settings.estimation_crop
            blind_shape = _auto_region_shape(region_size, plane_shape)
            kernel_shape = normalise_kernel_size(kernel_size, blind_shape)
            extra["estimation_crop"] = settings.estimation_crop
        # The blind runs fit the region asked for (or the plane) whole; this step restores it.
        settings = resolve_settings(settings, estimation_crop=None)
    n_planes = int(np.prod(stack_shape)) if stack_shape else 1
    kernel_bytes = n_planes * kernel_shape[0] * kernel_shape[1] * 4 if mode == "per_plane" else 0
    # The float32 output (unless given) and a working copy: from the shape, not allocated.
    data_bytes = array.size * 4 * (1 if out is not None else 2) + kernel_bytes
    if settings is not None:
        memory = estimate_memory(
            blind_shape, plane_shape, kernel_shape, channels=settings.channels,
            skip_channels=settings.skip_channels,
            non_local_levels=tuple(settings.non_local_levels), data_bytes=data_bytes,
            device=str(torch_device),
        )
    else:  # the non-blind step only (on the CPU)
        memory = MemoryEstimate(
            blind=0, nonblind=_memory.nonblind_bytes(plane_shape, kernel_shape),
            arrays=int(data_bytes), device="cpu", available_host=_memory.available_memory(),
            available_device=None, blind_shape=(0, 0), plane_shape=plane_shape)
    if memory_check:
        check_memory(memory)
    check_values(array)  # every pixel read: after the memory check
    if noise_aware is not None:
        try:
            if settings is not None:
                phases = noise_aware_phases(settings, noise_aware)
                settings = resolve_settings(settings, phases=phases)
            elif isinstance(noise_aware, bool) or not isinstance(noise_aware, numbers.Real) \
                    or not np.isfinite(noise_aware) or not noise_aware > 0:
                raise ValueError(noise_aware)  # as noise_aware_phases checks it
        except ValueError as error:
            raise ValueError(f"noise_aware must be None or a TV weight > 0 (e.g. 0.01), got "
                             f"{noise_aware!r}") from error
        extra["noise_aware_tv_weight"] = float(noise_aware)
        # The output comes from the non-blind step: a stronger prior there for noisy data.
        options.setdefault("weight", NOISE_AWARE_NONBLIND_WEIGHT)
    if settings is not None:
        if settings.final_deconvolution == method:
            # The weight the preset ends with after its estimate (``fast``: 1.25e-4), as
            # ``deblur`` would use it, unless given (or raised for noise above).
            options.setdefault("weight", settings.final_deconvolution_weight)
        # Only the blind runs' kernels are used: the preset's own final deconvolution of the
        # crop they fit is skipped (the non-blind step restores every plane).
        settings = dataclasses.replace(settings, final_deconvolution="none")
    if isinstance(yield_every, bool) or not isinstance(yield_every, (int, np.integer)) \
            or yield_every < 1:
        raise ValueError(f"yield_every must be an integer >= 1, got {yield_every!r}")

    colour_values = data[..., :layout.n_colour] if layout is not None else data
    if options.get("data_range") is None:
        # As deconvolve reads one plane: 8-bit is [0, 255], anything else its own span (here
        # the span of all planes and channels, so that all are regularised alike).
        span = float(colour_values.max()) - float(colour_values.min())
        options["data_range"] = 255.0 if array.dtype == np.uint8 else (span if span > 0
                                                                          else 1.0)
    if mode == "per_plane" and stack_shape:
        plane_axes = tuple(range(len(stack_shape), colour_values.ndim))  # reduce, no copy
        constant = np.flatnonzero(colour_values.min(axis=plane_axes)
                                  == colour_values.max(axis=plane_axes))
        if constant.size:
            raise ValueError(f"plane {_index(stack_shape, int(constant[0]))} is constant: a "
                             f"kernel cannot be estimated on it; use mode='shared' or drop it")
    data_range = float(options.pop("data_range"))

    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != array.shape \
                or out.dtype != np.float32 or not out.flags.writeable:
            raise ValueError(f"out must be a writeable float32 array of shape {array.shape}")
        if np.shares_memory(out, array):
            raise ValueError("out must not share memory with image (the input is never "
                             "modified)")
    out_full = out if out is not None else np.empty(array.shape, np.float32)
    out_full[...] = array  # unprocessed planes show the input; alpha is copied here
    out_view = np.moveaxis(out_full, layout.channel_axis, -1) if layout is not None \
        else out_full
    return _Job(data=data, out=out_view, out_full=out_full, stack_shape=stack_shape,
                colour=layout, weights=weights, kernel_shape=kernel_shape, known_kernel=known,
                mode=mode, reference=ref, region=region, region_size=int(region_size),
                settings=settings, seed=int(seed), device=device, yield_every=int(yield_every),
                method=method, nonblind_options=options,
                clean=clean_option(clean) if known is None else False,
                data_range=data_range, memory=memory,
                extra_settings=extra)


def _check_kernel(kernel: Any, plane_shape: tuple[int, int]) -> np.ndarray:
    """A given kernel, checked, as float32 divided by its sum (a new array)."""
    array = real_array(kernel, "kernel", finite=False)
    if array.ndim != 2:
        raise ValueError(f"kernel must be a 2-D array (kh, kw), got shape {array.shape}")
    return normalised_kernel(array, plane_shape, image_name="image planes",
                             non_negative=True).astype(np.float32)


def _check_known_kernel_arguments(shape: tuple[int, ...], kernel_size: Any, *, mode: str,
                                  reference: Any, region: Any, iterations: Any,
                                  overrides: Mapping[str, Any],
                                  plane_shape: tuple[int, int]) -> None:
    """With a given kernel: ``kernel_size`` must agree with it, and the arguments that only
    steer a blind estimate must be left out."""
    if kernel_size is not None:
        size = normalise_kernel_size(kernel_size, plane_shape)
        if size != tuple(shape):
            raise ValueError(f"kernel_size {size[0]}x{size[1]} does not match the given "
                             f"kernel's shape {shape[0]}x{shape[1]}: leave kernel_size out "
                             f"(None) when you give kernel")
    blind_only = []
    if mode == "per_plane":
        blind_only.append("mode='per_plane'")
    for name, value in (("reference", reference), ("region", region),
                        ("iterations", iterations)):
        if value is not None:
            blind_only.append(name)
    blind_only.extend(sorted(overrides))
    if blind_only:
        raise ValueError(f"{', '.join(blind_only)}: only for a blind estimate of the kernel, "
                         f"and a given kernel replaces it (every plane is restored with it); "
                         f"leave {'it' if len(blind_only) == 1 else 'them'} out")


def _check_nonblind_options(options: Mapping[str, Any]) -> None:
    """The checks ``deconvolve`` makes, done before the blind run rather than after it."""
    from .nonblind import EDGES, _check_iterations, _positive

    for name in ("weight", "alpha", "data_range"):
        if options.get(name) is not None:
            _positive(f"nonblind_options[{name!r}]", options[name])
    if options.get("alpha") is not None and float(options["alpha"]) > 2:
        raise ValueError(f"nonblind_options['alpha'] must be in (0, 2], got {options['alpha']!r}")
    if options.get("iterations") is not None:
        _check_iterations(options["iterations"])
    if "edge" in options and options["edge"] not in EDGES:
        raise ValueError(f"nonblind_options['edge'] must be one of {EDGES}, "
                         f"got {options['edge']!r}")


def _check_reference(reference: Any, stack_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    if reference is None:
        return None
    n = int(np.prod(stack_shape))
    if isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        if not -n <= reference < n:
            raise ValueError(f"reference {reference} is out of range for {n} planes")
        return _index(stack_shape, int(reference) % n)
    try:
        index = tuple(int(i) for i in reference)
    except TypeError:
        index = ()
    if len(index) != len(stack_shape) or not all(0 <= i < s for i, s in
                                                 zip(index, stack_shape, strict=True)):
        raise ValueError(f"reference must be a plane number or an index into the stack's "
                         f"axes {stack_shape}, got {reference!r}")
    return index


def _index(stack_shape: tuple[int, ...], flat: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, stack_shape)) if stack_shape else ()


# --------------------------------------------------------------------------- the run


def _estimation_image(job: _Job, index: tuple[int, ...], stride: int = 1) -> np.ndarray:
    """The 2-D image a kernel is estimated on: the plane, or its luminance (every
    ``stride``-th pixel)."""
    plane = job.data[index]
    if stride > 1:
        plane = plane[::stride, ::stride]
    if job.colour is None:
        return plane
    return luminance(plane, channel_axis=-1, weights=job.weights, alpha=job.colour.has_alpha)


def _choose_region(job: _Job, grey: np.ndarray) -> Region | None:
    if job.region == "auto":
        if grey.shape[0] <= job.region_size and grey.shape[1] <= job.region_size:
            return None
        return auto_region(grey, job.region_size)
    return job.region


@dataclass
class _Blind:
    """One blind run, set up: its generator, the plane and the region."""

    snapshots: Iterator[Snapshot]
    index: tuple[int, ...] | None
    region: Region | None


def _blind_run(job: _Job, index: tuple[int, ...] | None) -> _Blind:
    if index is None:  # shared mode on a stack: choose the best-textured plane
        index = _best_plane(job)
        job.reference = index
    grey = _estimation_image(job, index)
    region = _choose_region(job, grey)
    crop = grey[region.slices] if region is not None else grey
    # memory_check=False: _prepare checked the whole run (or was told not to)
    snapshots = deblur_iter(np.ascontiguousarray(crop), job.kernel_shape, preset=job.settings,
                            seed=job.seed, device=job.device, yield_every=job.yield_every,
                            memory_check=False)
    return _Blind(snapshots=snapshots, index=index, region=region)


def _best_plane(job: _Job) -> tuple[int, ...]:
    """The plane whose estimation image has the most gradient energy (sampled: at most
    about 512 x 512 points per plane)."""
    n = int(np.prod(job.stack_shape))
    stride = max(1, int(np.ceil(max(job.data.shape[len(job.stack_shape):][:2]) / 512)))
    scores = []
    for flat in range(n):
        grey = _estimation_image(job, _index(job.stack_shape, flat), stride)
        scores.append(float(gradient_energy(grey).mean()))
    return _index(job.stack_shape, int(np.argmax(scores)))


def _prepare_kernel(job: _Job, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel to deconvolve with (centred: it may outgrow the estimate) and the one to
    report (the same, cropped to kernel_size). Cropping before deconvolving would cut the
    far tails of an off-centre estimate: -0.3 dB on the Levin set
    (docs/benchmarks/real-inputs.md)."""
    plane = job.data.shape[len(job.stack_shape):len(job.stack_shape) + 2]
    applied = deconvolution_kernel(raw, clean=job.clean, max_shape=plane)
    return applied, fit_kernel(applied, job.kernel_shape)


def _close(blind: _Blind) -> None:
    close = getattr(blind.snapshots, "close", None)
    if close is not None:
        close()


def _run(job: _Job, first: _Blind | None, stop: Any = None) -> Iterator[RestoreProgress]:
    """The work; ``first`` is the first blind run, None with a given kernel; ``stop`` as
    in :func:`restore_iter`."""
    from .nonblind import deconvolve

    started = time.perf_counter()
    stack_shape = job.stack_shape
    n_planes = int(np.prod(stack_shape)) if stack_shape else 1
    restored = np.zeros(stack_shape, bool)
    kernels = (np.zeros((*stack_shape, *job.kernel_shape), np.float32)
               if job.mode == "per_plane" else None)
    plane_pixels = job.data.shape[len(stack_shape)] * job.data.shape[len(stack_shape) + 1]
    n_channels = job.colour.n_colour if job.colour is not None else 1
    if first is None:  # a given kernel: one step a plane
        apply_units, iterations, n_blind = 1, 0, 0
    else:
        blind_pixels = (first.region.height * first.region.width if first.region is not None
                        else plane_pixels)
        apply_units = max(1, round(
            n_channels * plane_pixels * _NONBLIND_SECONDS_PER_PIXEL
            / (blind_pixels * job.settings.channels * _BLIND_SECONDS_PER_PIXEL_CHANNEL)))
        iterations = job.settings.run_iterations()  # the blind run's steps: every start's
        n_blind = n_planes if job.mode == "per_plane" else 1
    total = n_blind * iterations + n_planes * apply_units
    state = {"step": 0, "planes_done": 0}
    finished_early: bool | None = None  # a blind run was stopped: was its kernel applied?

    def stopped() -> bool:
        return stop is not None and bool(stop.is_set())

    def progress(stage: str, plane: int | None, snapshot: Snapshot | None = None,
                 kernel: np.ndarray | None = None, result: RestoreResult | None = None,
                 region: Region | None = None) -> RestoreProgress:
        return RestoreProgress(
            stage=stage, step=min(int(state["step"]), total), total=total, plane=plane,
            plane_index=None if plane is None else _index(stack_shape, plane),
            n_planes=n_planes, planes_done=state["planes_done"], snapshot=snapshot,
            kernel=kernel, image=job.out_full, kernels=kernels, restored=restored,
            elapsed=time.perf_counter() - started, result=result, region=region)

    def estimate(blind: _Blind, plane: int | None, done_before: int
                 ) -> Iterator[RestoreProgress | Snapshot]:
        last = None
        for last in blind.snapshots:
            state["step"] = done_before + last.step
            yield progress("estimate", plane, snapshot=last, region=blind.region)
            if stopped():
                _close(blind)
                break
        yield last  # the final snapshot (or the last before a stop), for the caller

    def apply(index: tuple[int, ...], flat: int, applied: np.ndarray, kernel: np.ndarray,
              early: bool = False) -> Iterator[RestoreProgress]:
        """Deconvolve one plane with ``applied``; progress reports ``kernel``. ``early``:
        the kernel of a stopped blind run, which may still be unusable (see ``stop``)."""
        nonlocal finished_early
        source = job.data[index]
        target = job.out[index]
        if early:
            finished_early = False
        for c in range(n_channels):
            channel = source[..., c] if job.colour is not None else source
            restored_channel = deconvolve(channel, applied, method=job.method,
                                          data_range=job.data_range, **job.nonblind_options)
            if job.colour is not None:
                target[..., c] = restored_channel
            else:
                target[...] = restored_channel
            state["step"] += apply_units / n_channels
            if c < n_channels - 1:
                yield progress("apply", flat, kernel=kernel)
        state["step"] = round(state["step"])  # a whole number after each plane
        if early:
            if out_of_range(source[..., :n_channels] if job.colour is not None else source,
                            target[..., :n_channels] if job.colour is not None else target):
                target[...] = source  # not a restoration yet: the plane keeps the input
                yield progress("apply", flat, kernel=kernel)
                return
            finished_early = True
        restored[index] = True
        state["planes_done"] += 1
        yield progress("apply", flat, kernel=kernel)

    blind = first  # the blind run in progress: closed however the generator ends
    regions: list[Region | None] = []
    estimate_snapshot: Snapshot | None = None
    shared_kernel: np.ndarray | None = None
    blind_settings: dict[str, Any] = {}
    try:
        if job.known_kernel is not None:
            shared_kernel = job.known_kernel
            for flat in range(n_planes):
                if flat > 0 and stopped():
                    break
                yield from apply(_index(stack_shape, flat), flat, shared_kernel,
                                 shared_kernel)
        elif job.mode == "shared":
            final = None
            for item in estimate(first, None, 0):
                if isinstance(item, RestoreProgress):
                    yield item
                else:
                    final = item
            estimate_snapshot = final
            blind_settings = dict(final.settings)
            regions.append(first.region)
            applied, shared_kernel = _prepare_kernel(job, final.kernel)
            state["step"] = iterations
            if not final.done:  # stopped: only the plane it was estimated on
                index = first.index or ()
                flat = int(np.ravel_multi_index(index, stack_shape)) if stack_shape else 0
                yield from apply(index, flat, applied, shared_kernel, early=True)
            else:
                for flat in range(n_planes):
                    if flat > 0 and stopped():
                        break
                    yield from apply(_index(stack_shape, flat), flat, applied, shared_kernel)
        else:
            for flat in range(n_planes):
                index = _index(stack_shape, flat)
                if flat > 0 and stopped():
                    break
                if flat > 0:
                    _close(blind)
                    blind = _blind_run(job, index)
                final = None
                for item in estimate(blind, flat, flat * (iterations + apply_units)):
                    if isinstance(item, RestoreProgress):
                        yield item
                    else:
                        final = item
                blind_settings = dict(final.settings)
                regions.append(blind.region)
                applied, kernel = _prepare_kernel(job, final.kernel)
                kernels[index] = kernel
                state["step"] = flat * (iterations + apply_units) + iterations
                yield from apply(index, flat, applied, kernel, early=not final.done)
    finally:
        if blind is not None:
            _close(blind)

    if job.known_kernel is not None:
        blind_settings = {"device": "cpu"}  # no blind run; the non-blind step runs on the CPU
    settings = {
        **blind_settings,
        **job.extra_settings,
        "kernel_source": "estimated" if job.known_kernel is None else "given",
        "mode": job.mode,
        "reference": list(job.reference) if job.reference is not None else None,
        "regions": [r.as_tuple() if r is not None else None for r in regions],
        "nonblind_method": job.method,
        "nonblind_options": dict(job.nonblind_options),
        "data_range": job.data_range,
        "clean_kernel": job.clean,
        "colour": None if job.colour is None else {
            "channel_axis": job.colour.channel_axis, "alpha": job.colour.has_alpha,
            "luminance_weights": job.weights},
        "memory_estimate_bytes": {"blind": job.memory.blind, "nonblind": job.memory.nonblind,
                                  "arrays": job.memory.arrays},
    }
    if stopped():
        settings["stopped"] = True
        settings["planes_restored"] = int(state["planes_done"])
        if finished_early is not None:
            settings["finished_early"] = finished_early
    result = RestoreResult(
        image=job.out_full, kernel=shared_kernel, kernels=kernels, estimate=estimate_snapshot,
        mode=job.mode, reference=job.reference if job.mode == "shared" and stack_shape else None,
        regions=tuple(regions), settings=settings, wall_time=time.perf_counter() - started)
    state["step"] = total
    yield progress("done", None, kernel=shared_kernel, result=result)

