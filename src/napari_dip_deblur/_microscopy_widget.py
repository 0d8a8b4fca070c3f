"""The microscopy dock widget: deconvolve a 2-D fluorescence image (photon counts) with a
PSF fitted to it, or with a measured one.

The form (image, measured PSF, iterations), the run (a napari thread worker calling
:func:`napari_dip_deblur.microscopy.deconvolve_microscopy`) and the outputs (layers named
after the input, with its scale and translate) are kept apart; no numerics here. Images that
look like photon counts are pointed out in the status line when chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, SpinBox
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

if TYPE_CHECKING:
    import napari

__all__ = ["MicroscopyWidget"]

NO_PSF = "none: fit one"


class MicroscopyWidget(Container):
    """Dock widget for :func:`~napari_dip_deblur.microscopy.deconvolve_microscopy`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._worker: Any = None
        self.last_result: Any = None
        self._image = ComboBox(label="image", choices=self._image_choices)
        self._psf = ComboBox(label="measured PSF", choices=self._image_choices, nullable=True)
        self._psf.null_string = NO_PSF
        self._psf.reset_choices()
        self._iterations = SpinBox(label="iterations", value=0, min=0, max=5000,
                                   tooltip="Richardson-Lucy iterations; 0 = chosen by "
                                           "cross-validation on the image")
        self._button = PushButton(text="Deconvolve")
        self._status = Label(value="")
        self.extend([self._image, self._psf, self._iterations, self._button, self._status])
        self._button.changed.connect(lambda *_: self.run())
        self._image.changed.connect(self._on_image)
        for emitter in (viewer.layers.events.inserted, viewer.layers.events.removed):
            emitter.connect(lambda *_: self.reset_choices())
        active = viewer.layers.selection.active
        if active is not None and active in self._image.choices:
            self._image.value = active
        self._on_image(self._image.value)

    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, Image)]

    def _on_image(self, layer: Any) -> None:
        from .microscopy import looks_like_counts

        if layer is None:
            self._status.value = "open a fluorescence image"
        elif np.ndim(layer.data) != 2 or layer.rgb:
            self._status.value = "a 2-D grey image is needed"
        elif looks_like_counts(np.asarray(layer.data)):
            self._status.value = "looks like photon counts: this mode suits it"
        else:
            self._status.value = ("does not look like photon counts (integers with shot "
                                  "noise): the blind deblur widget may suit it better")

    def run(self, layer: Any = None) -> Any:
        """Deconvolve ``layer`` (default: the chosen one) in a worker; returns the worker,
        or None when refused (an error is shown)."""
        from .microscopy import deconvolve_microscopy

        if self._worker is not None:
            return None
        layer = layer if layer is not None else self._image.value
        if layer is None or np.ndim(layer.data) != 2 or layer.rgb:
            show_error("Microscopy deconvolution needs a 2-D grey image layer.")
            return None
        psf_layer = self._psf.value
        psf = None if psf_layer is None else np.asarray(psf_layer.data, dtype=float)
        iterations = int(self._iterations.value) or None
        worker = create_worker(deconvolve_microscopy, np.asarray(layer.data), psf=psf,
                               iterations=iterations, _start_thread=False,
                               _progress={"desc": f"Deconvolving {layer.name}"})
        worker.returned.connect(lambda result: self._show(layer, result))
        worker.errored.connect(lambda error: show_error(f"Deconvolving {layer.name}: {error}"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._button.enabled = False
        self._status.value = f"deconvolving {layer.name}…"
        worker.start()
        return worker

    def _on_finished(self) -> None:
        self._worker = None
        self._button.enabled = True

    def _show(self, layer: Any, result: Any) -> None:
        self.last_result = result
        placement = {"scale": tuple(layer.scale), "translate": tuple(layer.translate)}
        self._put(f"{layer.name} deconvolved", result.image,
                  colormap=layer.colormap, contrast_limits=(float(result.image.min()),
                                                            float(result.image.max())),
                  **placement)
        if result.model is not None:
            self._put(f"{layer.name} PSF", result.psf.astype(np.float32), colormap="magma",
                      visible=False)
        how = ("the measured PSF" if result.model is None else
               f"a fitted {result.model.family} PSF")
        self._status.value = (f"done: {how}, background {result.background:.1f}, "
                              f"{result.iterations} Richardson-Lucy iterations")

    def _put(self, name: str, data: np.ndarray, **kwargs: Any) -> None:
        if name in self._viewer.layers:
            target = self._viewer.layers[name]
            target.data = data
            for key in ("scale", "translate", "contrast_limits"):
                if key in kwargs:
                    setattr(target, key, kwargs[key])
        else:
            self._viewer.add_image(data, name=name, **kwargs)
