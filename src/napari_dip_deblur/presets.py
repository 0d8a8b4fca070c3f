"""Named presets: every hyperparameter of a run, as a small declarative object.

A preset is a frozen :class:`Settings`. Overrides go through :func:`resolve_settings`, which
checks every key. Phase starts and learning-rate milestones are fractions of the run, so a
preset keeps its shape when ``iterations`` is changed. Sources and the reasons for each
value are in ``docs/presets.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .engine.blur import BLUR_METHODS
from .engine.schedule import Phase, validate_phases
from .engine.solver import check_memory_format

__all__ = ["DEFAULT_PRESET", "PRESETS", "Phase", "Settings", "preset_for_device",
           "recommended_preset", "resolve_settings", "staged_phases"]

# Knobs of the three-interval schedule, accepted as overrides by `resolve_settings`.
STAGED_KEYS = ("stage2_start", "stage3_start", "tv_weight", "kernel_energy_weight")


@dataclass(frozen=True)
class Settings:
    """All hyperparameters of one deblurring run.

    Attributes
    ----------
    name, description, source : str
        What the preset is and where its values come from.
    iterations : int
        Optimisation steps.
    phases : tuple of Phase
        The loss schedule (see :class:`~napari_dip_deblur.engine.schedule.Phase`).
    image_lr, kernel_lr : float
        Adam learning rates of the image and kernel generators.
    large_kernel_lr : float or None
        The kernel generator's rate instead of ``kernel_lr`` when the kernel's larger side
        is at least ``large_kernel_side`` (None: always ``kernel_lr``). The kernel is a
        softmax over its pixels, so a larger array moves more slowly at the same rate;
        ``fast`` needs the faster rate on 21-27 px kernels (docs/presets.md). Dropped when
        ``kernel_lr`` is overridden without it, so an explicit ``kernel_lr`` is what runs.
    large_kernel_side : int
        Kernels whose larger side is at least this are large (``large_kernel_lr``); smaller
        ones are small (``small_kernel_crop``, ``small_kernel_iterations``).
    small_kernel_crop, small_kernel_iterations : int or None
        ``estimation_crop`` and ``iterations`` for small kernels, instead of the preset's
        (None: the same). A smaller crop fitted for longer costs about the same per start:
        ``fast`` fits 144 px for 600 iterations below 21 px, where it gained 0.25-1.3 dB
        on the Levin set's 11-19 px kernels, against 176 px for 440 above, where the
        smaller crop lost up to 2.8 dB (docs/presets.md). Each is dropped when
        ``estimation_crop`` or ``iterations`` is overridden without it, so the value given
        is what runs.
    lr_milestones : tuple of float
        Run fractions at which both learning rates are multiplied by ``lr_gamma``.
    lr_gamma : float
    levels, channels, skip_channels : int
        Image generator depth and widths (channels down = up at every level).
    upsample : str
        'bilinear' or 'nearest'.
    non_local_levels : tuple of int
        Levels (0 = finest) with a non-local block.
    input_channels : int
        Channels of the image generator's noise input.
    input_noise_scale : float
        The noise inputs are uniform in [0, input_noise_scale).
    reg_noise_std : float
        Std of the Gaussian perturbation added to the image input at every iteration.
    kernel_input, kernel_hidden : int
        Kernel generator input and hidden sizes.
    kernel_start_sigma : float or None
        Start the kernel generator from a centred Gaussian whose standard deviation is this
        fraction of the kernel's size (None: from a flat kernel, as SelfDeblur does). With
        a kernel size far above the blur's, 0.5 rescued ``fast``'s worst oversized case
        (+2 to +5.6 dB over three seeds) but cost up to 1.2 dB on two others, 2.3 dB on
        one Levin image's eight blurs at the true size, and about 1 dB on the whole Levin
        set in a 48-channel test, so no preset uses it (docs/presets.md). An
        ``initial_kernel`` given to the run replaces it.
    retry_mae_ratio : float or None
        The fit check (None: off). When the run ends with its data misfit (the ``mae``
        term, which the last phase must then have) above this multiple of the input's noise
        level (:func:`napari_dip_deblur.noise.estimate_noise_level`, at least
        ``noise.NOISE_LEVEL_FLOOR``), the fit is taken to have failed: the run starts again from
        a centred kernel (``retry_kernel_start_sigma``) and keeps whichever of the two fits
        the data better. ``fast`` uses 3: its two collapses measured here (an oversized
        kernel, two seeds) ended at 3.4 and 5.1, its 32 Levin runs at 1.4-2.4
        (docs/presets.md). Skipped when an ``initial_kernel`` is given. The threshold holds
        for runs as long as the preset's: an ``iterations`` override below the preset's
        turns the check off unless ``retry_mae_ratio`` is given with it.
    retry_kernel_start_sigma : float
        ``kernel_start_sigma`` of the second attempt.
    starts : int
        Independent starts of the run (1: just one). Each runs the first ``start_trial``
        of the iterations from its own seed (:func:`napari_dip_deblur.api.start_seed`;
        the first keeps the run's seed); the one whose generated image is sharpest by
        :func:`napari_dip_deblur.sharpness.gradient_sparsity` goes on to the end and the
        others are dropped. It guards against a start collapsing to a smeared kernel,
        which fits the data as well as a good one (so the fit check cannot see it) but
        leaves a blurry image. Costs ``(starts - 1) * start_trial`` of a run more, and
        memory for the suspended starts' networks and optimiser states (small beside the
        activations, which they do not keep). ``fast`` runs 2, each to the end
        (``start_trial=1``), on its crop (``estimation_crop``): about the time of one start
        on a whole 255 x 255 image (docs/presets.md, "Two starts").
    start_trial : float
        The fraction of the iterations each start runs before they are compared, in (0, 1]
        (1: every start runs to the end and the sharpest result is kept). 0.36: the score
        picked the better of two starts no better than chance before 23 % of a ``fast``
        run, and on 10 of 12 at 36 % (docs/presets.md, "Two starts").
    estimation_crop : int, optional
        Fit the generators to the best-textured ``estimation_crop`` x ``estimation_crop``
        crop of the image (:func:`napari_dip_deblur.regions.auto_region`) instead of the
        whole image, where the image is larger; the final deconvolution then restores the
        whole image with the kernel found. The blur is the same everywhere, so the crop
        carries the kernel, and an iteration costs in proportion to the pixels fitted.
        Needs a ``final_deconvolution``. None: the whole image. Small kernels take
        ``small_kernel_crop`` where it is set.
    blur : {'auto', 'direct', 'fft'}
        Forward-model implementation ('auto' picks the faster for the kernel and device).
    precision : {'float32', 'bfloat16', 'auto'}
        Precision of the image generator (autocast); losses stay in float32. 'auto' is
        bfloat16 on CPUs with native bfloat16 arithmetic, float32 elsewhere. bfloat16 is
        ~1.4x faster on such CPUs but cost up to 2.6 dB in a test here
        (docs/presets.md), so no preset uses it.
    memory_format : {'contiguous', 'channels_last', 'auto'}
        Layout of the image generator's activations. Results are equivalent, not identical
        (another summation order). 'auto' is channels-last on the CPU, where it is 4-20 %
        faster (docs/benchmarks/speed.md), and contiguous elsewhere.
    final_deconvolution : {'none', 'hyper_laplacian', 'wiener'}
        After the last iteration, restore the input by non-blind deconvolution with the
        estimated kernel (:func:`napari_dip_deblur.nonblind.deconvolve`) instead of taking
        the generator's image (which stays available as ``generator_image``).
    final_deconvolution_weight : float
        The prior weight of that deconvolution (for an image scaled to unit range).
    """

    name: str
    description: str
    source: str
    phases: tuple[Phase, ...]
    iterations: int = 5000
    image_lr: float = 0.01
    kernel_lr: float = 1e-4
    large_kernel_lr: float | None = None
    large_kernel_side: int = 21
    small_kernel_crop: int | None = None
    small_kernel_iterations: int | None = None
    lr_milestones: tuple[float, ...] = (0.4, 0.6, 0.8)
    lr_gamma: float = 0.5
    levels: int = 5
    channels: int = 128
    skip_channels: int = 16
    upsample: str = "bilinear"
    non_local_levels: tuple[int, ...] = (2, 3, 4)
    input_channels: int = 8
    input_noise_scale: float = 0.1
    reg_noise_std: float = 0.001
    kernel_input: int = 200
    kernel_hidden: int = 1000
    kernel_start_sigma: float | None = None
    retry_mae_ratio: float | None = None
    retry_kernel_start_sigma: float = 0.25
    starts: int = 1
    start_trial: float = 0.36
    estimation_crop: int | None = None
    blur: str = "auto"
    precision: str = "float32"
    memory_format: str = "auto"
    final_deconvolution: str = "none"
    final_deconvolution_weight: float = 1e-4
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names accepted as overrides (the fields, less the descriptive ones, plus the
        three-interval knobs ``stage2_start``, ``stage3_start``, ``tv_weight``,
        ``kernel_energy_weight``)."""
        fixed = {"name", "description", "source", "extra"}
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in fixed) + STAGED_KEYS

    def kernel_lr_for(self, kernel_shape: tuple[int, int]) -> float:
        """The kernel generator's learning rate for a kernel of this shape."""
        if self.large_kernel_lr is not None and max(kernel_shape) >= self.large_kernel_side:
            return self.large_kernel_lr
        return self.kernel_lr

    def for_kernel(self, kernel_shape: tuple[int, int]) -> Settings:
        """These settings as they run for a kernel of this shape: the size-dependent
        fields (``large_kernel_lr``, ``small_kernel_crop``, ``small_kernel_iterations``)
        folded into ``kernel_lr``, ``estimation_crop`` and ``iterations``, and cleared.

        >>> fast = PRESETS["fast"]
        >>> [(s.estimation_crop, s.iterations, s.kernel_lr)
        ...  for s in (fast.for_kernel((19, 19)), fast.for_kernel((21, 21)))]
        [(144, 600, 0.0003), (176, 440, 0.001)]
        """
        small = max(kernel_shape) < self.large_kernel_side
        crop, iterations = self.estimation_crop, self.iterations
        if small and self.small_kernel_crop is not None:
            crop = self.small_kernel_crop
        if small and self.small_kernel_iterations is not None:
            iterations = self.small_kernel_iterations
        return dataclasses.replace(
            self, kernel_lr=self.kernel_lr_for(kernel_shape), large_kernel_lr=None,
            estimation_crop=crop, iterations=iterations, small_kernel_crop=None,
            small_kernel_iterations=None)

    def start_trial_iterations(self) -> int:
        """Iterations each start runs before the starts are compared (at least 1, at most
        ``iterations``)."""
        return min(self.iterations, max(1, round(self.start_trial * self.iterations)))

    def run_iterations(self) -> int:
        """Iterations of a whole run: every start's trial counts (without the fit check's
        second attempt, which only runs where the fit fails)."""
        if self.starts == 1:
            return self.iterations
        return self.iterations + (self.starts - 1) * self.start_trial_iterations()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of every field."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["phases"] = [p.to_dict() for p in self.phases]
        out["lr_milestones"] = list(self.lr_milestones)
        out["non_local_levels"] = list(self.non_local_levels)
        out["extra"] = dict(self.extra)
        return out


