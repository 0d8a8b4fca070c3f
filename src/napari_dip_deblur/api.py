"""The public numpy-in, numpy-out API: :func:`deblur` and :func:`deblur_iter`.

Validation and conversion live here; the optimisation itself is
:func:`napari_dip_deblur.engine.solver.optimise`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._validation import check_values, real_array
from .engine.solver import DivergedError, EngineConfig, EngineState, optimise
from .noise import NOISE_LEVEL_FLOOR, estimate_noise_level
from .presets import DEFAULT_PRESET, Settings, preset_for_device, resolve_settings
from .regions import Region, auto_region
from .sharpness import gradient_sparsity

__all__ = ["DeblurDivergedError", "Result", "Snapshot", "available_devices", "deblur",
           "deblur_iter", "finish_early"]

# Smallest image side: the SSIM window is 11 px and the U-Net needs room to downsample.
MIN_SIDE = 16


@dataclass(frozen=True)
class Snapshot:
    """The state of a run after ``step`` of ``total`` iterations.

    Attributes
    ----------
    step, total : int
        Iterations done and planned, over everything the run does: with several starts
        (``Settings.starts``) each start's trial counts, so ``total`` is ``iterations +
        (starts - 1) * trial``; when the fit check (``Settings.retry_mae_ratio``) starts a
        second attempt, ``total`` grows by ``iterations`` and ``step`` counts on.
    image : (M, N) ndarray of float32
        The restored image, in the input's intensity range (a fresh array). Where the run
        fits a crop (``Settings.estimation_crop``, ``settings["estimation_region"]``), it
        is the input with the generator's iterate in the crop until the final snapshot.
    kernel : (kh, kw) ndarray of float32
        The estimated blur kernel: non-negative, sums to 1, convolution orientation.
    generator_image : (M, N) ndarray of float32
        The image generator's output (of the crop's shape where the run fits a crop); the
        same as ``image`` except on the final snapshot
        of a run with ``final_deconvolution``, where ``image`` is the non-blind
        deconvolution of the input with the estimate made ready by
        :func:`~napari_dip_deblur.kernel_size.deconvolution_kernel`: centred, so the image
        stays aligned with the input, and its noise floor removed where it looks oversized
        (``settings["deconvolution_kernel_cleaned"]``). ``kernel`` is then that kernel
        cropped to ``kernel_size``.
    generator_kernel : (kh, kw) ndarray of float32 or None
        The kernel generator's own output (a fresh array), before any final deconvolution
        made it ready; the same as ``kernel`` except on such a final snapshot. With it the
        final step can be redone with other options:
        ``deconvolve(input, deconvolution_kernel(generator_kernel, clean=...))``.
    loss : float
        Total loss of the last iteration.
    terms : dict[str, float]
        The loss terms of the last iteration.
    elapsed : float
        Seconds since the run started.
    done : bool
        True for the final snapshot of a completed run.
    history : dict[str, ndarray]
        Per-iteration loss terms so far (``"loss"`` is the weighted total; NaN where a term
        was inactive).
    settings : dict
        Everything the run used: the preset's fields, kernel_size, seed, device, iterations;
        ``attempt`` (1, or 2 for the attempt from a centred kernel); where the last phase
        has an ``mae`` term, from the first attempt's end on, ``noise_level`` (of the
        input, on the engine's [0, 1] scale), then ``fit_ratio`` (:func:`fit_ratio`) on
        the last snapshot of an attempt and ``attempt_fit_ratios`` (one per attempt that
        has ended) during and after a second attempt, which ends with ``kept_attempt``.
        With several starts: ``start_seeds`` and ``start_trial_iterations``, ``start``
        (1-based) while a start's trial runs, then ``start_sparsity`` (each start's image
        at the end of its trial scored by
        :func:`~napari_dip_deblur.sharpness.gradient_sparsity`) and ``kept_start``.
        Where an attempt's kernel collapsed (:func:`kernel_collapse`, checked with the fit
        check), ``kernel_collapse``: per attempt ended, ``"delta"``, ``"uniform"`` or None.
    """

    step: int
    total: int
    image: np.ndarray
    kernel: np.ndarray
    generator_image: np.ndarray
    loss: float
    terms: dict[str, float]
    elapsed: float
    done: bool
    history: dict[str, np.ndarray]
    settings: dict[str, Any]
    generator_kernel: np.ndarray | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of :func:`deblur`.

    Attributes
    ----------
    image : (M, N) ndarray of float32
        The restored image in the input's intensity range.
    kernel : (kh, kw) ndarray of float32
        The estimated kernel (convolution orientation, non-negative, sums to 1):
        ``scipy.signal.convolve(image, kernel, mode="same")`` approximates the input. With a
        ``final_deconvolution`` it is the estimate as that step applied it: centred (and
        cleaned where it looked oversized), cropped to ``kernel_size``.
    history : dict[str, ndarray]
        Per-iteration loss terms (``"loss"`` is the total).
    settings : dict
        Everything the run used.
    generator_image : (M, N) ndarray of float32
        The image generator's own output (equal to ``image`` unless the settings ask for a
        ``final_deconvolution``); of the crop's shape where the run fitted a crop
        (``Settings.estimation_crop``; where: ``settings["estimation_region"]``, as
        ``(y0, x0, height, width)``).
    seed : int
    device : str
        Where it ran, e.g. ``"cpu"`` or ``"cuda:0 (NVIDIA H100 80GB HBM3)"``.
    iterations : int
        Iterations run: every start's trial and both attempts counted, where there were
        several starts or the fit check started a second attempt.
    wall_time : float
        Seconds.
    generator_kernel : (kh, kw) ndarray of float32 or None
        The kernel generator's own output, before a ``final_deconvolution`` centred and
        cropped it (equal to ``kernel`` without one).
    """

    image: np.ndarray
    kernel: np.ndarray
    history: dict[str, np.ndarray]
    settings: dict[str, Any]
    generator_image: np.ndarray
    seed: int
    device: str
    iterations: int
    wall_time: float
    generator_kernel: np.ndarray | None = None


