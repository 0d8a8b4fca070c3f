"""The dock widget: blind deblurring of the displayed plane of an image layer.

The widget does no numerics. It takes a 2-D plane out of the chosen layer
(:func:`napari_dip_deblur._layer_data.plane_from_layer`), runs
:func:`napari_dip_deblur.deblur_iter` in a napari thread worker, and copies the snapshots
into two output layers. torch is imported only when a run starts (inside the worker) or
when the widget is built (to list the devices), never when this module is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from napari.utils.notifications import show_error

from ._layer_data import Plane, PlaneLocation, locate_plane, plane_from_layer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import napari
    import numpy as np

    from .api import Snapshot

__all__ = ["PARTIAL_SUFFIX", "DeblurWidget"]

#: Appended to the output layers' names when a run was cancelled or failed part-way.
PARTIAL_SUFFIX = " (partial)"

KERNEL_HINT = "Kernel size: a bit larger than the longest blur streak, in pixels (odd)."

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
    image: np.ndarray, kernel_size: tuple[int, int], **kwargs: Any
) -> Iterator[Snapshot]:
    """The worker's generator: every snapshot of ``deblur_iter``, one per iteration.

    Yielding every iteration lets ``worker.quit()`` act within one iteration; the widget
    copies into layers only every N of them.
    """
    from napari_dip_deblur import deblur_iter

    try:
        snapshots = deblur_iter(image, kernel_size, yield_every=1, **kwargs)
        try:
            yield from snapshots
        finally:
            close = getattr(snapshots, "close", None)
            if close is not None:
                close()
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
    last: Snapshot | None = None
    shown_step: int = 0
    error: BaseException | None = None
    cancelled: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)


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
    """Blind deblurring (deep image prior) of the displayed plane of an image layer.

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
    A run adds (or, on later runs, updates in place) two 2-D layers named after the
    input, ``"<name> deblurred"`` and ``"<name> kernel"``, with the input's scale and
    translate on the displayed axes. A cancelled or failed run keeps its last iterate
    under ``"<name> deblurred (partial)"`` with ``metadata["partial"] = True``. The input
    layer is never modified.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        from napari_dip_deblur import PRESETS, available_devices
        from napari_dip_deblur.api import resolve_device
        from napari_dip_deblur.presets import recommended_preset

        self._viewer = viewer
        self._presets = PRESETS
        self.extra_overrides: dict[str, Any] = {}
        self._worker: GeneratorWorker | None = None
        self._run: _Run | None = None
        self._closed = False

        self._image = ComboBox(label="image", choices=self._image_layer_choices)
        self._plane = Label(label="plane", value="")
        self._kernel_h = SpinBox(value=15, min=3, max=999, step=2, label="kernel height")
        self._kernel_w = SpinBox(value=15, min=3, max=999, step=2, label="kernel width")
        self._kernel_hint = Label(value=KERNEL_HINT)
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
        self._advanced_box = Container(widgets=list(self._advanced.values()), labels=True)
        self._advanced_box.visible = False
        self._run_button = PushButton(text="Run")
        self._status = Label(label="status", value="idle")
        self._defaults: dict[str, float] = {}

        for label in (self._kernel_hint, self._plane, self._status):
            label.native.setWordWrap(True)
        self._iterations.tooltip = "0 = the preset's default"
        self._update_every.tooltip = "Copy the result into the layers every N iterations."
        self._seed.tooltip = "Same seed, same result (on the CPU)."
        for name, (_, _, _, _, staged_only) in _ADVANCED.items():
            if staged_only:
                self._advanced[name].tooltip = "Used by the 'staged' preset only."

        self.extend(
            [
                self._image,
                self._plane,
                self._kernel_h,
                self._kernel_w,
                self._kernel_hint,
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
        self._image.changed.connect(self._update_plane_label)
        layers = viewer.layers.events
        for emitter in (layers.inserted, layers.removed, layers.moved):
            emitter.connect(self._reset_layer_choices)
        dims = viewer.dims.events
        for emitter in (dims.current_step, dims.ndisplay, dims.order):
            emitter.connect(self._update_plane_label)

        self._on_preset(self._preset.value)
        self._reset_layer_choices()
        active = viewer.layers.selection.active
        if active is not None and active in self._image.choices:
            self._image.value = active  # e.g. the blurry image of a sample just opened
        self.native.destroyed.connect(self._on_destroyed)

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

    def run(self, layer: napari.layers.Layer | None = None) -> GeneratorWorker | None:
        """Start deblurring ``layer`` (default: the chosen one) with the widget's settings.

        Returns the started worker, or None if the input was refused (a notification
        says why). Does nothing if a run is already in progress.
        """
        if self._worker is not None:
            return self._worker
        layer = layer if layer is not None else self._image.value
        try:
            if layer is None:
                raise ValueError("No image layer to deblur: open an image first.")
            plane = self._take_plane(layer)
        except (TypeError, ValueError) as exc:
            self._report(exc, getattr(layer, "name", None))
            return None
        return self._start(layer, plane)

    def cancel(self) -> None:
        """Ask the running worker to stop; the last iterate is kept, marked partial."""
        if self._worker is None or self._run is None:
            return
        self._run.cancelled = True
        self._worker.quit()
        self._run_button.enabled = False
        self._run_button.text = "Cancelling…"
        self._status.value = "cancelling…"

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
        out.update(self.extra_overrides)
        return out

    # ------------------------------------------------------------------ inputs
    def _image_layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(lyr.name, lyr) for lyr in self._viewer.layers if isinstance(lyr, Image)]

    def _reset_layer_choices(self, event: Any = None) -> None:
        if event is not None and getattr(event, "type", None) == "inserted":
            event.value.events.name.connect(self._reset_layer_choices)
        self._image.reset_choices()
        self._update_plane_label()

    def _locate(self, layer: napari.layers.Layer) -> PlaneLocation:
        dims = self._viewer.dims
        return locate_plane(layer, dims.point, dims.displayed, dims.axis_labels)

    def _take_plane(self, layer: napari.layers.Layer) -> Plane:
        dims = self._viewer.dims
        return plane_from_layer(layer, dims.point, dims.displayed, dims.axis_labels)

    def _update_plane_label(self, *_: Any) -> None:
        layer = self._image.value
        if layer is None:
            self._plane.value = "no image layer"
            return
        try:
            self._plane.value = self._locate(layer).label
        except (TypeError, ValueError) as exc:
            self._plane.value = f"cannot deblur: {exc}"

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
        self._iterations.tooltip = f"0 = the preset's default ({settings.iterations})"

    def _on_show_advanced(self, value: bool) -> None:
        self._advanced_box.visible = bool(value)

    def _on_button(self, *_: Any) -> None:
        if self._worker is None:
            self.run()
        else:
            self.cancel()

    # ------------------------------------------------------------------ running
    def _start(self, layer: napari.layers.Layer, plane: Plane) -> GeneratorWorker:
        preset = str(self._preset.value)
        iterations = int(self._iterations.value) or None
        total = iterations or int(self._presets[preset].iterations)
        lo, hi = (float(v) for v in layer.contrast_limits)
        rlo, rhi = (float(v) for v in layer.contrast_limits_range)
        self._run = _Run(
            source=layer.name,
            location=plane.location,
            kernel_size=(int(self._kernel_h.value), int(self._kernel_w.value)),
            preset=preset,
            seed=int(self._seed.value),
            device=str(self._device.value),
            overrides=self.overrides(),
            update_every=int(self._update_every.value),
            contrast_limits=(lo, hi),
            contrast_limits_range=(min(lo, rlo), max(hi, rhi)),
            colormap=layer.colormap,
        )
        worker = create_worker(
            _deblur_snapshots,
            plane.data,
            self._run.kernel_size,
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
        worker.yielded.connect(lambda snap: self._on_yielded(run, snap))
        worker.errored.connect(lambda exc: self._on_errored(run, exc))
        worker.aborted.connect(lambda: setattr(run, "cancelled", True))
        worker.finished.connect(lambda: self._on_finished(run))
        self._worker = worker
        self._set_running(True)
        self._status.value = f"starting ({plane.location.label})…"
        worker.start()
        return worker

    def _set_running(self, running: bool) -> None:
        keep = {id(self._run_button), id(self._status), id(self._plane)}
        for widget in self:
            if id(widget) not in keep:
                widget.enabled = not running
        self._run_button.enabled = True
        self._run_button.text = "Cancel" if running else "Run"

    def _on_destroyed(self, *_: Any) -> None:
        """The dock (or the whole viewer) was closed: stop the run, touch no widget."""
        self._closed = True
        if self._worker is not None:
            self._worker.quit()

    def _on_yielded(self, run: _Run, snap: Snapshot) -> None:
        run.last = snap
        if run.error is not None or self._closed:
            return
        try:
            if not run.outputs or snap.done or snap.step % run.update_every == 0:
                self._show(run, snap, partial=not snap.done)
        except Exception as exc:  # a bug here must not leave a run going unseen
            self._on_errored(run, exc)
            if self._worker is not None:
                self._worker.quit()
            return
        if not run.cancelled:
            self._status.value = f"iteration {snap.step}/{snap.total}, loss {snap.loss:.4g}"

    def _on_errored(self, run: _Run, exc: BaseException) -> None:
        if run.error is None and not self._closed:
            run.error = exc
            self._report(exc, run.source)

    def _on_finished(self, run: _Run) -> None:
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
        snap = run.last
        if run.error is not None:
            snap = getattr(run.error.__cause__, "snapshot", None) or snap
        failed = f" (failed: {run.error})" if run.error is not None else ""
        if snap is None:
            self._status.value = f"failed: {run.error}" if failed else "cancelled"
            return
        partial = run.error is not None or not snap.done
        self._show(run, snap, partial=partial, final=True, refresh=snap.step != run.shown_step)
        cancelled = " (cancelled)" if run.cancelled and partial and not failed else ""
        self._status.value = (
            f"{'partial' if partial else 'done'}{cancelled}{failed}: "
            f"{snap.step}/{snap.total} iterations in {snap.elapsed:.1f} s"
        )

    # ------------------------------------------------------------------ outputs
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
            layer = self._output_layer(run, kind, base)
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

    def _output_layer(self, run: _Run, kind: str, base: str) -> napari.layers.Image | None:
        """The layer receiving ``kind``: this run's, else an earlier run's (re-used)."""
        from napari.layers import Image

        layer = run.outputs.get(kind)
        if layer is not None and layer in self._viewer.layers:
            return layer
        for name in (base, base + PARTIAL_SUFFIX):
            if name in self._viewer.layers:
                candidate = self._viewer.layers[name]
                if isinstance(candidate, Image) and candidate.ndim == 2:
                    loc = run.location
                    candidate.scale = loc.scale
                    candidate.translate = loc.translate
                    run.outputs[kind] = candidate
                    return candidate
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
            "iterations": int(snap.step),
            "iterations_total": int(snap.total),
            "wall_time": float(snap.elapsed),
            "loss": float(snap.loss),
            "loss_history": dict(getattr(snap, "history", None) or {}),
            "settings": settings,
            "partial": bool(partial),
            "error": None if run.error is None else str(run.error),
        }

    def _report(self, exc: BaseException, source: str | None) -> None:
        what = f"Deblurring {source!r}" if source else "Deblurring"
        message = f"{what} failed: {exc}"
        self._status.value = message
        show_error(message)