def staged_phases(stage2_start: float = 0.2, stage3_start: float = 0.5,
                  tv_weight: float = 0.01, kernel_energy_weight: float = 0.01
                  ) -> tuple[Phase, ...]:
    """The follow-up paper's three intervals (Lee & Choi).

    1. ``[0, stage2_start)``: MAE (initial fit);
    2. ``[stage2_start, stage3_start)``: MAE + ``tv_weight`` TV(x) + ``kernel_energy_weight``
       ||k||^2 (priors for stable convergence and a spread, PSF-like kernel);
    3. ``[stage3_start, 1)``: MAE + (1 - SSIM), no priors.
    """
    return (
        Phase(0.0, {"mae": 1.0}),
        Phase(stage2_start, {"mae": 1.0, "tv": tv_weight, "kernel_energy": kernel_energy_weight}),
        Phase(stage3_start, {"mae": 1.0, "ssim": 1.0}),
    )


FAST_KERNEL_ENERGY = 0.01
"""Weight of ``fast``'s kernel energy prior (sum of the kernel's squared values) from its
second phase on: it pulls the kernel away from a few bright pixels towards the blur's
whole path. 0.03 gained more on the Levin set, whose kernels are spread out, but ruined a
compact one (docs/decisions.md)."""

FAST_FINAL_WEIGHT = 1.25e-4
"""Weight of ``fast``'s final hyper-Laplacian deconvolution. Chosen from 1e-4 (the weight
tuned with the true kernels, ``nonblind.DEFAULT_WEIGHTS``), 1.25e-4, 1.5e-4 and 2e-4 on
the kernels of two seeds' Levin runs and checked on a third: +0.02 and +0.04 dB, better
on 38 of 64 and 24 of 32 (docs/decisions.md)."""

