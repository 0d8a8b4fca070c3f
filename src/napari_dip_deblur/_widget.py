"""The dock widget: blind deblurring of an image layer: a plane, a colour image, a stack.

The widget does no numerics. It takes arrays out of the chosen layer
(:mod:`napari_dip_deblur._layer_data`), runs the library in a napari thread worker, and
copies what the worker yields into two output layers:

- a 2-D grey plane estimated as a whole runs :func:`napari_dip_deblur.deblur_iter` (the
  restored layer shows the deep-image-prior iterate);
- RGB(A) layers, all the planes of a stack, and runs estimating the kernel on a region run
  :func:`napari_dip_deblur.restore.restore_iter`: one kernel estimated on the luminance /
  the displayed plane / a region, then every channel of every plane restored with it (or a
  kernel each, per plane). The plane being worked on is updated live;
- with a "known kernel" layer chosen (a measured PSF, the kernel layer of an earlier run)
  every run goes through ``restore_iter(..., kernel=...)``: no blind estimate, each plane
  is restored non-blind with that kernel, and the controls that only steer a blind
  estimate are disabled.

"Suggest size" runs :func:`napari_dip_deblur.kernel_size.suggest_kernel_size_iter` in a
worker; Cancel stops it and leaves the kernel size as it was.
torch is imported only when a run starts (inside the worker) or when the widget is built
(to list the devices), never when this module is imported.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal

from ._layer_data import (
    Plane,
    PlaneLocation,
    kernel_from_layer,
    locate_plane,
    plane_from_layer,
    planes_back,
    planes_last,
    region_from_shapes,
)
from ._run_notes import COLLAPSES, run_notes

if TYPE_CHECKING:
    from collections.abc import Iterator

    import napari

    from .api import Snapshot
    from .kernel_size import KernelSizeSuggestion
    from .restore import RestoreProgress, RestoreResult

__all__ = [
    "KNOWN_KERNEL_NONE",
    "PARTIAL_SUFFIX",
    "REGION_AUTO",
    "REGION_SHAPES",
    "REGION_WHOLE",
    "SCOPE_PER_PLANE",
    "SCOPE_PLANE",
    "SCOPE_SHARED",
    "DeblurWidget",
]

#: Appended to the output layers' names when a run was cancelled or failed part-way.
PARTIAL_SUFFIX = " (partial)"

KERNEL_HINT = ("Kernel size: a bit larger than the longest blur streak, in pixels (odd); "
               "'Suggest size' measures it from a short run.")

#: The "known kernel" picker's entry for no kernel: estimate one blindly.
KNOWN_KERNEL_NONE = "none (estimate it)"

#: The "planes" choices for layers with more axes than the two displayed.
SCOPE_PLANE = "this plane"
SCOPE_SHARED = "all planes, one kernel"
SCOPE_PER_PLANE = "all planes, a kernel each"
SCOPES = (SCOPE_PLANE, SCOPE_SHARED, SCOPE_PER_PLANE)

#: The "estimate on" choices: where in the plane the kernel is estimated.
REGION_WHOLE = "whole plane"
REGION_AUTO = "auto (best-textured crop)"
REGION_SHAPES = "rectangle in a Shapes layer"
REGIONS = (REGION_WHOLE, REGION_AUTO, REGION_SHAPES)

#: Iterations of the "Suggest size" run (a few hundred are enough to see the support).
SUGGEST_ITERATIONS = 300

# Advanced overrides: name -> (label, min, max, step, staged preset only).
_ADVANCED: dict[str, tuple[str, float, float, float, bool]] = {
    "stage2_start": ("stage 2 starts at (run fraction)", 0.0, 1.0, 0.01, True),
    "stage3_start": ("stage 3 starts at (run fraction)", 0.0, 1.0, 0.01, True),
    "tv_weight": ("TV weight (stage 2)", 0.0, 100.0, 0.001, True),
    "kernel_energy_weight": ("kernel energy weight (stage 2)", 0.0, 100.0, 0.001, True),
    "image_lr": ("image learning rate", 1e-6, 1.0, 1e-5, False),
    "kernel_lr": ("kernel learning rate", 1e-6, 1.0, 1e-5, False),
}
_STAGED = "staged"
#: ``deblur_iter``'s arguments that ``extra_overrides`` may carry besides settings.
_RUN_ARGUMENTS = frozenset({"initial_kernel", "seed", "device", "yield_every", "preset",
                            "iterations"})


class DeblurRunError(Exception):
    """A failure inside the deblurring worker, re-raised under a non-``RuntimeError`` type.

    superqt's generator worker takes any ``RuntimeError`` for a deleted Qt object: it
    swallows it and never emits ``errored`` nor ``finished``. torch's errors (out of
    memory, ...) and `DeblurDivergedError` are ``RuntimeError`` subclasses, so the worker
    wraps them in this class; the original is ``__cause__``.
    """


class _DeblurWorker(GeneratorWorker):
    """napari's generator worker, minus its error relay: the widget reports errors itself
    (one clear notification, instead of two)."""

    def _relay_error(self, exc: Exception) -> None:  # napari's hook, see _NotifyingMixin
        return


def _deblur_snapshots(
    image: np.ndarray,
    kernel_size: tuple[int, int],
    noise_aware: float | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> Iterator[Snapshot]:
    """The worker's generator: every snapshot of ``deblur_iter``, one per iteration.

    Yielding every iteration lets a stop act within one iteration; the widget copies into
    layers only every N of them. ``stop`` (Cancel) ends the run after the snapshot being
    handed over; a run whose preset ends with a non-blind deconvolution is then finished
    with the kernel it has (:func:`napari_dip_deblur.finish_early`), one more snapshot.
    ``noise_aware``: the TV weight kept in the schedule's last interval
    (:func:`napari_dip_deblur.noise.noise_aware_phases`).
    """
    from napari_dip_deblur import deblur_iter, finish_early

    try:
        if noise_aware is not None:
            from napari_dip_deblur.noise import noise_aware_overrides
            from napari_dip_deblur.presets import resolve_settings

            iterations = kwargs.pop("iterations", None)
            preset = resolve_settings(kwargs.pop("preset"), iterations,
                                      **{k: kwargs.pop(k) for k in list(kwargs)
                                         if k not in ("seed", "device")})
            kwargs["preset"] = resolve_settings(
                preset, **noise_aware_overrides(preset, noise_aware))
        snapshots = deblur_iter(image, kernel_size, yield_every=1, **kwargs)
        last = None
        try:
            for last in snapshots:
                yield last
                if stop is not None and stop.is_set():
                    break
        finally:
            close = getattr(snapshots, "close", None)
            if close is not None:
                close()
        if (last is not None and not last.done
                and last.settings.get("final_deconvolution", "none") != "none"):
            yield finish_early(image, last)
    except RuntimeError as exc:
        raise DeblurRunError(f"{type(exc).__name__}: {exc}") from exc


def _restore_progress(
    image: Any,
    kernel_size: tuple[int, int],
    **kwargs: Any,
) -> Iterator[RestoreProgress]:
    """The worker's generator for colour, stacks and regions: ``restore_iter``'s progress
    (each "estimate" progress names the region its blind run fits)."""
    from napari_dip_deblur.restore import restore_iter

    try:
        progresses = restore_iter(image, kernel_size, yield_every=1, **kwargs)
        try:
            yield from progresses
        finally:
            progresses.close()
    except RuntimeError as exc:
        raise DeblurRunError(f"{type(exc).__name__}: {exc}") from exc


def _suggest_size(
    image: np.ndarray, rgb: bool, region: Any, region_size: int, **kwargs: Any
) -> Iterator[None]:
    """The "Suggest size" worker: ``suggest_kernel_size_iter`` on the plane (its luminance
    for colour). Yields the short run's snapshots, so that Cancel can stop it between two,
    and returns the suggestion."""
    from napari_dip_deblur.colour import luminance
    from napari_dip_deblur.kernel_size import suggest_kernel_size_iter

    try:
        grey = luminance(image, channel_axis=-1) if rgb else image
        return (yield from suggest_kernel_size_iter(grey, None, region=region,
                                                    region_size=region_size, **kwargs))
    except RuntimeError as exc:
        raise DeblurRunError(f"{type(exc).__name__}: {exc}") from exc


def _advanced_defaults(settings: Any, staged: Any) -> dict[str, float]:
    """Values shown in the Advanced section for a preset (``staged``: the staged preset,
    whose three-interval knobs are shown, disabled, for the other presets)."""
    extra = dict(getattr(settings, "extra", None) or {})
    staged_extra = dict(getattr(staged, "extra", None) or {})
    out: dict[str, float] = {}
    for name in _ADVANCED:
        for source in (extra, staged_extra):
            if name in source:
                out[name] = float(source[name])
                break
        else:
            value = getattr(settings, name, None)
            if value is not None:
                out[name] = float(value)
    return out


def _attempt_note(snap: Any) -> str:
    """What the status line says about the starts (``Settings.starts``) and the fit
    check's second attempt, while they run and after."""
    settings = snap.settings
    notes = run_notes(settings)
    if "start" in settings:  # a start's trial is running
        notes.insert(0, f"start {settings['start']} of {len(settings['start_seeds'])}: the "
                        f"sharpest after {settings['start_trial_iterations']} iterations goes on")
    if settings.get("attempt") == 2 and "kept_attempt" not in settings:
        collapse = (settings.get("kernel_collapse") or [None])[0]
        why = ("the first fit failed the fit check" if collapse is None
               else f"the first attempt's kernel {COLLAPSES[collapse]}")
        notes.append(f"second attempt, from a centred kernel: {why}")
    return f" ({'; '.join(notes)})" if notes else ""