class DeblurDivergedError(RuntimeError):
    """The optimisation diverged (NaN or infinite loss).

    Attributes
    ----------
    snapshot : Snapshot or None
        The last good snapshot, if one was taken before the loss went bad.
    """

    def __init__(self, message: str, snapshot: Snapshot | None) -> None:
        super().__init__(message)
        self.snapshot = snapshot


def available_devices() -> list[str]:
    """Devices torch can use here, CPU first: a subset of ``["cpu", "cuda", "mps"]``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA, else Apple MPS, else CPU; otherwise check the named device exists."""
    if isinstance(device, str) and device == "auto":
        available = available_devices()
        return torch.device("cuda" if "cuda" in available else
                            "mps" if "mps" in available else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}"
        ) from error
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', "
                         f"got {device!r}")
    if resolved.type not in available_devices():
        raise ValueError(f"device {device!r} is not available on this machine; "
                         f"available: {available_devices()} (or 'auto')")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist: "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return resolved


def describe_device(device: torch.device) -> str:
    """A readable name, e.g. ``"cuda:0 (NVIDIA H100 80GB HBM3)"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def normalise_kernel_size(kernel_size: Any, image_shape: tuple[int, int]) -> tuple[int, int]:
    """``kernel_size`` as an ``(h, w)`` pair of odd ints in [3, image side].

    An int (Python or numpy, not bool) or a sequence of two; floats are refused even where
    integral (``5.0``), as are strings (``"55"`` is not a size).
    """
    def side(value: Any) -> int | None:
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        return None

    single = side(kernel_size)
    if single is not None:
        pair: tuple[Any, ...] = (single, single)
    elif isinstance(kernel_size, (str, bytes)) or not hasattr(kernel_size, "__len__") \
            or len(kernel_size) != 2:
        pair = ()
    else:
        pair = tuple(side(v) for v in kernel_size)
    if len(pair) != 2 or None in pair:
        raise ValueError(f"kernel_size must be an odd int or an (h, w) pair of odd ints, "
                         f"got {kernel_size!r}")
    for value, limit, axis in zip(pair, image_shape, ("height", "width"), strict=True):
        if value < 3 or value % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {pair[0]}x{pair[1]}: "
                             f"pick the odd size just above the longest blur streak")
        if value > limit:
            raise ValueError(f"kernel_size {pair[0]}x{pair[1]} is larger than the image "
                             f"({image_shape[0]}x{image_shape[1]}) in {axis}")
    return pair


def _check_image(image: Any, *, values: bool = True) -> np.ndarray:
    """The image as an array: a real dtype, 2-D, at least ``MIN_SIDE`` a side; with
    ``values``, also finite, within float32's range and not constant (which
    :func:`_check_image_values` checks alone: it reads every pixel)."""
    array = real_array(image, finite=False)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D (M, N), got shape {array.shape}; for colour or "
                         f"stacks pass one 2-D plane")
    if min(array.shape) < MIN_SIDE:
        raise ValueError(f"image must be at least {MIN_SIDE}x{MIN_SIDE}, got "
                         f"{array.shape[0]}x{array.shape[1]}")
    if values:
        _check_image_values(array)
    return array


def _check_image_values(array: np.ndarray) -> None:
    """Finite, within float32's range, and not constant (at float32's precision: the
    result's): a constant image is refused, as it has nothing to deblur."""
    lo, hi = check_values(array, "image")
    if lo == hi:
        raise ValueError(f"image is constant (every pixel = {array.flat[0]}): "
                         f"there is nothing to deblur")
    if np.float32(lo) == np.float32(hi) or hi - lo < np.finfo(np.float32).tiny:
        raise ValueError(f"image varies by only {hi - lo:.3g} (from {lo:.6g} to {hi:.6g}): "
                         f"constant at float32 precision, the result's; subtract its mean "
                         f"and scale it up first")