_REN = "Ren et al., CVPR 2020, and the released selfdeblur_levin.py"
_LEE = "Lee & Choi, 'maximise DIP blind deblurring' (three-interval losses)"

_STAGED_DEFAULTS = {"stage2_start": 0.2, "stage3_start": 0.5, "tv_weight": 0.01,
                    "kernel_energy_weight": 0.01}

PRESETS: dict[str, Settings] = {
    "selfdeblur": Settings(
        name="selfdeblur",
        description="SelfDeblur as released: MSE for 20 % of the run, then 1 - SSIM.",
        source=_REN,
        phases=(Phase(0.0, {"mse": 1.0}), Phase(0.2, {"ssim": 1.0})),
    ),
    "staged": Settings(
        name="staged",
        description="The paper's three intervals: MAE; MAE + TV + kernel energy; MAE + 1-SSIM.",
        source=_LEE + "; interval ends and weights chosen here (docs/presets.md)",
        phases=staged_phases(**_STAGED_DEFAULTS),
        extra=dict(_STAGED_DEFAULTS),
    ),
    "mse": Settings(
        name="mse", description="Loss study: MSE throughout.", source=_LEE + ", Table 1",
        phases=(Phase(0.0, {"mse": 1.0}),),
    ),
    "mae": Settings(
        name="mae", description="Loss study: MAE throughout.", source=_LEE + ", Table 1",
        phases=(Phase(0.0, {"mae": 1.0}),),
    ),
    "ssim": Settings(
        name="ssim", description="Loss study: MAE for 20 %, then 1 - SSIM.",
        source=_LEE + ", Table 1", phases=(Phase(0.0, {"mae": 1.0}), Phase(0.2, {"ssim": 1.0})),
    ),
    "mae+ssim": Settings(
        name="mae+ssim", description="Loss study: MAE for 20 %, then MAE + (1 - SSIM).",
        source=_LEE + ", Table 1",
        phases=(Phase(0.0, {"mae": 1.0}), Phase(0.2, {"mae": 1.0, "ssim": 1.0})),
    ),
    "fast": Settings(
        name="fast",
        description="A CPU-friendly run (about 2 minutes at 255 x 255 on 2 cores): "
                    "48-channel generator without non-local blocks fitted to the image's "
                    "best-textured crop, twice from two seeds (the sharper kept): 144 px "
                    "for 600 iterations each for kernels under 21 px, 176 px for 440 "
                    "iterations and a faster kernel learning rate from 21 px; MAE then "
                    "MAE + (1 - SSIM) + a kernel energy prior, a second attempt from a "
                    "centred kernel where the fit fails, then a non-blind deconvolution of "
                    "the whole image with the kernel found.",
        source="this project (docs/presets.md, docs/benchmarks/speed.md)",
        # The staged method's kernel energy prior (docs/decisions.md).
        phases=(Phase(0.0, {"mae": 1.0}),
                Phase(0.2, {"mae": 1.0, "ssim": 1.0, "kernel_energy": FAST_KERNEL_ENERGY})),
        iterations=440,
        channels=48,
        non_local_levels=(),
        kernel_lr=3e-4,
        large_kernel_lr=1e-3,
        retry_mae_ratio=3.0,
        starts=2,
        start_trial=1.0,
        estimation_crop=176,
        # Kernels under 21 px: a smaller crop fitted for longer, at the same cost per start.
        small_kernel_crop=144,
        small_kernel_iterations=600,
        final_deconvolution="hyper_laplacian",
        # Above the 1e-4 tuned with the true kernels: an estimate's errors call for a little
        # more prior (+0.03 dB on 96 Levin runs; docs/decisions.md).
        final_deconvolution_weight=FAST_FINAL_WEIGHT,
    ),
}

