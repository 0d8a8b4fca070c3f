"""Screenshots of the napari widget for ``docs/napari.md``, taken from a real run.

Opens the blurred-photo sample, docks the widget through the plugin manifest (the route
a user takes: Plugins > DIP Deblur > Blind deblur), starts a run and grabs the window
mid-run (Cancel button, live layers, progress in the activity dock) and at the end (grid
view: truth, input and outputs side by side). Then a colour stack: a 3-frame RGB clip
blurred by one camera shake, "all planes, one kernel", the kernel estimated on a rectangle
of a Shapes layer (grid view: input with the rectangle, output with the kernel).

Run it under a virtual X display (as the tests do)::

    QT_QPA_PLATFORM=xcb OMP_NUM_THREADS=1 xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python benchmarks/screenshots.py

About three minutes on one CPU thread with the defaults.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run took too long")
        QApplication.processEvents()
        time.sleep(0.02)


def _settle(seconds: float = 0.5) -> None:
    """Let Qt and vispy draw before a grab."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def _blurred_clip(frames: int = 3, size: int = 160):
    """A short colour clip (a slow pan over scikit-image's astronaut) blurred by one camera
    shake (an 11-pixel horizontal streak): ``(frames, size, size, 3)`` uint8."""
    import numpy as np
    from scipy import signal
    from skimage import data, transform

    from napari_dip_deblur.samples import motion_kernel

    step = 8
    side = size + step * (frames - 1)
    sharp = transform.resize(data.astronaut() / 255.0, (side, side, 3), anti_aliasing=True)
    kernel = motion_kernel(15, seed=7, length=13.5)
    half = (kernel.shape[0] - 1) // 2
    clip = []
    for t in range(frames):
        frame = np.pad(sharp[:size, step * t:step * t + size], ((half, half),) * 2 + ((0, 0),),
                       mode="reflect")
        clip.append(np.stack([signal.convolve(frame[..., c], kernel, mode="valid")
                              for c in range(3)], axis=-1))
    return np.rint(np.clip(np.stack(clip), 0, 1) * 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> list[Path]:
    """Take the screenshots; returns the paths written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--kernel-size", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--size", default="1500x900", help="window size, WxH")
    args = parser.parse_args(argv)

    import napari
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))

    viewer = napari.Viewer(show=True, title="napari-dip-deblur")
    viewer.window._qt_window.resize(width, height)
    viewer.open_sample("napari-dip-deblur", "blurred_photo")
    _, widget = viewer.window.add_plugin_dock_widget("napari-dip-deblur", "Blind deblur")
    widget._image.value = viewer.layers["camera"]
    widget._kernel_h.value = widget._kernel_w.value = args.kernel_size
    widget._iterations.value = args.iterations
    widget._update_every.value = 10
    viewer.window._status_bar._toggle_activity_dock(True)  # progress bar with time left

    written = []
    widget.run()
    _wait(
        lambda: (
            widget._run is not None
            and widget._run.last is not None
            and widget._run.last.step >= 0.3 * args.iterations
        ),
        timeout=600,
    )
    viewer.reset_view()
    _settle()
    path = args.out / "widget_running.png"
    viewer.screenshot(str(path), canvas_only=False)
    written.append(path)

    _wait(lambda: not widget.is_running, timeout=900)
    viewer.window._status_bar._toggle_activity_dock(False)
    # Grid view, first row: truth, blurry, deblurred; second row: true and estimated kernel.
    order = [
        "camera sharp (truth)",
        "camera",
        "camera deblurred",
        "camera kernel (truth)",
        "camera kernel",
    ]
    for index, name in enumerate(order):
        layer = viewer.layers[name]
        layer.visible = True
        viewer.layers.move(viewer.layers.index(layer), index)
    for name in ("camera kernel (truth)", "camera kernel"):
        side = max(viewer.layers[name].data.shape)
        viewer.layers[name].scale = (128 / side,) * 2  # display only: kernels are tiny
        viewer.layers[name].translate = (0, 0)  # in its own grid cell, not beside the image
        viewer.layers[name].blending = "translucent"
    viewer.canvas.grid.enabled = True
    viewer.canvas.grid.shape = (2, 3)
    viewer.canvas.grid.stride = 1
    viewer.reset_view()
    _settle()
    path = args.out / "widget_done_grid.png"
    viewer.screenshot(str(path), canvas_only=False)
    written.append(path)

    meta = viewer.layers["camera deblurred"].metadata
    print(f"{meta['iterations']} iterations in {meta['wall_time']:.1f} s on {meta['device']}")

    # A colour stack, one kernel estimated on a rectangle of the displayed frame.
    viewer.canvas.grid.enabled = False
    viewer.layers.clear()
    layer = viewer.add_image(_blurred_clip(), name="clip", rgb=True)
    viewer.dims.axis_labels = ("t", "y", "x")
    viewer.dims.set_current_step(0, 1)  # the shared kernel is estimated on frame t=1
    viewer.add_shapes([[[8, 40], [103, 135]]], shape_type="rectangle", name="region",
                      edge_color="yellow", face_color="transparent", edge_width=2)
    widget._image.value = layer
    widget._scope.value = "all planes, one kernel"
    widget._region.value = "rectangle in a Shapes layer"
    widget.run()
    _wait(lambda: not widget.is_running, timeout=900)
    # Grid view, two layers a cell: input + rectangle, restored frame + its kernel.
    for index, name in enumerate(("clip", "region", "clip deblurred", "clip kernel")):
        viewer.layers.move(viewer.layers.index(viewer.layers[name]), index)
    viewer.layers.selection.active = viewer.layers["clip deblurred"]
    viewer.canvas.grid.enabled = True
    viewer.canvas.grid.shape = (1, 2)
    viewer.canvas.grid.stride = 2
    viewer.reset_view()
    _settle()
    path = args.out / "widget_colour_stack.png"
    viewer.screenshot(str(path), canvas_only=False)
    written.append(path)

    meta = viewer.layers["clip deblurred"].metadata
    print(f"clip: {meta['planes_done']}/{meta['n_planes']} planes, region {meta['regions']}, "
          f"{meta['wall_time']:.1f} s")
    viewer.close()
    for p in written:
        print(p)
    return written


if __name__ == "__main__":
    main()
