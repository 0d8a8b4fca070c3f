"""Screenshots of the napari widget for ``docs/napari.md``, taken from a real run.

Opens the blurred-photo sample, docks the widget through the plugin manifest (the route
a user takes: Plugins > DIP Deblur > Blind deblur), starts a run and grabs the window
mid-run (Cancel button, live layers, progress in the activity dock) and at the end (grid
view: truth, input and outputs side by side).

Run it under a virtual X display (as the tests do)::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python benchmarks/screenshots.py

About a minute on two CPU cores with the defaults.
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
    widget._show_advanced.value = True  # show the Advanced section in the screenshot
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
    viewer.close()
    for p in written:
        print(p)
    return written


if __name__ == "__main__":
    main()