@dataclass
class _Run:
    """State of one run, kept on the main thread."""

    source: str
    location: PlaneLocation
    kernel_size: tuple[int, int]
    preset: str
    seed: int
    device: str
    overrides: dict[str, Any]
    update_every: int
    contrast_limits: tuple[float, float]
    contrast_limits_range: tuple[float, float]
    colormap: Any
    noise_aware: float | None = None
    last: Snapshot | None = None
    shown_step: int = 0
    error: BaseException | None = None
    cancelled: bool = False
    stop: threading.Event | None = None  # set by Cancel: the run's generator ends itself
    outputs: dict[str, Any] = field(default_factory=dict)
    restore: _RestoreState | None = None  # set for runs through restore_iter
    pending: deque[tuple[Any, tuple[Any, ...]]] = field(default_factory=deque)
    dispatching: bool = False
    input_layer: Any = None  # watched: removed -> the run stops; data replaced -> a warning
    input_changed: bool = False
    on_input_data: Any = None  # the callback connected to the input layer's data event


@dataclass
class _RestoreState:
    """What a run through ``restore_iter`` shows, kept on the main thread.

    ``display`` is the restored layer's data (the layer's axis order, float32): it starts
    as the input and receives each plane as it is finished (and, while a plane's kernel is
    estimated, the live iterate over that plane's region). The worker's own arrays are
    only read, for planes it has finished.
    """

    scope: str
    mode: str  # "single" (one plane), "shared" or "per_plane"
    rgb: bool
    axes: tuple[int, int]
    source: Any  # the input in restore_iter's layout (*stack, M, N[, C]); never written
    display: np.ndarray
    display_view: np.ndarray  # display in restore_iter's layout
    stack_shape: tuple[int, ...]
    reference: tuple[int, ...] | None
    region_choice: str
    region: Any  # Region, None (whole plane) or "auto"
    region_layer: str | None
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    kernel_style: dict[str, Any]
    kernels: np.ndarray | None = None  # per_plane: (*stack, kh, kw), restore_iter's layout
    kernel: np.ndarray | None = None  # otherwise the kernel shown
    kernel_layer: str | None = None  # a known kernel's layer: no blind run, no kernel output
    copied: set[int] = field(default_factory=set)
    progress: RestoreProgress | None = None
    result: RestoreResult | None = None

    @property
    def n_planes(self) -> int:
        return math.prod(self.stack_shape)

    def index(self, flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, self.stack_shape)) \
            if self.stack_shape else ()

    def kernel_data(self) -> np.ndarray:
        """The kernel layer's data: 2-D, or per-plane kernels in the layer's axis order."""
        if self.kernels is not None:
            return planes_back(self.kernels, self.axes)
        return self.kernel


def _kernel_placement(
    loc: PlaneLocation, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...]
) -> dict[str, tuple[float, float]]:
    """Scale and translate that show the kernel beside the image's top-right corner,
    magnified to about a third of the image's height (at its own size it is a speck)."""
    zoom = max(1.0, image_shape[0] / (3 * kernel_shape[0]))
    gap = 0.05 * image_shape[1]
    return {
        "scale": (loc.scale[0] * zoom, loc.scale[1] * zoom),
        "translate": (loc.translate[0], loc.translate[1] + (image_shape[1] + gap) * loc.scale[1]),
    }