def intensity_mapping(array: np.ndarray) -> tuple[float, float]:
    """``(offset, scale)`` with ``normalised = (array - offset) / scale``.

    8-bit images are divided by 255 (as SelfDeblur does). Other images have their
    ``[min, max]`` mapped to ``[0.1, 0.9]``: the generator ends in a sigmoid, and the
    headroom leaves the restored image room to be sharper (brighter peaks, darker troughs)
    than the blurry one.
    """
    if array.dtype == np.uint8:
        return 0.0, 255.0
    lo, hi = float(array.min()), float(array.max())
    scale = (hi - lo) / 0.8
    return lo - 0.1 * scale, scale


def _check_initial_kernel(kernel: Any, kernel_shape: tuple[int, int]) -> torch.Tensor:
    array = real_array(kernel, name="initial_kernel")
    if array.shape != kernel_shape:
        raise ValueError(f"initial_kernel has shape {array.shape}, but kernel_size asks for "
                         f"{kernel_shape}: pass a kernel of that size (or kernel_size="
                         f"{array.shape})")
    if array.min() < 0 or not array.sum() > 0:
        raise ValueError("initial_kernel must be non-negative with a positive sum")
    return torch.from_numpy(array.astype(np.float64) / array.sum()).float()


def _engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(**{name: getattr(settings, name)
                           for name in EngineConfig.__dataclass_fields__})


def deblur_iter(
    image: Any,
    kernel_size: int | tuple[int, int],
    *,
    preset: str | Settings = DEFAULT_PRESET,
    iterations: int | None = None,
    seed: int = 0,
    device: str = "auto",
    yield_every: int = 10,
    initial_kernel: Any = None,
    memory_check: bool = True,
    **overrides: Any,
) -> Iterator[Snapshot]:
    """Blind deblurring as a generator of snapshots, for live display and cancellation.

    Takes the arguments of :func:`deblur` plus ``yield_every`` and ``memory_check``
    (False: run even where the memory estimate says it will not fit; for callers that
    checked it themselves). Arguments are validated when this function is called (before
    the first ``next``). The generator yields a
    :class:`Snapshot` every ``yield_every`` iterations and always a final one with
    ``done=True``; closing it (``gen.close()``) stops the work at once.

    Raises
    ------
    ValueError
        Bad input (see :func:`deblur`), or ``yield_every < 1``.
    DeblurDivergedError
        (while iterating) the loss became NaN; ``error.snapshot`` is the last good one.
    """
    array = _check_image(image, values=False)  # the values after the memory check
    kernel_shape = normalise_kernel_size(kernel_size, array.shape)
    start_kernel = None if initial_kernel is None else _check_initial_kernel(initial_kernel,
                                                                              kernel_shape)
    torch_device = resolve_device(device)
    # The kernel's size may set its learning rate, the crop and the iterations: the values
    # used are the ones recorded.
    settings = resolve_settings(preset_for_device(preset, torch_device.type), iterations,
                                **overrides).for_kernel(kernel_shape)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0 \
            or seed >= 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if isinstance(yield_every, bool) or not isinstance(yield_every, (int, np.integer)) \
            or yield_every < 1:
        raise ValueError(f"yield_every must be an integer >= 1, got {yield_every!r}")
    if memory_check:
        _check_memory(array.shape, kernel_shape, settings, str(torch_device))
    _check_image_values(array)
    region = estimation_region(array, settings.estimation_crop)
    fitted = array if region is None else array[region.slices]
    generator_input = (fitted.shape[0] + kernel_shape[0] - 1,
                       fitted.shape[1] + kernel_shape[1] - 1)
    # BatchNorm needs more than one value per channel at the deepest level, which is
    # ceil(side / 2**levels) on a side: a side of 2**levels or less ends at 1 x 1 there.
    min_input = 2 ** settings.levels + 1
    if min(generator_input) < min_input:
        raise ValueError(f"image too small for a {settings.levels}-level generator (needs a side "
                         f">= {min_input - kernel_shape[0] + 1}); pass levels=<fewer> or a "
                         f"larger image")

    offset, scale = intensity_mapping(array)
    # A float64 copy: the caller's array is never touched.
    target = torch.from_numpy((fitted.astype(np.float64) - offset) / scale).float()[None]
    run_settings = {
        **settings.to_dict(),
        "preset": settings.name,
        "kernel_size": list(kernel_shape),
        "seed": int(seed),
        "device": describe_device(torch_device),
        "torch_version": torch.__version__,
        # What a seed's result depends on besides the seed: on the CPU the same seed gives
        # the same bits only with the same torch build, thread count and instruction set.
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "intensity_offset": offset,
        "intensity_scale": scale,
        "initial_kernel": start_kernel is not None,
        "estimation_region": None if region is None else list(region.as_tuple()),
    }
    progress = _attempts(target, kernel_shape, settings, seed=int(seed), device=torch_device,
                         yield_every=int(yield_every), initial_kernel=start_kernel)
    return _snapshots(progress, settings, array, offset, scale, run_settings, region)


