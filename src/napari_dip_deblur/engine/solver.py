"""The one optimisation loop of SelfDeblur-style blind deconvolution, as a generator.

``optimise`` fits the image generator and the kernel generator to one normalised blurry
image and yields :class:`EngineState` snapshots; it prints nothing and never touches numpy
arrays of the caller. Closing the generator stops the work at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from .allocator import keep_freed_memory
from .blur import blur, choose_blur_method
from .losses import LOSS_TERMS, LossInputs
from .nets import ImageGenerator, KernelGenerator
from .schedule import Phase, lr_factor, phase_index, phase_starts

__all__ = ["MEMORY_FORMATS", "DivergedError", "EngineConfig", "EngineState", "optimise"]

MEMORY_FORMATS = ("auto", "contiguous", "channels_last")
"""Accepted ``memory_format`` values (see :func:`resolve_memory_format`)."""


@dataclass(frozen=True)
class EngineConfig:
    """Everything the loop needs, in engine terms (no presets, no validation of user input)."""

    iterations: int
    phases: Sequence[Phase]
    image_lr: float
    kernel_lr: float
    lr_milestones: Sequence[float]
    lr_gamma: float
    levels: int
    channels: int
    skip_channels: int
    upsample: str
    non_local_levels: Sequence[int]
    input_channels: int
    input_noise_scale: float
    reg_noise_std: float
    kernel_input: int
    kernel_hidden: int
    kernel_start_sigma: float | None
    blur: str
    precision: str
    memory_format: str = "contiguous"


@dataclass(frozen=True)
class EngineState:
    """A snapshot of the optimisation after ``step`` iterations.

    Attributes
    ----------
    step : int
        Iterations completed.
    image : (C, H, W) float32 CPU tensor
        The generated image cropped to the blurry image's size, in [0, 1].
    kernel : (kh, kw) float32 CPU tensor
        The generated kernel (convolution orientation, sums to 1).
    terms : dict[str, float]
        The loss terms of the last iteration (weighted total under ``"loss"``).
    history : (step, n_terms + 1) float32 CPU tensor
        Per-iteration terms in ``term_names`` order, then the total; NaN where inactive.
    term_names : tuple[str, ...]
    elapsed : float
        Seconds since the loop started (set-up included).
    blur_method : str
        The forward model used ('direct' or 'fft').
    precision : str
        The image generator's precision ('float32' or 'bfloat16').
    memory_format : str
        The image generator's activation layout ('contiguous' or 'channels_last').
    start_kernel : (kh, kw) float32 CPU tensor or None
        The kernel the generator started from (before the first step): the caller can tell
        a kernel that spread out during the run from one that never left a flat start.
    """

    step: int
    image: torch.Tensor
    kernel: torch.Tensor
    terms: Mapping[str, float]
    history: torch.Tensor
    term_names: tuple[str, ...]
    elapsed: float
    blur_method: str
    precision: str
    memory_format: str = "contiguous"
    start_kernel: torch.Tensor | None = None


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; ``step`` is the first iteration found to be bad."""

    def __init__(self, step: int) -> None:
        super().__init__(f"the loss became NaN or infinite by iteration {step}")
        self.step = step


def _seeded_uniform(shape: tuple[int, ...], scale: float, generator: torch.Generator,
                    device: torch.device) -> torch.Tensor:
    # Drawn on the CPU so a seed gives the same inputs on every device.
    return (torch.rand(shape, generator=generator) * scale).to(device)