class DeblurWidget(Container):
    """Blind deblurring (deep image prior) of an image layer: a plane, colour, a stack.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image layers are offered as input and receive the outputs.

    Attributes
    ----------
    extra_overrides : dict
        Further keyword overrides for ``deblur_iter`` (any ``Settings.field_names()``),
        for scripts and tests, e.g. ``{"channels": 8, "levels": 2}``. Applied last.

    Notes
    -----
    A run adds (or, on later runs, updates in place) two layers named after the input,
    ``"<name> deblurred"`` and ``"<name> kernel"``:

    - one plane ("this plane", or a 2-D layer): 2-D layers (RGB for an RGB layer) with the
      input's scale and translate on the displayed axes;
    - all planes: a restored stack of the input's shape, scale and translate; the kernel
      is 2-D ("one kernel", estimated on the displayed plane) or a stack of one kernel per
      plane ("a kernel each") on the same axes.

    A cancelled or failed run keeps what it had under ``"<name> deblurred (partial)"`` with
    ``metadata["partial"] = True``: the last iterate of a grey plane estimated as a whole;
    otherwise the planes finished so far (``metadata["planes_restored"]``), the others
    showing the input. The input layer is never modified.

    With a layer chosen under "known kernel" (a measured PSF, or ``"<name> kernel"`` from an
    earlier run) nothing is estimated: every plane in scope is restored non-blind with that
    layer's 2-D data (:func:`napari_dip_deblur.restore.restore_iter` with ``kernel=``), and
    only ``"<name> deblurred"`` is written (``metadata["kernel_source"] == "given"``,
    ``metadata["kernel_layer"]``); the kernel layer is left as it is. Kernel size, Suggest
    size, "estimate on", preset, iterations, device, seed, update every, Advanced and the
    "a kernel each" choice steer a blind estimate only: they are disabled meanwhile.
    """

    status_changed = Signal(str)
    """Emitted (in the main thread) with every status line the widget shows."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        from napari_dip_deblur import PRESETS, available_devices
        from napari_dip_deblur.api import resolve_device
        from napari_dip_deblur.noise import DEFAULT_TV_WEIGHT
        from napari_dip_deblur.presets import recommended_preset

        self._viewer = viewer
        self._presets = PRESETS
        self.extra_overrides: dict[str, Any] = {}
        self._worker: GeneratorWorker | None = None
        self._run: _Run | None = None
        self._suggest_worker: GeneratorWorker | None = None
        self._suggest_state: dict[str, Any] = {}
        self.last_suggestion: KernelSizeSuggestion | None = None
        self._closed = False

        self._image = ComboBox(label="image", choices=self._image_layer_choices)
        self._plane = Label(label="plane", value="")
        self._scope = ComboBox(label="planes", choices=self._scope_choices, value=SCOPE_PLANE)
        self._known_kernel = ComboBox(label="known kernel", choices=self._image_layer_choices,
                                      nullable=True)
        self._known_kernel.null_string = KNOWN_KERNEL_NONE
        self._known_kernel.reset_choices()
        self._kernel_h = SpinBox(value=15, min=3, max=999, step=2, label="kernel height")
        self._kernel_w = SpinBox(value=15, min=3, max=999, step=2, label="kernel width")
        self._suggest_button = PushButton(text="Suggest size")
        self._kernel_hint = Label(value=KERNEL_HINT)
        self._region = ComboBox(label="estimate on", choices=list(REGIONS), value=REGION_WHOLE)
        self._shapes = ComboBox(label="rectangle in", choices=self._shapes_layer_choices)
        self._noise_aware = CheckBox(text="noise-aware (keep TV to the end)", value=False)
        # The preset that serves best on the device "auto" would pick (fast on a CPU).
        default = recommended_preset(resolve_device("auto").type)
        self._preset = ComboBox(label="preset", choices=list(PRESETS), value=default)
        self._iterations = SpinBox(label="iterations", value=0, min=0, max=1_000_000, step=100)
        self._device = ComboBox(label="device", choices=["auto", *available_devices()])
        self._seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self._update_every = SpinBox(label="update every", value=10, min=1, max=100_000)
        self._show_advanced = CheckBox(text="Advanced", value=False)
        self._advanced = {
            name: FloatSpinBox(label=label, min=lo, max=hi, step=step)
            for name, (label, lo, hi, step, _) in _ADVANCED.items()
        }
        self._starts = SpinBox(label="starts (the sharpest goes on)", value=1, min=1, max=8)
        self._starts.tooltip = (
            "Run this many starts (each from its own seed) and keep the one with the sharpest "
            "image: insurance against a collapse to a smeared kernel. 'fast' runs 2, each to "
            "the end; each extra start adds the preset's start_trial of a run "
            "(docs/presets.md, 'Two starts').")
        self._noise_weight = FloatSpinBox(label="noise-aware TV weight", value=DEFAULT_TV_WEIGHT,
                                          min=1e-4, max=10.0, step=0.001)
        self._region_size = SpinBox(label="auto region size", value=256, min=16, max=100_000)
        self._suggest_iterations = SpinBox(label="suggest: iterations",
                                           value=SUGGEST_ITERATIONS, min=1, max=100_000)
        self._advanced_box = Container(
            widgets=[*self._advanced.values(), self._starts, self._noise_weight,
                     self._region_size, self._suggest_iterations],
            labels=True,
        )
        self._advanced_box.visible = False
        self._run_button = PushButton(text="Run")
        self._status = Label(label="status", value="idle")
        self._defaults: dict[str, float] = {}

        for label in (self._kernel_hint, self._plane, self._status):
            label.native.setWordWrap(True)
        self._iterations.tooltip = "0 = the preset's default"
        self._known_kernel.tooltip = (
            "An image layer holding the blur kernel, if you know it: a measured PSF, or the "
            "kernel layer of an earlier run (2-D, odd sides, non-negative; it is divided by "
            "its sum). No blind estimate: each plane is restored with it by non-blind "
            "deconvolution. 'none': estimate the kernel blindly.")
        self._update_every.tooltip = "Copy the result into the layers every N iterations."
        self._scope.tooltip = (
            "this plane: the displayed plane only. all planes, one kernel: estimated on the "
            "displayed plane, applied to every plane. all planes, a kernel each: a blind "
            "estimate per plane. With a known kernel: this plane, or all planes with it.")
        self._region.tooltip = (
            "Where in the plane the kernel is estimated (the whole plane is restored): "
            "everything, the best-textured crop of 'auto region size' (Advanced), or the "
            "first rectangle of a Shapes layer.")
        self._noise_aware.tooltip = ("For noisy data: keep a total-variation prior in the last "
                                     "interval of the schedule (weight in Advanced).")
        self._suggest_button.tooltip = (
            "Run a short blind estimate with a generous kernel on the displayed plane (its "
            "region) and set the kernel size to the blur's measured support (Cancel stops "
            "it).")
        self._seed.tooltip = "Same seed, same result (on the CPU)."
        for name, (_, _, _, _, staged_only) in _ADVANCED.items():
            if staged_only:
                self._advanced[name].tooltip = "Used by the 'staged' preset only."

        self.extend(
            [
                self._image,
                self._plane,
                self._scope,
                self._known_kernel,
                self._kernel_h,
                self._kernel_w,
                self._suggest_button,
                self._kernel_hint,
                self._region,
                self._shapes,
                self._noise_aware,
                self._preset,
                self._iterations,
                self._device,
                self._seed,
                self._update_every,
                self._show_advanced,
                self._advanced_box,
                self._run_button,
                self._status,
            ]
        )

        self._kernel_h.changed.connect(self._make_odd)
        self._kernel_w.changed.connect(self._make_odd)
        self._preset.changed.connect(self._on_preset)
        self._show_advanced.changed.connect(self._on_show_advanced)
        self._run_button.changed.connect(self._on_button)
        self._suggest_button.changed.connect(self._on_suggest_button)
        self._region.changed.connect(self._on_region)
        self._image.changed.connect(self._update_plane_label)
        self._image.changed.connect(self._hint_counts)
        self._known_kernel.changed.connect(self._on_known_kernel)
        layers = viewer.layers.events
        for emitter in (layers.inserted, layers.removed, layers.moved):
            emitter.connect(self._reset_layer_choices)
        dims = viewer.dims.events
        for emitter in (dims.current_step, dims.ndisplay, dims.order):
            emitter.connect(self._update_plane_label)

        # What only steers a blind estimate: disabled while a known kernel is chosen.
        self._blind_only = (self._kernel_h, self._kernel_w, self._suggest_button,
                            self._region, self._shapes, self._preset, self._iterations,
                            self._device, self._seed, self._update_every, self._advanced_box)

        self._on_preset(self._preset.value)
        self._on_region(self._region.value)
        self._reset_layer_choices()
        active = viewer.layers.selection.active
        if active is not None and active in self._image.choices:
            self._image.value = active  # e.g. the blurry image of a sample just opened
        self.native.destroyed.connect(self._on_destroyed)
        layers.removed.connect(self._on_layer_removed)

    # ------------------------------------------------------------------ public API
    @property
    def viewer(self) -> napari.viewer.Viewer:
        """The viewer this widget works on."""
        return self._viewer

    @property
    def worker(self) -> GeneratorWorker | None:
        """The running worker, or None when idle."""
        return self._worker

    @property
    def is_running(self) -> bool:
        """Whether a run is in progress (its worker has not finished)."""
        return self._worker is not None

    @property
    def is_suggesting(self) -> bool:
        """Whether a kernel size suggestion is being computed."""
        return self._suggest_worker is not None

    def run(self, layer: napari.layers.Layer | None = None) -> GeneratorWorker | None:
        """Start deblurring ``layer`` (default: the chosen one) with the widget's settings.

        Returns the started worker, or None if the input was refused (a notification
        says why). Does nothing if a run is already in progress. With a "known kernel"
        layer chosen, the run restores with that kernel (no blind estimate); the library
        checks the kernel and a bad one is reported like any other error.
        """
        if self._worker is not None:
            return self._worker
        if self._suggest_worker is not None:
            return None
        layer = layer if layer is not None else self._image.value
        try:
            if layer is None:
                raise ValueError("No image layer to deblur: open an image first.")
            loc = self._locate(layer)
            scope = self._scope.value if loc.stack_axes else SCOPE_PLANE
            known = self._known_kernel.value
            if known is not None:
                kernel = self._take_kernel(known, layer)
                self._check_memory(layer, loc, scope, None, kernel.shape)
                return self._start_restore(layer, loc, scope, None, None,
                                           kernel=kernel, kernel_layer=known.name)
            region, region_layer = self._region_arg(layer, loc)
            self._check_memory(layer, loc, scope, region, None)
            if scope == SCOPE_PLANE and not loc.rgb and self._region.value == REGION_WHOLE:
                return self._start(layer, self._take_plane(layer))
            return self._start_restore(layer, loc, scope, region, region_layer)
        except (TypeError, ValueError) as exc:
            self._report(exc, getattr(layer, "name", None))
            return None

    def suggest(self, layer: napari.layers.Layer | None = None) -> GeneratorWorker | None:
        """Suggest a kernel size for the displayed plane of ``layer`` (default: the chosen
        one), in a worker; the kernel size boxes are set when it returns.

        The run uses the widget's preset, seed, device, overrides, "estimate on" region and
        the Advanced "suggest: iterations". Returns the worker, or None if refused.
        """
        if self._worker is not None or self._suggest_worker is not None:
            return None
        layer = layer if layer is not None else self._image.value
        try:
            if layer is None:
                raise ValueError("No image layer: open an image first.")
            plane = self._take_plane(layer)
            region, _ = self._region_arg(layer, plane.location)
        except (TypeError, ValueError) as exc:
            self._report(exc, getattr(layer, "name", None), what="Suggesting a kernel size")
            return None
        worker = create_worker(
            _suggest_size,
            plane.data,
            plane.location.rgb,
            region,
            int(self._region_size.value),
            preset=str(self._preset.value),
            iterations=int(self._suggest_iterations.value),
            seed=int(self._seed.value),
            device=str(self._device.value),
            **self.overrides(),
            _progress={"desc": f"Suggesting a kernel size for {layer.name}"},
            _worker_class=_DeblurWorker,
            _ignore_errors=True,
            _start_thread=False,
        )
        source = layer.name
        state: dict[str, Any] = {}
        self._suggest_state = state
        worker.returned.connect(lambda value: state.setdefault("value", value))
        worker.errored.connect(lambda exc: state.setdefault("error", exc))
        worker.finished.connect(lambda: self._on_suggested(source, state))
        self._suggest_worker = worker
        self._set_running(True, suggesting=True)
        self._set_status(f"suggesting a kernel size ({plane.location.label})…")
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running worker to stop; what it has is kept, marked partial.

        A grey run of a preset that ends with a non-blind deconvolution (``fast``) ends as
        it would have: the input deconvolved with the kernel it has
        (:func:`napari_dip_deblur.finish_early`); other grey runs keep their last iterate.
        A colour, stack or region run finishes the plane in hand, with the kernel it has if
        it was still estimating (``restore_iter``'s ``stop``); other planes keep the input.
        A kernel size suggestion stops without one: the kernel size stays as it was."""
        if self._suggest_worker is not None:
            self._suggest_state["cancelled"] = True
            self._suggest_worker.quit()  # stops at the next snapshot, within 10 iterations
            self._run_button.enabled = False
            self._run_button.text = "Cancelling…"
            self._set_status("cancelling the kernel size suggestion…")
            return
        if self._worker is None or self._run is None:
            return
        self._run.cancelled = True
        if self._run.stop is not None:
            self._run.stop.set()  # the generator stops, and finishes what the preset would
        else:
            self._worker.quit()
        self._run_button.enabled = False
        self._run_button.text = "Cancelling…"
        self._set_status("cancelling…")

    def overrides(self) -> dict[str, Any]:
        """The keyword overrides a run would pass to ``deblur_iter`` now.

        The Advanced values that differ from the preset's (the three-interval knobs only
        for the 'staged' preset), then `extra_overrides`.
        """
        out: dict[str, Any] = {}
        staged = self._preset.value == _STAGED
        for name, widget in self._advanced.items():
            if _ADVANCED[name][4] and not staged:
                continue
            default = self._defaults.get(name)
            if default is None or not math.isclose(widget.value, default, rel_tol=1e-9):
                out[name] = float(widget.value)
        if self._starts.value != self._presets[self._preset.value].starts:
            out["starts"] = int(self._starts.value)
        out.update(self.extra_overrides)
        return out

    # ------------------------------------------------------------------ inputs
    def _image_layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(lyr.name, lyr) for lyr in self._viewer.layers if isinstance(lyr, Image)]

    def _shapes_layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Shapes

        return [(lyr.name, lyr) for lyr in self._viewer.layers if isinstance(lyr, Shapes)]

    def _scope_choices(self, _widget: Any = None) -> list[str]:
        """The "planes" choices: no "a kernel each" with a known kernel (nothing to
        estimate per plane)."""
        known = getattr(self, "_known_kernel", None)
        if known is not None and known.value is not None:
            return [SCOPE_PLANE, SCOPE_SHARED]
        return list(SCOPES)

    def _reset_layer_choices(self, event: Any = None) -> None:
        if event is not None and getattr(event, "type", None) == "inserted":
            event.value.events.name.connect(self._reset_layer_choices)
        self._image.reset_choices()
        self._shapes.reset_choices()
        self._keep_known_kernel(self._known_kernel.reset_choices)
        self._update_plane_label()

    def reset_choices(self, *_: Any) -> None:
        """Reset every picker's choices (napari calls this when layers change), keeping
        the chosen known kernel layer if it is still there."""
        if getattr(self, "_blind_only", None) is None:  # still being built
            super().reset_choices()
            return
        self._keep_known_kernel(super().reset_choices)

    def _keep_known_kernel(self, reset: Any) -> None:
        """Run ``reset`` (which resets the known kernel's choices), then choose the same
        kernel layer again if it is still offered: the combo box selects by name, so a
        renamed layer would otherwise fall back to "none"."""
        kernel = self._known_kernel.value
        with self._known_kernel.changed.blocked():
            reset()
            if kernel is not None and any(c is kernel for c in self._known_kernel.choices):
                self._known_kernel.value = kernel
        self._on_known_kernel()

    def _on_known_kernel(self, *_: Any) -> None:
        """A known kernel chosen (or "none"): enable what a run will use, say what it does."""
        layer = self._known_kernel.value
        known = layer is not None
        if self._worker is None and self._suggest_worker is None:
            for widget in self._blind_only:
                widget.enabled = not known
        scope = self._scope.value
        self._scope.reset_choices()
        if scope in self._scope.choices:
            self._scope.value = scope
        elif known:  # "a kernel each": the nearest with one kernel for all planes
            self._scope.value = SCOPE_SHARED
        if known:
            shape = "x".join(str(n) for n in getattr(layer.data, "shape", ()))
            self._kernel_hint.value = (
                f"Known kernel {layer.name!r} ({shape}): no blind estimate, each plane is "
                "restored with it; the greyed-out settings are not used.")
        else:
            self._kernel_hint.value = KERNEL_HINT

    def _locate(self, layer: napari.layers.Layer) -> PlaneLocation:
        dims = self._viewer.dims
        return locate_plane(layer, dims.point, dims.displayed, dims.axis_labels)

    def _take_plane(self, layer: napari.layers.Layer) -> Plane:
        dims = self._viewer.dims
        return plane_from_layer(layer, dims.point, dims.displayed, dims.axis_labels)

    @staticmethod
    def _take_kernel(known: napari.layers.Layer, layer: napari.layers.Layer) -> np.ndarray:
        """The known kernel layer's data (a copy), refused if it is the image itself or the
        layer this run writes its result into."""
        if known is layer:
            raise ValueError(f"The known kernel {known.name!r} is the image being deblurred; "
                             "choose the layer holding the kernel (a measured PSF, or "
                             "'<image> kernel' from an earlier run).")
        if known.name in (f"{layer.name} deblurred", f"{layer.name} deblurred{PARTIAL_SUFFIX}"):
            raise ValueError(f"The known kernel {known.name!r} is the layer this run writes "
                             "its result into; choose the layer holding the kernel.")
        return kernel_from_layer(known)

    def _update_plane_label(self, *_: Any) -> None:
        layer = self._image.value
        stack = False
        if layer is None:
            self._plane.value = "no image layer"
        else:
            try:
                loc = self._locate(layer)
            except (TypeError, ValueError) as exc:
                self._plane.value = f"cannot deblur: {exc}"
            else:
                stack = bool(loc.stack_axes)
                self._plane.value = loc.label + (" (colour)" if loc.rgb else "")
        self._scope.visible = stack  # the planes choice only where there are planes

    def _hint_counts(self, *_: Any) -> None:
        """Point a 2-D image of photon counts to the microscopy widget (docs/microscopy.md)."""
        from napari_dip_deblur.microscopy import looks_like_counts

        layer = self._image.value
        if (layer is not None and not getattr(layer, "multiscale", False)
                and getattr(layer.data, "ndim", 0) == 2
                and looks_like_counts(np.asarray(layer.data))):
            self._set_status("this image looks like photon counts: the Microscopy "
                             "deconvolution widget (Plugins > DIP Deblur) suits it better")

    def _on_region(self, value: str) -> None:
        self._shapes.visible = value == REGION_SHAPES

    def _region_arg(
        self, layer: napari.layers.Layer, loc: PlaneLocation
    ) -> tuple[Any, str | None]:
        """The "estimate on" choice as ``restore_iter``'s ``region`` (None, "auto" or a
        Region in the plane's pixels), and the Shapes layer's name if one is used."""
        choice = self._region.value
        if choice == REGION_WHOLE:
            return None, None
        if choice == REGION_AUTO:
            return "auto", None
        shapes = self._shapes.value
        if shapes is None:
            raise ValueError("'estimate on' is a rectangle in a Shapes layer, but there is no "
                             "Shapes layer: add one and draw a rectangle on the image.")
        region = region_from_shapes(shapes, layer, loc, self._viewer.dims.point)
        return region, shapes.name

    def _make_odd(self, value: int) -> None:
        for box in (self._kernel_h, self._kernel_w):
            if box.value % 2 == 0:
                box.value = box.value + 1

    def _on_preset(self, name: str) -> None:
        settings = self._presets[name]
        self._defaults = _advanced_defaults(settings, self._presets.get(_STAGED))
        for key, widget in self._advanced.items():
            if key in self._defaults:
                widget.value = self._defaults[key]
                self._defaults[key] = widget.value  # as rounded by the spin box
            widget.enabled = name == _STAGED or not _ADVANCED[key][4]
        self._starts.value = settings.starts
        default = str(settings.iterations)
        if settings.small_kernel_iterations is not None:
            default = (f"{settings.small_kernel_iterations} for kernels under "
                       f"{settings.large_kernel_side} px, else {default}")
        self._iterations.tooltip = f"0 = the preset's default ({default})"

    def _on_show_advanced(self, value: bool) -> None:
        self._advanced_box.visible = bool(value)

    def _on_button(self, *_: Any) -> None:
        if self._worker is None and self._suggest_worker is None:
            self.run()
        else:
            self.cancel()

    def _on_suggest_button(self, *_: Any) -> None:
        self.suggest()

    def _on_suggested(self, source: str, state: dict[str, Any]) -> None:
        self._suggest_worker = None
        if self._closed:
            return
        self._set_running(False)
        if state.get("cancelled"):
            self._set_status("kernel size suggestion cancelled; the kernel size is unchanged")
            return
        error = state.get("error")
        suggestion = state.get("value")
        if error is not None or suggestion is None:
            self._report(error or RuntimeError("no result"), source,
                         what="Suggesting a kernel size")
            return
        self.last_suggestion = suggestion
        (h, w), (sh, sw) = suggestion.size, suggestion.support.shape
        self._kernel_h.value, self._kernel_w.value = h, w
        mh, mw = suggestion.max_size
        text = (f"suggested kernel size {h}x{w} (blur support {sh}x{sw} in a {mh}x{mw} "
                f"estimate)")
        if not suggestion.reliable:
            text += "; the blur reached the estimate's edge: it may be larger"
        self._set_status(text)

    # ------------------------------------------------------------------ running
    def _start(self, layer: napari.layers.Layer, plane: Plane) -> GeneratorWorker:
        preset = str(self._preset.value)
        iterations = int(self._iterations.value) or None
        kernel_size = (int(self._kernel_h.value), int(self._kernel_w.value))
        # A first guess for the progress bar; the run's snapshots give its total.
        total = iterations or self._presets[preset].for_kernel(kernel_size).run_iterations()
        self._run = self._new_run(layer, plane.location, kernel_size, preset,
                                  colormap=layer.colormap)
        self._run.stop = threading.Event()
        worker = create_worker(
            _deblur_snapshots,
            plane.data,
            self._run.kernel_size,
            noise_aware=self._run.noise_aware,
            stop=self._run.stop,
            preset=preset,
            iterations=iterations,
            seed=self._run.seed,
            device=self._run.device,
            **self._run.overrides,
            _progress={"total": total, "desc": f"Deblurring {layer.name}"},
            _worker_class=_DeblurWorker,
            _ignore_errors=True,
            _start_thread=False,
        )
        run = self._run
        self._connect(worker, run, self._on_yielded)
        self._watch_input(run, layer)
        self._worker = worker
        self._set_running(True)
        self._set_status(f"starting ({plane.location.label})…")
        worker.start()
        return worker

    def _new_run(self, layer: napari.layers.Layer, location: PlaneLocation,
                 kernel_size: tuple[int, int], preset: str, *, colormap: Any,
                 restore: _RestoreState | None = None) -> _Run:
        """A run's record: the widget's settings now, and the input's display range."""
        lo, hi = (float(v) for v in layer.contrast_limits)
        rlo, rhi = (float(v) for v in layer.contrast_limits_range)
        return _Run(
            source=layer.name,
            location=location,
            kernel_size=kernel_size,
            preset=preset,
            seed=int(self._seed.value),
            device=str(self._device.value),
            overrides=self.overrides(),
            update_every=int(self._update_every.value),
            contrast_limits=(lo, hi),
            contrast_limits_range=(min(lo, rlo), max(hi, rhi)),
            colormap=colormap,
            noise_aware=self._noise_arg(),
            restore=restore,
        )

    def _connect(self, worker: GeneratorWorker, run: _Run, on_yielded: Any) -> None:
        """Connect a run's worker so that its signals are handled one at a time, in order.

        napari re-enters the event loop in places (its progress bars, a new layer's
        controls call ``processEvents``): a later ``yielded`` or even ``finished`` would
        otherwise be handled in the middle of an earlier one. Signals arriving during a
        handler are queued and handled after it (`_dispatch`); the progress bar is moved
        by the handlers, last.
        """
        pbar = getattr(worker, "pbar", None)
        if pbar is not None:
            try:
                worker.yielded.disconnect(pbar.increment_with_overflow)
            except (TypeError, RuntimeError):  # not connected (no total)
                pass
        worker.yielded.connect(lambda item: self._dispatch(run, on_yielded, run, item))
        worker.errored.connect(lambda exc: self._dispatch(run, self._on_errored, run, exc))
        worker.aborted.connect(lambda: setattr(run, "cancelled", True))
        worker.finished.connect(lambda: self._dispatch(run, self._on_finished, run))

    @staticmethod
    def _dispatch(run: _Run, handler: Any, *args: Any) -> None:
        run.pending.append((handler, args))
        if run.dispatching:
            return  # re-entered: the outer call handles it next
        run.dispatching = True
        try:
            while run.pending:
                handler, args = run.pending.popleft()
                handler(*args)
        finally:
            run.dispatching = False

    def _move_progress_bar(self, run: _Run, step: int, total: int) -> None:
        """Set napari's progress bar (it may process pending events: call it last)."""
        pbar = getattr(self._worker, "pbar", None) if self._run is run else None
        if pbar is None:
            return
        if pbar.total != total:
            pbar.total = total
        if step > pbar.n:
            pbar.update(min(step, total) - pbar.n)

    def _noise_arg(self) -> float | None:
        return float(self._noise_weight.value) if self._noise_aware.value else None

    def _start_restore(
        self,
        layer: napari.layers.Layer,
        loc: PlaneLocation,
        scope: str,
        region: Any,
        region_layer: str | None,
        *,
        kernel: np.ndarray | None = None,
        kernel_layer: str | None = None,
    ) -> GeneratorWorker:
        """Start a run through ``restore_iter``: colour, all planes, or a region; or, with
        ``kernel`` (the data of the layer ``kernel_layer``), a non-blind restoration with
        that kernel, checked by the library."""
        preset = str(self._preset.value)
        iterations = int(self._iterations.value) or None
        if kernel is not None:
            kernel_size = tuple(int(n) for n in np.shape(kernel))
        else:
            kernel_size = (int(self._kernel_h.value), int(self._kernel_w.value))
        rgb = loc.rgb
        if scope == SCOPE_PLANE:
            plane = self._take_plane(layer)
            source = plane.data
            display = np.array(source, dtype=np.float32)
            display_view = display
            stack_shape: tuple[int, ...] = ()
            mode, reference = "single", None
            scale, translate = loc.scale, loc.translate
            plane_shape = source.shape[:2]
        else:
            source = planes_last(layer.data, loc.axes, rgb)
            display = np.array(layer.data, dtype=np.float32)
            display_view = planes_last(display, loc.axes, rgb)
            stack_shape = tuple(source.shape[:len(loc.stack_axes)])
            mode = "shared" if scope == SCOPE_SHARED else "per_plane"
            reference = (tuple(loc.position[a] for a in loc.stack_axes)
                         if mode == "shared" else None)
            scale = tuple(float(s) for s in layer.scale)
            translate = tuple(float(t) for t in layer.translate)
            plane_shape = tuple(source.shape[len(stack_shape):len(stack_shape) + 2])
        # no kernel output with a known kernel (the kernel layer is the input's)
        placement = _kernel_placement(loc, plane_shape, kernel_size) if kernel is None else {}
        if mode == "per_plane":  # a kernel stack on the layer's axes
            k_scale, k_translate = list(scale), list(translate)
            for i, axis in enumerate(loc.axes):
                k_scale[axis] = placement["scale"][i]
                k_translate[axis] = placement["translate"][i]
            placement = {"scale": tuple(k_scale), "translate": tuple(k_translate)}
        state = _RestoreState(
            scope=scope, mode=mode, rgb=rgb, axes=loc.axes, source=source, display=display,
            display_view=display_view, stack_shape=stack_shape, reference=reference,
            region_choice=self._region.value if kernel is None else None, region=region,
            region_layer=region_layer, scale=tuple(scale), translate=tuple(translate),
            kernel_style={"colormap": "magma", "blending": "additive", **placement},
            kernels=(np.zeros((*stack_shape, *kernel_size), np.float32)
                     if mode == "per_plane" else None),
            kernel_layer=kernel_layer if kernel is not None else None,
        )
        self._run = self._new_run(layer, loc, kernel_size, preset,
                                  colormap=None if rgb else layer.colormap, restore=state)
        run = self._run
        run.stop = threading.Event()  # Cancel: finish the plane in hand, then end
        if kernel is not None:
            # no blind run: only what the non-blind step uses (it runs on the CPU)
            run.overrides = {}
            arguments: dict[str, Any] = {"kernel": kernel}
        else:
            arguments = dict(
                mode="per_plane" if mode == "per_plane" else "shared",
                reference=reference,
                region=region,
                region_size=int(self._region_size.value),
                preset=preset,
                iterations=iterations,
                seed=run.seed,
                device=run.device,
                **run.overrides,
            )
        worker = create_worker(
            _restore_progress,
            source,
            kernel_size if kernel is None else None,
            channel_axis=-1 if rgb else None,
            noise_aware=run.noise_aware,
            stop=run.stop,
            **arguments,
            _progress={"desc": f"Deblurring {layer.name}"},
            _worker_class=_DeblurWorker,
            _ignore_errors=True,
            _start_thread=False,
        )
        self._connect(worker, run, self._on_progress)
        self._watch_input(run, layer)
        self._worker = worker
        self._set_running(True)
        what = loc.label if scope == SCOPE_PLANE else f"{math.prod(stack_shape)} planes"
        if kernel is not None:
            what += f", known kernel {kernel_layer!r}"
        self._set_status(f"starting ({what})…")
        worker.start()
        return worker

    def _set_running(self, running: bool, suggesting: bool = False) -> None:
        keep = {id(self._run_button), id(self._status), id(self._plane)}
        for widget in self:
            if id(widget) not in keep:
                widget.enabled = not running
        self._run_button.enabled = True
        self._run_button.text = "Cancel" if running else "Run"  # cancels a suggestion too
        self._suggest_button.text = "Suggesting…" if suggesting else "Suggest size"
        if not running and self._known_kernel.value is not None:
            for widget in self._blind_only:
                widget.enabled = False

    def _on_destroyed(self, *_: Any) -> None:
        """The dock (or the whole viewer) was closed: stop the run, touch no widget."""
        self._closed = True
        for worker in (self._worker, self._suggest_worker):
            if worker is not None:
                worker.quit()
        if self._worker is not None and self._run is not None:
            self._unwatch_input(self._run)
            show_info(f"Deblurring {self._run.source!r} stopped: the viewer was closed.")

    def _check_memory(self, layer: napari.layers.Layer, loc: PlaneLocation, scope: str,
                      region: Any, known_shape: tuple[int, ...] | None) -> None:
        """Refuse (``InsufficientMemoryError``, a ValueError) a run that the library's
        memory estimate says will not fit, before the widget copies any data."""
        from napari_dip_deblur.api import resolve_device
        from napari_dip_deblur.memory import (
            MemoryEstimate,
            available_memory,
            check_memory,
            estimate_memory,
            nonblind_bytes,
        )
        from napari_dip_deblur.presets import preset_for_device, resolve_settings

        shape = tuple(int(n) for n in layer.data.shape)
        plane = (shape[loc.axes[0]], shape[loc.axes[1]])
        values = math.prod(shape) if scope != SCOPE_PLANE else \
            math.prod(plane) * (shape[-1] if loc.rgb else 1)
        # float32: the widget's copy (its display), the run's output and its working copy
        data_bytes = 3 * 4 * values
        if known_shape is not None:  # non-blind only, on the CPU
            kernel = (int(known_shape[0]), int(known_shape[1]))
            check_memory(MemoryEstimate(
                blind=0, nonblind=nonblind_bytes(plane, kernel), arrays=data_bytes,
                device="cpu", available_host=available_memory(), available_device=None,
                blind_shape=(0, 0), plane_shape=plane))
            return
        device = resolve_device(str(self._device.value))
        kernel = (int(self._kernel_h.value), int(self._kernel_w.value))
        # the overrides that are settings (not deblur_iter's own arguments)
        overrides = {k: v for k, v in self.overrides().items() if k not in _RUN_ARGUMENTS}
        settings = resolve_settings(preset_for_device(str(self._preset.value), device.type),
                                    int(self._iterations.value) or None,
                                    **overrides).for_kernel(kernel)
        if region is None or region == "auto":  # the preset's crop, or the auto region
            side = settings.estimation_crop if region is None else int(self._region_size.value)
            blind = plane if side is None else (min(side, plane[0]), min(side, plane[1]))
        else:
            blind = region.shape
        nonblind = (scope != SCOPE_PLANE or loc.rgb or region is not None
                    or settings.final_deconvolution != "none")
        check_memory(estimate_memory(
            blind, plane, kernel, channels=settings.channels,
            skip_channels=settings.skip_channels,
            non_local_levels=tuple(settings.non_local_levels), data_bytes=data_bytes,
            device=str(device), nonblind=nonblind))

    def _watch_input(self, run: _Run, layer: napari.layers.Layer) -> None:
        """Watch the input layer during the run: its data replaced is told once (the run
        goes on with the copy it was given); its removal stops the run
        (:meth:`_on_layer_removed`)."""
        run.input_layer = layer

        def on_data(*_: Any) -> None:
            if run is self._run and self._worker is not None and not run.input_changed:
                run.input_changed = True
                show_warning(f"The data of {run.source!r} changed during the run; the run "
                             "goes on with the data as it was when Run was pressed.")

        run.on_input_data = on_data
        layer.events.data.connect(on_data)

    @staticmethod
    def _unwatch_input(run: _Run) -> None:
        if run.on_input_data is not None and run.input_layer is not None:
            run.input_layer.events.data.disconnect(run.on_input_data)
            run.on_input_data = None

    def _on_layer_removed(self, event: Any) -> None:
        """The run's input layer removed: stop the run (as Cancel does) and say so."""
        run = self._run
        if (self._worker is None or run is None or run.cancelled
                or event.value is not run.input_layer):
            return
        self.cancel()
        show_warning(f"The input layer {run.source!r} was removed during the run: the run "
                     f"was stopped; what it had is kept in '{run.source} deblurred"
                     f"{PARTIAL_SUFFIX}'.")

    def _on_yielded(self, run: _Run, snap: Snapshot) -> None:
        run.last = snap
        if run.error is not None or self._closed:
            return
        try:
            if (not run.outputs or snap.done or snap.step % run.update_every == 0
                    or snap.settings.get("finished_early")):
                self._show(run, snap, partial=not snap.done)
        except Exception as exc:  # a bug here must not leave a run going unseen
            self._on_errored(run, exc)
            if self._worker is not None:
                self._worker.quit()
            return
        if not run.cancelled:
            self._set_status(f"iteration {snap.step}/{snap.total}, loss {snap.loss:.4g}"
                                  + _attempt_note(snap))
        self._move_progress_bar(run, snap.step, snap.total)

    def _on_progress(self, run: _Run, item: Any) -> None:
        """A ``restore_iter`` progress reached the main thread."""
        state = run.restore
        if item.stage == "estimate" and state.mode != "per_plane":
            state.region = item.region  # the one blind run's region, "auto" resolved
        state.progress = item
        if item.snapshot is not None:
            run.last = item.snapshot
        if item.stage == "done":
            state.result = item.result
        if run.error is not None or self._closed or self._run is not run \
                or self._worker is None:
            return
        try:
            if item.stage == "estimate":
                snap = item.snapshot
                if not run.outputs or snap.done or snap.step % run.update_every == 0:
                    self._show_restore(run, partial=True)
            elif item.stage == "apply" and item.planes_done > len(state.copied):
                self._show_restore(run, partial=True)  # a plane was finished
        except Exception as exc:  # a bug here must not leave a run going unseen
            self._on_errored(run, exc)
            if self._worker is not None:
                self._worker.quit()
            return
        if not run.cancelled and item.stage != "done":
            self._set_status(self._restore_status(state, item))
        self._move_progress_bar(run, item.step, item.total)

    @staticmethod
    def _restore_status(state: _RestoreState, p: RestoreProgress) -> str:
        n = p.n_planes
        if p.stage == "estimate":
            snap = p.snapshot
            where = f" on plane {p.plane + 1}/{n}" if p.plane is not None and n > 1 else ""
            return (f"estimating the kernel{where}: iteration {snap.step}/{snap.total}, "
                    f"loss {snap.loss:.4g}{_attempt_note(snap)}")
        what = f"plane {p.plane + 1}/{n}" if n > 1 else "the image"
        colour = " (colour channels)" if state.rgb else ""
        known = (f" with the known kernel {state.kernel_layer!r}"
                 if state.kernel_layer is not None else "")
        return f"restoring {what}{colour}{known}: {p.planes_done}/{n} planes done"

    def _on_errored(self, run: _Run, exc: BaseException) -> None:
        if run.error is None and not self._closed:
            run.error = exc
            self._report(exc, run.source)

    def _on_finished(self, run: _Run) -> None:
        self._unwatch_input(run)
        if self._closed:
            self._worker = None
            return
        try:
            self._finish(run)
        except Exception as exc:
            self._on_errored(run, exc)
        finally:
            if self._run is run:
                self._worker = None
                self._set_running(False)

    def _finish(self, run: _Run) -> None:
        if run.restore is not None:
            self._finish_restore(run)
            return
        snap = run.last
        if run.error is not None:
            snap = getattr(run.error.__cause__, "snapshot", None) or snap
        failed = f" (failed: {run.error})" if run.error is not None else ""
        if snap is None:
            self._set_status(f"failed: {run.error}" if failed else "cancelled")
            return
        partial = run.error is not None or not snap.done
        self._show(run, snap, partial=partial, final=True, refresh=snap.step != run.shown_step)
        cancelled = " (cancelled)" if run.cancelled and partial and not failed else ""
        finished = {True: ", then deconvolved with that kernel",
                    False: " (its kernel is still too near its start to deconvolve with)",
                    None: ""}[snap.settings.get("finished_early")]
        self._set_status(
            f"{'partial' if partial else 'done'}{cancelled}{failed}: "
            f"{snap.step}/{snap.total} iterations in {snap.elapsed:.1f} s{finished}"
            f"{_attempt_note(snap)}"
        )

    def _finish_restore(self, run: _Run) -> None:
        state = run.restore
        failed = f" (failed: {run.error})" if run.error is not None else ""
        if state.progress is None:
            self._set_status(f"failed: {run.error}" if failed else "cancelled")
            return
        settings = state.result.settings if state.result is not None else {}
        partial = run.error is not None or state.result is None or settings.get("stopped", False)
        self._show_restore(run, partial=partial, final=True)
        cancelled = " (cancelled)" if run.cancelled and partial and not failed else ""
        n, done = state.n_planes, len(state.copied)
        what = f"{done}/{n} planes restored" if n > 1 else (
            "restored" if done else "not restored")
        if state.kernel_layer is not None:
            what += f" with the known kernel {state.kernel_layer!r}"
        what += {True: " with the kernel it had when cancelled",
                 False: " (its kernel was still too near its start to deconvolve with)",
                 None: ""}[settings.get("finished_early")]
        self._set_status(
            f"{'partial' if partial else 'done'}{cancelled}{failed}: {what} in "
            f"{state.progress.elapsed:.1f} s"
        )

    # ------------------------------------------------------------------ outputs
    def _show_restore(self, run: _Run, *, partial: bool, final: bool = False) -> None:
        """Bring the display arrays up to date with the worker and show them.

        Finished planes are copied from the worker's output (it never writes them again);
        while a kernel is estimated, its live iterate is drawn over the region of its plane
        (grey over the colour channels of an RGB image). At the end (``final``) planes not
        finished show the input again.
        """
        state = run.restore
        p = state.progress
        if p is not None:
            for flat in map(int, np.flatnonzero(np.ravel(p.restored))):
                if flat in state.copied:
                    continue
                index = state.index(flat)
                state.display_view[index] = p.image[index]
                if state.kernels is not None and p.kernels is not None:
                    state.kernels[index] = p.kernels[index]
                state.copied.add(flat)
            if p.kernel is not None and state.kernels is None:
                state.kernel = p.kernel
        if final:
            for flat in range(state.n_planes):
                if flat not in state.copied:
                    index = state.index(flat)
                    state.display_view[index] = state.source[index]
                    if state.kernels is not None:
                        state.kernels[index] = 0.0
        elif p is not None and p.stage == "estimate" and p.snapshot is not None:
            self._draw_estimate(state, p)
        known = state.kernel_layer is not None
        if not known and state.kernels is None and state.kernel is None:
            return  # nothing estimated yet
        meta = self._restore_metadata(run, partial)
        specs = {
            "deblurred": (
                state.display,
                (run.contrast_limits_range, run.contrast_limits),
                {"rgb": state.rgb, "scale": state.scale, "translate": state.translate,
                 **({} if state.rgb else {"colormap": run.colormap})},
            ),
        }
        if not known:  # a known kernel has its own layer already: no kernel output
            kernel = state.kernel_data()
            kmax = float(np.max(kernel)) or 1.0
            specs["kernel"] = (kernel, ((0.0, kmax), (0.0, kmax)), dict(state.kernel_style))
        suffix = PARTIAL_SUFFIX if final and partial else ""
        for kind, (data, (limits_range, limits), style) in specs.items():
            base = f"{run.source} {kind}"
            layer = self._output_layer(run, kind, base, data.ndim - (1 if style.get("rgb")
                                                                       else 0),
                                       bool(style.get("rgb")), style)
            if layer is None:
                layer = self._viewer.add_image(
                    data, name=base + suffix, metadata=meta, contrast_limits=limits, **style)
                run.outputs[kind] = layer
            elif layer.data is not data:
                layer.data = data
            else:
                layer.refresh()  # edited in place
            layer.contrast_limits_range = limits_range
            layer.contrast_limits = limits
            layer.metadata = dict(meta)
            if layer.name != base + suffix:
                layer.name = base + suffix

    @staticmethod
    def _draw_estimate(state: _RestoreState, p: RestoreProgress) -> None:
        """The live iterate of a blind run, over its region of the plane it runs on."""
        snap = p.snapshot
        if state.mode == "per_plane":
            index = p.plane_index
        else:
            index = state.reference or ()
        flat = int(np.ravel_multi_index(index, state.stack_shape)) if index else 0
        if state.kernels is not None:
            state.kernels[index] = snap.kernel
        else:
            state.kernel = snap.kernel
        if flat in state.copied:
            return
        target = state.display_view[index]
        if p.region is not None:
            target = target[p.region.slices]
        if state.rgb:
            target[..., :3] = snap.image[..., None]
        else:
            target[...] = snap.image

    def _show(
        self,
        run: _Run,
        snap: Snapshot,
        *,
        partial: bool,
        final: bool = False,
        refresh: bool = True,
    ) -> None:
        """Copy a snapshot into the two output layers (adding them the first time).

        ``final`` marks the end of the run: a partial result then gets the partial suffix.
        ``refresh=False`` updates names and metadata only (the data is already shown).
        """
        meta = self._metadata(run, snap, partial)
        loc = run.location
        kmax = float(snap.kernel.max()) or 1.0
        specs = {
            "deblurred": (
                snap.image,
                {
                    "contrast_limits_range": run.contrast_limits_range,
                    "contrast_limits": run.contrast_limits,
                },
                {"colormap": run.colormap, "scale": loc.scale, "translate": loc.translate},
            ),
            "kernel": (
                snap.kernel,
                {"contrast_limits_range": (0.0, kmax), "contrast_limits": (0.0, kmax)},
                {"colormap": "magma", "blending": "additive",
                 **_kernel_placement(loc, snap.image.shape, snap.kernel.shape)},
            ),
        }
        suffix = PARTIAL_SUFFIX if final and partial else ""
        for kind, (data, limits, style) in specs.items():
            base = f"{run.source} {kind}"
            layer = self._output_layer(run, kind, base, style=style)
            if layer is None:
                layer = self._viewer.add_image(
                    data,
                    name=base + suffix,
                    metadata=meta,
                    **style,
                    contrast_limits=limits["contrast_limits"],
                )
                run.outputs[kind] = layer
            elif refresh:
                layer.data = data
            if refresh:
                # explicit limits: napari does not reset them when data is replaced
                layer.contrast_limits_range = limits["contrast_limits_range"]
                layer.contrast_limits = limits["contrast_limits"]
            layer.metadata = dict(meta)
            if layer.name != base + suffix:
                layer.name = base + suffix
        run.shown_step = snap.step

    def _output_layer(
        self,
        run: _Run,
        kind: str,
        base: str,
        ndim: int = 2,
        rgb: bool = False,
        style: dict[str, Any] | None = None,
    ) -> napari.layers.Image | None:
        """The layer receiving ``kind``: this run's, else an earlier run's (re-used when it
        has the same number of axes and colour; otherwise removed, to be added anew)."""
        from napari.layers import Image

        layer = run.outputs.get(kind)
        if layer is not None and layer in self._viewer.layers:
            return layer
        style = style or {}
        for name in (base, base + PARTIAL_SUFFIX):
            if name not in self._viewer.layers:
                continue
            candidate = self._viewer.layers[name]
            if not isinstance(candidate, Image):
                continue
            if candidate.ndim == ndim and bool(candidate.rgb) == rgb:
                loc = run.location
                candidate.scale = style.get("scale", loc.scale)
                candidate.translate = style.get("translate", loc.translate)
                run.outputs[kind] = candidate
                return candidate
            if candidate.metadata.get("source") == run.source:  # an earlier output
                self._viewer.layers.remove(candidate)
        return None

    @staticmethod
    def _metadata(run: _Run, snap: Snapshot, partial: bool) -> dict[str, Any]:
        settings = dict(getattr(snap, "settings", None) or {})
        return {
            "source": run.source,
            **run.location.as_metadata(),
            "preset": settings.get("preset", run.preset),
            "kernel_size": list(run.kernel_size),
            "seed": run.seed,
            "device": settings.get("device", run.device),
            "overrides": dict(run.overrides),
            "noise_aware": run.noise_aware,
            "kernel_source": "estimated",
            "kernel_layer": None,
            "iterations": int(snap.step),
            "iterations_total": int(snap.total),
            "wall_time": float(snap.elapsed),
            "loss": float(snap.loss),
            "loss_history": dict(getattr(snap, "history", None) or {}),
            "settings": settings,
            "partial": bool(partial),
            "error": None if run.error is None else str(run.error),
            "input_changed": run.input_changed,
        }

    @staticmethod
    def _restore_metadata(run: _Run, partial: bool) -> dict[str, Any]:
        """The metadata of a run through ``restore_iter`` (both output layers)."""
        state = run.restore
        p, snap, result = state.progress, run.last, state.result
        settings = dict(result.settings) if result is not None else \
            dict(getattr(snap, "settings", None) or {})
        if state.scope == SCOPE_PLANE:
            where = run.location.as_metadata()
        else:
            where = {"plane": "all planes", "plane_index": {},
                     "plane_axes": list(state.axes)}
        region = state.region
        rectangle = list(region.as_tuple()) if hasattr(region, "as_tuple") else None
        regions = settings.get("regions")
        if regions is None:
            regions = [rectangle] if not isinstance(region, str) else None
        known = state.kernel_layer is not None
        return {
            "source": run.source,
            **where,
            "scope": state.scope,
            "mode": state.mode,
            "rgb": state.rgb,
            "kernel_source": "given" if known else "estimated",
            "kernel_layer": state.kernel_layer,
            "preset": None if known else settings.get("preset", run.preset),
            "kernel_size": list(run.kernel_size),
            "seed": None if known else run.seed,
            "device": settings.get("device", run.device),
            "overrides": dict(run.overrides),
            "noise_aware": run.noise_aware,
            "region": {"choice": state.region_choice, "shapes_layer": state.region_layer,
                       "rectangle": rectangle},
            "regions": [list(r) if r is not None else None for r in regions]
            if regions is not None else None,
            "reference": list(state.reference) if state.reference is not None else None,
            "n_planes": state.n_planes,
            "planes_done": len(state.copied),
            "planes_restored": sorted(state.copied),
            "iterations": int(snap.step) if snap is not None else 0,
            "iterations_total": int(snap.total) if snap is not None else 0,
            "wall_time": float(p.elapsed) if p is not None else 0.0,
            "loss": float(snap.loss) if snap is not None else float("nan"),
            "loss_history": dict(getattr(snap, "history", None) or {}),
            "settings": settings,
            "partial": bool(partial),
            "error": None if run.error is None else str(run.error),
            "input_changed": run.input_changed,
        }

    def _set_status(self, text: str) -> None:
        self._status.value = text
        self.status_changed.emit(text)

    def _report(self, exc: BaseException, source: str | None, what: str = "Deblurring") -> None:
        what = f"{what} {source!r}" if source else what
        message = f"{what} failed: {exc}"
        self._set_status(message)
        show_error(message)