def _check_memory(shape: tuple[int, int], kernel_shape: tuple[int, int], settings: Settings,
                  device: str) -> None:
    """Refuse (``InsufficientMemoryError``, a ``ValueError``) a run that would not fit, from
    the shapes alone: before any pass over the pixels."""
    from .memory import check_memory, estimate_memory

    crop = settings.estimation_crop
    blind_shape = shape if crop is None else (min(crop, shape[0]), min(crop, shape[1]))
    # The float32 result and a float64 working copy (the crop search, the intensity mapping).
    data_bytes = shape[0] * shape[1] * (4 + 8)
    check_memory(estimate_memory(
        blind_shape, shape, kernel_shape, channels=settings.channels,
        skip_channels=settings.skip_channels, non_local_levels=tuple(settings.non_local_levels),
        data_bytes=data_bytes, device=device,
        nonblind=settings.final_deconvolution != "none"))


def estimation_region(image: np.ndarray, crop: int | None) -> Region | None:
    """The crop a run with ``Settings.estimation_crop`` fits: None where there is no crop
    or the image is no larger than it, else :func:`~napari_dip_deblur.regions.auto_region`
    of that side (clipped to the image)."""
    if crop is None or max(image.shape) <= crop:
        return None
    return auto_region(image, crop)


@dataclass(frozen=True)
class _Progress:
    """An engine state placed in the whole run, which may take two attempts."""

    state: EngineState
    step: int
    total: int
    elapsed: float
    final: bool
    attempt: int
    fit: dict[str, Any]


def fit_ratio(mae: float, noise_level: float) -> float:
    """The data misfit in units of the noise: ``mae / max(noise_level, NOISE_LEVEL_FLOOR)``.

    A fit that has converged leaves about the noise (white Gaussian noise has an MAE of
    0.8 sigma; the DIP leaves some structure too): 1.4-2.4 on the 32 Levin images at the
    ``fast`` preset's end. A collapsed fit leaves more (3.4 and 5.1 in the two measured).
    """
    return float(mae) / max(float(noise_level), NOISE_LEVEL_FLOOR)


#: A kernel with more than this fraction of its mass in one pixel has collapsed to a delta:
#: it moves at most a tenth of each pixel's value elsewhere, i.e. it blurs (and so
#: deblurs) next to nothing; the image generator then just reproduces the blurry input.
DELTA_MASS = 0.9
#: A kernel whose perplexity (``exp`` of its entropy: the number of pixels it is spread over,
#: counted as if evenly) is above this fraction of its window has spread to uniform. A flat
#: box scores 1, a disk inscribed in the window 0.76-0.84 and a centred Gaussian of sigma a
#: quarter of the window 0.78; the README demo's motion kernels 0.05-0.10.
UNIFORM_SPREAD = 0.95