# A field and the field that replaces it for some kernel sizes (`Settings.for_kernel`).
_BY_KERNEL_SIZE = {"kernel_lr": "large_kernel_lr", "estimation_crop": "small_kernel_crop",
                   "iterations": "small_kernel_iterations"}

DEFAULT_PRESET = "auto"
"""The API's default: :func:`recommended_preset` for the device the run uses."""


def recommended_preset(device_type: str) -> str:
    """The preset that serves a user best on a device type ('cuda', 'mps' or 'cpu').

    On CUDA the faithful ``selfdeblur`` schedule takes minutes and gives the best measured
    quality (docs/benchmarks/levin.md); elsewhere it would take over an hour per image, so
    the lighter ``fast`` preset is the default (docs/benchmarks/speed.md).
    """
    return "selfdeblur" if device_type == "cuda" else "fast"


def preset_for_device(preset: str | Settings, device_type: str) -> str | Settings:
    """``preset`` with "auto" replaced by :func:`recommended_preset` for the device type."""
    if isinstance(preset, str) and preset == "auto":
        return recommended_preset(device_type)
    return preset


def preset_settings(preset: str | Settings, *, accepted: str = "") -> Settings:
    """The Settings a preset name (or a Settings) stands for.

    Raises
    ------
    ValueError
        An unknown name; the message lists ``accepted`` (extra choices the caller takes,
        e.g. "'auto', ") and the preset names.
    """
    if isinstance(preset, Settings):
        return preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    raise ValueError(f"preset must be {accepted}one of {sorted(PRESETS)} or a Settings, "
                     f"got {preset!r}")