def build_generators(config: EngineConfig, out_channels: int,
                     kernel_shape: tuple[int, int], seed: int
                     ) -> tuple[ImageGenerator, KernelGenerator]:
    """Both generators, initialised from ``seed`` without touching torch's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        image_net = ImageGenerator(
            in_channels=config.input_channels, out_channels=out_channels,
            levels=config.levels, channels=config.channels,
            skip_channels=config.skip_channels, upsample=config.upsample,
            non_local_levels=config.non_local_levels,
        )
        kernel_net = KernelGenerator(kernel_shape, config.kernel_input, config.kernel_hidden,
                                     start_sigma=config.kernel_start_sigma)
    return image_net, kernel_net


def optimise(
    target: torch.Tensor,
    kernel_shape: tuple[int, int],
    config: EngineConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    yield_every: int = 10,
    initial_kernel: torch.Tensor | None = None,
    pause_at: int | None = None,
) -> Iterator[EngineState]:
    """Fit the generators to ``target`` and yield snapshots.

    Parameters
    ----------
    target : (C, H, W) float tensor
        The blurry image, normalised to about [0, 1].
    kernel_shape : (kh, kw)
        Odd kernel size.
    config : EngineConfig
    seed : int
        Seeds the network weights, the noise inputs and the per-iteration input perturbation.
    device : torch.device or str
    yield_every : int
        A snapshot every ``yield_every`` iterations and always after the last one.
    initial_kernel : (kh, kw) tensor, optional
        Start the kernel generator from this kernel (see
        :meth:`KernelGenerator.start_from`) instead of its random initial output.
    pause_at : int, optional
        Also yield a snapshot after this many iterations, so that a caller can compare
        runs there (and close the ones it drops) before going on.

    Yields
    ------
    EngineState

    Raises
    ------
    DivergedError
        When the loss is found NaN or infinite (checked at each snapshot, so the previous
        snapshot is the last good one).
    """
    started = time.perf_counter()
    device = torch.device(device)
    if device.type == "cuda":
        # Fixed shapes all run long: let cuDNN pick its fastest convolution algorithms.
        torch.backends.cudnn.benchmark = True
    kh, kw = kernel_shape
    channels, height, width = target.shape
    total = config.iterations

    image_net, kernel_net = build_generators(config, channels, kernel_shape, seed)
    if initial_kernel is not None:
        kernel_net.start_from(initial_kernel)
    image_net.to(device).train()
    kernel_net.to(device).train()
    rng = torch.Generator().manual_seed(seed)
    z_image = _seeded_uniform((1, config.input_channels, height + kh - 1, width + kw - 1),
                              config.input_noise_scale, rng, device)
    memory_format = resolve_memory_format(config.memory_format, device)
    if memory_format == "channels_last":
        # The weights decide the layout of every activation after the first convolution.
        # The 8-channel noise input stays contiguous: normal_ on a channels-last tensor is
        # ~10x slower on the CPU (19 ms against 2 ms at 267 x 267).
        image_net.to(memory_format=torch.channels_last)
    z_kernel = _seeded_uniform((config.kernel_input,), config.input_noise_scale, rng, device)
    with torch.no_grad():  # no randomness: the run is the same with or without it
        start_kernel = kernel_net(z_kernel).float().cpu()
    perturbation_rng = torch.Generator(device=device).manual_seed(seed + 1)
    perturbation = torch.empty_like(z_image)
    y = target.to(device=device, dtype=torch.float32).unsqueeze(0)

    blur_method = (choose_blur_method(kernel_shape, device) if config.blur == "auto"
                   else config.blur)
    optimizer = torch.optim.Adam([
        {"params": image_net.parameters(), "lr": config.image_lr},
        {"params": kernel_net.parameters(), "lr": config.kernel_lr},
    ])
    base_lrs = [config.image_lr, config.kernel_lr]
    precision = resolve_precision(config.precision, device)
    autocast = _autocast(device, precision)

    term_names = tuple(sorted({name for p in config.phases for name in p.terms}))
    term_index = {name: i for i, name in enumerate(term_names)}
    starts = phase_starts(config.phases, total)
    # Kept on the device and read at snapshots only: no host sync in the loop.
    history = torch.full((total, len(term_names) + 1), float("nan"), device=device)
    crop_top, crop_left = (kh - 1) // 2, (kw - 1) // 2

    # On the CPU, reuse freed activation buffers instead of faulting in fresh pages.
    with keep_freed_memory(device.type == "cpu"):
        for step in range(total):
            phase = config.phases[phase_index(starts, step)]
            factor = lr_factor(step, total, config.lr_milestones, config.lr_gamma)
            scales = (1.0, phase.kernel_lr_scale)
            for group, base, scale in zip(optimizer.param_groups, base_lrs, scales, strict=True):
                group["lr"] = base * factor * scale

            optimizer.zero_grad(set_to_none=True)
            perturbation.normal_(generator=perturbation_rng)
            with autocast:
                image = image_net(z_image + config.reg_noise_std * perturbation)
            image = image.float()
            kernel = kernel_net(z_kernel)
            blurred = blur(image, kernel, blur_method)
            inputs = LossInputs(blurred=blurred, target=y, image=image, kernel=kernel)
            values = {name: LOSS_TERMS[name](inputs) for name in phase.terms}
            loss = sum(weight * values[name] for name, weight in phase.terms.items())
            loss.backward()
            optimizer.step()

            with torch.no_grad():
                for name, value in values.items():
                    history[step, term_index[name]] = value.detach()
                history[step, -1] = loss.detach()

            done = step + 1
            if done % yield_every == 0 or done == total or done == pause_at:
                last = history[step].cpu()
                if not torch.isfinite(last[-1]):
                    raise DivergedError(done)
                terms = {name: float(last[term_index[name]]) for name in phase.terms}
                terms["loss"] = float(last[-1])
                yield EngineState(
                    step=done,
                    image=image.detach()[0, :, crop_top:crop_top + height,
                                         crop_left:crop_left + width].float().cpu(),
                    kernel=kernel.detach().float().cpu(),
                    terms=terms,
                    history=history[:done].cpu(),
                    term_names=term_names,
                    elapsed=time.perf_counter() - started,
                    blur_method=blur_method,
                    precision=precision,
                    memory_format=memory_format,
                    start_kernel=start_kernel,
                )


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bfloat16' on a CPU with native bfloat16 arithmetic, else 'float32'.

    On such CPUs (AVX512-BF16, AMX) bfloat16 convolutions run ~1.4x faster for the
    64-channel generator (``benchmarks/speed.py``); elsewhere bfloat16 is emulated and slower,
    and on CUDA the small convolutions of a 255 px image gain nothing from it.
    """
    if precision != "auto":
        return precision
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        try:
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return "bfloat16"
        except (AttributeError, RuntimeError):  # private API: absent in some builds
            pass
    return "float32"


def resolve_memory_format(memory_format: str, device: torch.device) -> str:
    """'auto' -> 'channels_last' on the CPU, else 'contiguous'.

    On the CPU, oneDNN's convolutions, BatchNorm and padding run faster on channels-last
    activations: 4-20 % per ``fast`` iteration at 255-1024 px on 2 cores
    (``benchmarks/speed.py``). On CUDA in float32 the gain is unmeasured, so the layout stays.
    """
    if memory_format == "auto":
        return "channels_last" if device.type == "cpu" else "contiguous"
    check_memory_format(memory_format)
    return memory_format


def check_memory_format(memory_format: str) -> None:
    """Refuse a value outside :data:`MEMORY_FORMATS` with the accepted ones named."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError("memory_format must be 'auto', 'contiguous' or 'channels_last', "
                         f"got {memory_format!r}")


def _autocast(device: torch.device, precision: str):
    if precision == "float32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