def kernel_collapse(kernel: Any, start: Any = None) -> str | None:
    """How a kernel estimate has collapsed: ``"delta"``, ``"uniform"`` or None (it has not).

    ``"delta"``: over :data:`DELTA_MASS` of the mass in one pixel. ``"uniform"``: spread
    over more than :data:`UNIFORM_SPREAD` of the window (by perplexity) while ``start``,
    the kernel the run started from, was not; without ``start`` a flat kernel counts. A run
    from the generator's random start begins flat: a kernel still flat at its end has not
    spread, it has not formed (the fit check is what judges that).
    """
    values = np.asarray(kernel, dtype=np.float64)
    total = float(values.sum())
    if not np.isfinite(total) or total <= 0:
        return None
    values = values / total
    if float(values.max()) > DELTA_MASS:
        return "delta"

    def flat(k: np.ndarray) -> bool:
        p = k[k > 0]
        return float(np.exp(-(p * np.log(p)).sum())) > UNIFORM_SPREAD * k.size

    if flat(values) and (start is None or not flat(np.asarray(start, np.float64)
                                                   / float(np.sum(start)))):
        return "uniform"
    return None


def _state_collapse(state: EngineState) -> str | None:
    start = None if state.start_kernel is None else state.start_kernel.numpy()
    return kernel_collapse(state.kernel.numpy(), start)


def start_seed(seed: int, start: int) -> int:
    """The seed of start ``start`` (0-based) of a run seeded ``seed`` (``Settings.starts``).

    Start 0 keeps ``seed``, so a run with one start is the run it always was; the others
    are drawn from ``numpy.random.SeedSequence([seed, start])``, independent of it.
    """
    if start == 0:
        return seed
    return int(np.random.SeedSequence([seed, start]).generate_state(1, dtype=np.uint32)[0])


def _raced(target: torch.Tensor, kernel_shape: tuple[int, int], settings: Settings,
           config: EngineConfig, *, seed: int, device: torch.device, yield_every: int,
           initial_kernel: torch.Tensor | None
           ) -> Generator[_Progress, None, tuple[EngineState, int, float, dict[str, Any]]]:
    """The first attempt: ``Settings.starts`` starts race for ``start_trial`` of the run,
    and the one with the sharpest image goes on.

    Yields the progress of every iteration but the last; returns the last state, the
    steps done in all, the seconds spent in all and what the race recorded.
    """
    n = settings.iterations
    starts = settings.starts
    if starts == 1:
        states = optimise(target, kernel_shape, config, seed=seed, device=device,
                          yield_every=yield_every, initial_kernel=initial_kernel)
        try:
            for state in states:
                if state.step == n:
                    return state, n, state.elapsed, {}
                yield _Progress(state, state.step, n, state.elapsed, False, 1, {})
        finally:
            states.close()
        raise RuntimeError("the engine ended without its last step")  # cannot happen

    started = time.perf_counter()
    trial = settings.start_trial_iterations()
    total = settings.run_iterations()
    seeds = [start_seed(seed, i) for i in range(starts)]
    runs: list[Iterator[EngineState]] = []  # suspended at the end of their trial
    trial_ends: list[EngineState] = []
    try:
        for i, run_seed in enumerate(seeds):
            runs.append(optimise(target, kernel_shape, config, seed=run_seed, device=device,
                                 yield_every=yield_every, initial_kernel=initial_kernel,
                                 pause_at=trial))
            info = {"start": i + 1, "start_seeds": seeds, "start_trial_iterations": trial}
            for state in runs[i]:
                if state.step < n or i < starts - 1:  # a run's last step is yielded as final
                    yield _Progress(state, i * trial + state.step, total,
                                    time.perf_counter() - started, False, 1, info)
                if state.step == trial:
                    trial_ends.append(state)
                    break
        # Lower is sharper: a start whose kernel has collapsed to a smeared blob leaves a
        # blurry image, with less sparse gradients (docs/presets.md, "Two starts").
        margin = (max(kernel_shape) - 1) // 2
        scores = [gradient_sparsity(state.image.numpy(),
                                    margin=_fitting_margin(margin, state.image.shape))
                  for state in trial_ends]
        kept = int(np.argmin(scores))
        for i, states in enumerate(runs):
            if i != kept:
                states.close()
        info = {"start_seeds": seeds, "start_sparsity": scores, "kept_start": kept + 1,
                "start_trial_iterations": trial}
        states, state = runs[kept], trial_ends[kept]
        offset = (starts - 1) * trial
        if state.step == n:
            return state, total, time.perf_counter() - started, info
        for state in states:
            if state.step == n:
                return state, total, time.perf_counter() - started, info
            yield _Progress(state, offset + state.step, total, time.perf_counter() - started,
                            False, 1, info)
    finally:
        for states in runs:
            states.close()
    raise RuntimeError("the engine ended without its last step")  # cannot happen