def resolve_settings(preset: str | Settings, iterations: int | None = None,
                     **overrides: Any) -> Settings:
    """The preset with ``iterations`` and ``overrides`` applied, every value checked.

    Raises
    ------
    ValueError
        Unknown preset or override key, or a value out of range.
    """
    settings = preset_settings(preset, accepted="'auto', ")

    unknown = set(overrides) - set(Settings.field_names())
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}; "
                         f"accepted: {', '.join(Settings.field_names())}")
    if overrides.get("final_deconvolution") == "none" and "estimation_crop" not in overrides:
        overrides["estimation_crop"] = None  # without that step only the whole image can be fitted
    staged = {k: overrides.pop(k) for k in STAGED_KEYS if k in overrides}
    if staged:
        if not set(STAGED_KEYS) <= set(settings.extra):
            raise ValueError(f"{sorted(staged)} only apply to the three-interval 'staged' "
                             f"preset, not {settings.name!r}")
        if "phases" in overrides:
            raise ValueError("give either phases or the three-interval knobs "
                             f"{list(STAGED_KEYS)}, not both")
        knobs = {**_STAGED_DEFAULTS, **dict(settings.extra), **staged}
        overrides["phases"] = staged_phases(**knobs)
        overrides["extra"] = {**dict(settings.extra), **knobs}
    if iterations is not None:
        overrides["iterations"] = iterations
    for given, by_size in _BY_KERNEL_SIZE.items():
        if given in overrides and by_size not in overrides:
            overrides[by_size] = None  # the value the caller gave is what runs, at any size
    shorter = isinstance(overrides.get("iterations"), int) \
        and overrides["iterations"] < settings.iterations
    if shorter and "retry_mae_ratio" not in overrides:
        overrides["retry_mae_ratio"] = None  # its threshold holds for the preset's length
    for key in ("phases", "lr_milestones", "non_local_levels"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    if "phases" in overrides:
        overrides["phases"] = tuple(
            p if isinstance(p, Phase) else Phase.from_dict(p)
            for p in overrides["phases"])
    settings = dataclasses.replace(settings, **overrides)
    _check(settings)
    return settings


def _is_number(value: Any) -> bool:
    """An int or float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(s: Settings) -> None:
    if isinstance(s.iterations, bool) or not isinstance(s.iterations, int) or s.iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {s.iterations!r}")
    validate_phases(s.phases)
    for name in ("image_lr", "kernel_lr", "lr_gamma", "input_noise_scale"):
        if not getattr(s, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(s, name)!r}")
    if s.large_kernel_lr is not None and not (_is_number(s.large_kernel_lr)
                                              and s.large_kernel_lr > 0):
        raise ValueError(f"large_kernel_lr must be None or > 0, got {s.large_kernel_lr!r}")
    if isinstance(s.large_kernel_side, bool) or not isinstance(s.large_kernel_side, int) \
            or s.large_kernel_side < 1:
        raise ValueError(f"large_kernel_side must be an integer >= 1, "
                         f"got {s.large_kernel_side!r}")
    if s.kernel_start_sigma is not None and not (_is_number(s.kernel_start_sigma)
                                                 and 0 < s.kernel_start_sigma < 10):
        raise ValueError(f"kernel_start_sigma must be None or a fraction of the kernel size in "
                         f"(0, 10), got {s.kernel_start_sigma!r}")
    if s.retry_mae_ratio is not None:
        if not (_is_number(s.retry_mae_ratio) and s.retry_mae_ratio > 0):
            raise ValueError(f"retry_mae_ratio must be None or > 0, got {s.retry_mae_ratio!r}")
        if "mae" not in s.phases[-1].terms:
            raise ValueError("retry_mae_ratio needs an 'mae' term in the last phase (the "
                             f"misfit it checks), which has {sorted(s.phases[-1].terms)}; "
                             "pass retry_mae_ratio=None")
    if not (_is_number(s.retry_kernel_start_sigma) and 0 < s.retry_kernel_start_sigma < 10):
        raise ValueError(f"retry_kernel_start_sigma must be a fraction of the kernel size in "
                         f"(0, 10), got {s.retry_kernel_start_sigma!r}")
    if isinstance(s.starts, bool) or not isinstance(s.starts, int) or s.starts < 1:
        raise ValueError(f"starts must be an integer >= 1, got {s.starts!r}")
    if not (_is_number(s.start_trial) and 0 < s.start_trial <= 1):
        raise ValueError(f"start_trial must be a fraction of the run in (0, 1], "
                         f"got {s.start_trial!r}")
    if s.estimation_crop is not None:
        if isinstance(s.estimation_crop, bool) or not isinstance(s.estimation_crop, int) \
                or s.estimation_crop <= 2 ** s.levels:
            raise ValueError(f"estimation_crop must be None or an integer > {2 ** s.levels} "
                             f"(2**levels), got {s.estimation_crop!r}")
        if s.final_deconvolution == "none":
            raise ValueError("estimation_crop needs a final_deconvolution (the step that "
                             "restores the whole image with the kernel found on the crop)")
    if s.small_kernel_crop is not None:
        if isinstance(s.small_kernel_crop, bool) or not isinstance(s.small_kernel_crop, int) \
                or s.small_kernel_crop <= 2 ** s.levels:
            raise ValueError(f"small_kernel_crop must be None or an integer > {2 ** s.levels} "
                             f"(2**levels), got {s.small_kernel_crop!r}")
        if s.estimation_crop is None:
            raise ValueError("small_kernel_crop needs an estimation_crop (the crop of larger "
                             "kernels); pass small_kernel_crop=None to fit the whole image")
    if s.small_kernel_iterations is not None and (
            isinstance(s.small_kernel_iterations, bool)
            or not isinstance(s.small_kernel_iterations, int) or s.small_kernel_iterations < 1):
        raise ValueError(f"small_kernel_iterations must be None or an integer >= 1, "
                         f"got {s.small_kernel_iterations!r}")
    if s.reg_noise_std < 0:
        raise ValueError(f"reg_noise_std must be >= 0, got {s.reg_noise_std!r}")
    if not all(0 < m < 1 for m in s.lr_milestones):
        raise ValueError(f"lr_milestones are run fractions in (0, 1), got {s.lr_milestones}")
    for name in ("levels", "channels", "input_channels", "kernel_input", "kernel_hidden"):
        if not isinstance(getattr(s, name), int) or getattr(s, name) < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {getattr(s, name)!r}")
    if s.skip_channels < 0:
        raise ValueError(f"skip_channels must be >= 0, got {s.skip_channels!r}")
    if not all(0 <= level < s.levels for level in s.non_local_levels):
        raise ValueError(f"non_local_levels must lie in [0, {s.levels}), "
                         f"got {s.non_local_levels}")
    if s.upsample not in ("bilinear", "nearest"):
        raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {s.upsample!r}")
    if s.blur not in BLUR_METHODS:
        raise ValueError(f"blur must be one of {BLUR_METHODS}, got {s.blur!r}")
    if s.final_deconvolution not in ("none", "hyper_laplacian", "wiener"):
        raise ValueError("final_deconvolution must be 'none', 'hyper_laplacian' or 'wiener', "
                         f"got {s.final_deconvolution!r}")
    if not s.final_deconvolution_weight > 0:
        raise ValueError(f"final_deconvolution_weight must be > 0, "
                         f"got {s.final_deconvolution_weight!r}")
    check_memory_format(s.memory_format)
    if s.precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', "
                         f"got {s.precision!r}")