def _fitting_margin(margin: int, shape: tuple[int, ...]) -> int:
    """``margin``, reduced where the image is too small to keep a 2 x 2 core inside it."""
    return max(0, min(margin, (min(shape[-2:]) - 2) // 2))


def _attempts(target: torch.Tensor, kernel_shape: tuple[int, int], settings: Settings, *,
              seed: int, device: torch.device, yield_every: int,
              initial_kernel: torch.Tensor | None) -> Iterator[_Progress]:
    """The engine's states: the race of ``Settings.starts`` starts, then a second attempt
    from a centred kernel where the fit failed the fit check (``Settings.retry_mae_ratio``)
    or, with the fit check on, the kernel collapsed (:func:`kernel_collapse`; even from a
    given initial kernel). The kept attempt is one whose kernel did not collapse, if any,
    then the better fit."""
    n = settings.iterations
    config = _engine_config(settings)
    checks = "mae" in settings.phases[-1].terms
    noise_level = estimate_noise_level(target[0].numpy()) if checks else float("nan")
    # The end-of-run checks hold for runs of the preset's length (its threshold is set
    # for them; shorter runs have none).
    judged = settings.retry_mae_ratio is not None
    may_retry = judged and initial_kernel is None
    first, steps, seconds, race = yield from _raced(
        target, kernel_shape, settings, config, seed=seed, device=device,
        yield_every=yield_every, initial_kernel=initial_kernel)
    if not checks:
        yield _Progress(first, steps, steps, seconds, True, 1, race)
        return
    ratio = fit_ratio(first.terms["mae"], noise_level)
    fit: dict[str, Any] = {**race, "noise_level": noise_level, "fit_ratio": ratio}
    collapse = _state_collapse(first) if judged else None
    collapsed = {} if collapse is None else {"kernel_collapse": [collapse]}
    if collapse is None and (not may_retry or ratio <= settings.retry_mae_ratio):
        yield _Progress(first, steps, steps, seconds, True, 1, fit)
        return

    # The first fit failed the check or its kernel collapsed: show it, then start again
    # from a centred kernel.
    total = steps + n
    yield _Progress(first, steps, total, seconds, False, 1, {**fit, **collapsed})
    retry = dataclasses.replace(config, kernel_start_sigma=settings.retry_kernel_start_sigma)
    second: EngineState | None = None
    during = {**race, "noise_level": noise_level, "attempt_fit_ratios": [ratio], **collapsed}
    kept_seed = race["start_seeds"][race["kept_start"] - 1] if race else seed
    states = optimise(target, kernel_shape, retry, seed=kept_seed, device=device,
                      yield_every=yield_every)
    try:
        for state in states:
            if state.step < n:
                yield _Progress(state, steps + state.step, total, seconds + state.elapsed,
                                False, 2, during)
            else:
                second = state
    except DivergedError:
        second = None  # the first attempt stays the result
    finally:
        states.close()
    ratios = [ratio] + ([] if second is None else [fit_ratio(second.terms["mae"], noise_level)])
    collapses = [collapse] + ([] if second is None else [_state_collapse(second)])
    # A kernel that did not collapse first, then the better fit (the first on a tie).
    kept = 1 + min(range(len(ratios)), key=lambda i: (collapses[i] is not None, ratios[i]))
    fit = {**fit, "fit_ratio": ratios[kept - 1], "attempt_fit_ratios": ratios,
           "kept_attempt": kept}
    if any(c is not None for c in collapses):
        fit["kernel_collapse"] = collapses
    elapsed = seconds + (second.elapsed if second is not None else 0.0)
    yield _Progress(second if kept == 2 else first, total, total, elapsed, True, kept, fit)


def _snapshots(progress: Iterator[_Progress], settings: Settings, array: np.ndarray,
               offset: float, scale: float, run_settings: dict[str, Any],
               region: Region | None) -> Iterator[Snapshot]:
    last: Snapshot | None = None
    try:
        for item in progress:
            state = item.state
            history = {name: state.history[:, i].numpy().copy()
                       for i, name in enumerate(state.term_names)}
            history["loss"] = state.history[:, -1].numpy().copy()
            run_info = {**run_settings, "blur": state.blur_method, "precision": state.precision,
                        "memory_format": state.memory_format,
                        "iterations_done": item.step, "wall_time": item.elapsed,
                        "attempt": item.attempt, **item.fit}
            generated = (state.image[0].numpy().astype(np.float64) * scale + offset
                         ).astype(np.float32)
            kernel = state.kernel.numpy().astype(np.float32, copy=True)
            generator_kernel = kernel.copy()
            if region is None:
                image = generated
            else:  # the input, with the crop being fitted showing the generator's iterate
                image = array.astype(np.float32)
                image[region.slices] = generated
            if item.final and settings.final_deconvolution != "none":
                image, kernel, cleaned = _final_deconvolution(
                    array, kernel, settings.final_deconvolution,
                    settings.final_deconvolution_weight)
                run_info["deconvolution_kernel_cleaned"] = cleaned
            last = Snapshot(
                step=item.step,
                total=item.total,
                image=image,
                kernel=kernel,
                generator_image=generated,
                generator_kernel=generator_kernel,
                loss=state.terms["loss"],
                terms=dict(state.terms),
                elapsed=item.elapsed,
                done=item.final,
                history=history,
                settings=run_info,
            )
            yield last
    except DivergedError as error:
        raise DeblurDivergedError(
            f"{error}; the last good snapshot (iteration {last.step if last else 0}) is kept in "
            f"error.snapshot. Try a lower image_lr, or precision='float32'.", last
        ) from error
    finally:
        progress.close()


def _final_deconvolution(array: np.ndarray, kernel: np.ndarray, method: str, weight: float
                         ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The final step: the restored image, the kernel applied (cropped to the estimate's
    shape) and whether its noise floor was removed."""
    from .kernel_size import deconvolution_kernel, fit_kernel, needs_cleaning
    from .nonblind import deconvolve

    # Centred so the image stays aligned with the input, cleaned if oversized; the kernel
    # returned is the one applied, cropped to the size asked for.
    cleaned = needs_cleaning(kernel)
    applied = deconvolution_kernel(kernel, clean=cleaned, max_shape=array.shape)
    image = deconvolve(array, applied, method=method, weight=weight)
    return image, fit_kernel(applied, kernel.shape), cleaned


def out_of_range(source: np.ndarray, restored: np.ndarray) -> bool:
    """Whether ``restored`` leaves the range of ``source`` by more than that range: the
    mark of a deconvolution with a kernel still too near its flat start (internal; shared
    by :func:`finish_early` and ``restore_iter``'s ``stop``)."""
    low, high = float(source.min()), float(source.max())
    span = high - low
    return float(restored.min()) < low - span or float(restored.max()) > high + span


def finish_early(image: Any, snapshot: Snapshot) -> Snapshot:
    """A snapshot of a run stopped early, finished as the run would have finished it.

    A preset with a ``final_deconvolution`` (``fast``) ends by deconvolving the whole input
    with the kernel estimate; before that its snapshots show the generator's iterate, which
    is only a crop of the input where the run fits one (``Settings.estimation_crop``). A
    run cancelled part-way can still end the same way, with the kernel it had: that is what
    the napari widget keeps on Cancel.

    Parameters
    ----------
    image : (M, N) array_like
        The input the run was given (not modified).
    snapshot : Snapshot
        A snapshot of that run, from :func:`deblur_iter`.

    Returns
    -------
    Snapshot
        The same snapshot (``done`` stays as it was) with ``image`` the input deconvolved
        with the snapshot's kernel estimate (``generator_kernel``), ``kernel`` that
        estimate as applied, and ``settings["finished_early"] = True``. A snapshot that is
        already final is returned as it is. Early in a run the kernel is still close to
        its flat start, and deconvolving with it amplifies the image far beyond its range
        (up to iteration 100 of 440 of a ``fast`` start on the camera sample:
        ``benchmarks/finish_early.py``):
        where the result overshoots the input's range by more than that range, the
        snapshot is returned unchanged but for ``settings["finished_early"] = False``.

    Raises
    ------
    ValueError
        The run has no final deconvolution, the snapshot has no ``generator_kernel``, or
        the image is not the shape of the run's input.

    Examples
    --------
    >>> last = None                                              # doctest: +SKIP
    >>> for last in deblur_iter(blurry, 15):                     # doctest: +SKIP
    ...     if last.elapsed > 30:
    ...         break
    >>> restored = finish_early(blurry, last).image              # doctest: +SKIP
    """
    method = snapshot.settings.get("final_deconvolution", "none")
    if method == "none":
        raise ValueError("the run has no final deconvolution (final_deconvolution='none'): "
                         "its snapshots already show its result")
    if snapshot.done:
        return snapshot
    if snapshot.generator_kernel is None:
        raise ValueError("the snapshot has no generator_kernel to deconvolve with")
    array = _check_image(image)
    if array.shape != snapshot.image.shape:
        raise ValueError(f"image has shape {array.shape}, but the run's input had "
                         f"{snapshot.image.shape}")
    restored, kernel, cleaned = _final_deconvolution(
        array, snapshot.generator_kernel, method,
        float(snapshot.settings["final_deconvolution_weight"]))
    if out_of_range(array, restored):
        # not a restoration yet: the kernel cannot be deconvolved with
        return dataclasses.replace(snapshot, settings={**snapshot.settings,
                                                       "finished_early": False})
    settings = {**snapshot.settings, "deconvolution_kernel_cleaned": cleaned,
                "finished_early": True}
    return dataclasses.replace(snapshot, image=restored, kernel=kernel, settings=settings)


def deblur(
    image: Any,
    kernel_size: int | tuple[int, int],
    *,
    preset: str | Settings = DEFAULT_PRESET,
    iterations: int | None = None,
    seed: int = 0,
    device: str = "auto",
    initial_kernel: Any = None,
    **overrides: Any,
) -> Result:
    """Blind deblurring of one 2-D image with a deep image prior (SelfDeblur family).

    Fits an image generator (a U-Net fed with fixed noise) and a kernel generator (an MLP
    with a softmax) so that the generated image blurred by the generated kernel matches
    ``image``.

    Parameters
    ----------
    image : (M, N) array_like
        The blurry image, any real dtype and range (uint8 is read as [0, 255]); not modified.
    kernel_size : int or (int, int)
        Odd size of the kernel to estimate, a little larger than the blur's extent.
    preset : str or Settings
        "auto" (the default: "selfdeblur" on CUDA, "fast" elsewhere), a name in
        :data:`PRESETS` ("fast", "selfdeblur", "staged", "mse", "mae", "ssim", "mae+ssim")
        or a :class:`Settings`.
    iterations : int, optional
        Overrides the preset's number of iterations (phases scale with it).
    seed : int
        Seeds the networks and the noise: the same seed gives the same result on the CPU.
    device : str
        "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".
    initial_kernel : (kh, kw) array_like, optional
        A first guess of the kernel (e.g. a measured PSF, or an estimate from a smaller
        copy of the image), of size ``kernel_size``; it is normalised and refined by the
        run. By default the kernel generator starts from its random initial output.
    **overrides
        Any field of :class:`Settings` (``Settings.field_names()``), e.g. ``channels=64``.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        Non-2-D, empty, non-finite or constant image (constant at float32 precision too:
        there is nothing to deblur, so no result is made up), or one with values beyond
        1e36 in magnitude (the result is float32); a kernel size that is even, < 3, not an
        int (``5.0``, ``"5"``) or larger than the image; an unknown preset, override or
        device; iterations < 1. Checked before any work, the pixels' values last.
    InsufficientMemoryError
        (a ``ValueError``) The run would not fit in memory; judged from the shapes, before
        any pass over the pixels (:mod:`napari_dip_deblur.memory`).
    DeblurDivergedError
        The loss became NaN; ``error.snapshot`` holds the last good state.

    Notes
    -----
    The model is ``y = x * k + n`` with a 'valid' convolution: the generator produces an
    image larger than ``y`` by the kernel's support, so no boundary condition is assumed.
    The returned image is the generated one cropped to ``y``'s size.

    References
    ----------
    .. [1] D. Ren, K. Zhang, Q. Wang, Q. Hu, W. Zuo, "Neural Blind Deconvolution Using
       Deep Priors", CVPR 2020.
    """
    snapshots = deblur_iter(image, kernel_size, preset=preset, iterations=iterations,
                            seed=seed, device=device, yield_every=10**9,
                            initial_kernel=initial_kernel, **overrides)
    final: Snapshot | None = None
    for final in snapshots:  # noqa: B007 - only the last snapshot is kept
        pass
    return result_of(final, seed)


def result_of(final: Snapshot | None, seed: int) -> Result:
    """The :class:`Result` of a run of :func:`deblur_iter` from its last snapshot."""
    if final is None or not final.done:  # cannot happen: the engine always yields at the end
        raise RuntimeError("the optimisation ended without a final snapshot")
    return Result(
        image=final.image,
        kernel=final.kernel,
        history=final.history,
        settings=final.settings,
        generator_image=final.generator_image,
        seed=int(seed),
        device=final.settings["device"],
        iterations=final.step,
        wall_time=final.elapsed,
        generator_kernel=final.generator_kernel,
    )
