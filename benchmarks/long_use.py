"""Long use: many runs in one process, and how fast Cancel hands control back.

Three measurements in one process, written to ``docs/benchmarks/long-use.md``:

``api``
    ``--api-runs`` (50) consecutive :func:`napari_dip_deblur.deblur` runs on a 48 x 48
    sample (tiny generator, 20 iterations each): resident memory (RSS, ``/proc/self/status``)
    after the first run and after the last, and Python threads before and after.
``widget``
    ``--widget-runs`` (20) consecutive runs of the dock widget in a real napari viewer (the
    same image, tiny settings): RSS after the first and the last, worker threads still
    running in Qt's pool after the last, Python threads (not counting Qt pool threads seen
    from Python), output layers.
``cancel``
    The widget on a 512 x 512 image with the default CPU preset (``fast``: a 48-channel
    generator on a 144 px crop, then, on Cancel, the non-blind deconvolution of the whole
    image with the kernel so far): Cancel is pressed once the run has done
    ``--cancel-after`` iterations, and the time from Cancel to the worker's ``finished``
    signal is measured, ``--repeats`` times; median and maximum.

Needs a display for the viewer (Xvfb)::

    QT_QPA_PLATFORM=xcb xvfb-run -a flock /tmp/cpu.lock .venv/bin/python benchmarks/long_use.py
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks" / "long-use.md"
TINY = {"channels": 8, "levels": 3, "skip_channels": 4, "non_local_levels": (), "starts": 1,
        "final_deconvolution": "none"}


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def python_threads() -> int:
    """Python threads, not counting Qt pool threads that Python has seen (they stay listed,
    idle, as dummy threads after a worker ran on them)."""
    return sum(not isinstance(t, threading._DummyThread) for t in threading.enumerate())


def measure_api(runs: int) -> dict:
    from napari_dip_deblur import deblur
    from napari_dip_deblur.samples import blurred_photo

    image = blurred_photo(48, 5).blurry
    threads_before = threading.active_count()
    rss = []
    started = time.perf_counter()
    for i in range(runs):
        deblur(image, 5, iterations=20, seed=i, device="cpu", **TINY)
        rss.append(rss_mb())
    return {"runs": runs, "rss_first": rss[0], "rss_last": rss[-1], "rss_max": max(rss),
            "threads_before": threads_before, "threads_after": threading.active_count(),
            "seconds": time.perf_counter() - started}


def _process_until(app, condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        app.processEvents()
        time.sleep(0.002)
    return True


def _viewer_and_widget():
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_dip_deblur._widget import DeblurWidget

    viewer = napari.Viewer(show=False)
    widget = DeblurWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Blind deblur")
    return QApplication.instance(), viewer, widget


def measure_widget(runs: int) -> dict:
    from qtpy.QtCore import QThreadPool

    from napari_dip_deblur.samples import blurred_photo

    app, viewer, widget = _viewer_and_widget()
    blurry = blurred_photo(48, 5).blurry
    layer = viewer.add_image(blurry, name="cells")
    before = blurry.tobytes()
    widget.extra_overrides = {"channels": 8, "levels": 2, "starts": 1}
    widget._kernel_h.value = widget._kernel_w.value = 5
    widget._iterations.value = 20
    widget._device.value = "cpu"
    threads_before = python_threads()
    rss = []
    started = time.perf_counter()
    for i in range(runs):
        widget._seed.value = i
        widget.run(layer)
        if not _process_until(app, lambda: not widget.is_running, 120):
            raise RuntimeError(f"widget run {i + 1} did not finish in 120 s")
        rss.append(rss_mb())
    pool = QThreadPool.globalInstance()
    _process_until(app, lambda: pool.activeThreadCount() == 0, 30)
    record = {"runs": runs, "rss_first": rss[0], "rss_last": rss[-1], "rss_max": max(rss),
              "threads_before": threads_before, "threads_after": python_threads(),
              "pool_active_after": pool.activeThreadCount(),
              "layers": [lyr.name for lyr in viewer.layers],
              "input_unchanged": layer.data.tobytes() == before,
              "seconds": time.perf_counter() - started}
    viewer.close()
    return record


def measure_cancel(repeats: int, afters: list[int], size: int) -> dict:
    from napari_dip_deblur.samples import blurred_photo

    app, viewer, widget = _viewer_and_widget()
    sample = blurred_photo(size, 15)
    layer = viewer.add_image(sample.blurry, name="photo")
    widget._kernel_h.value = widget._kernel_w.value = 15
    widget._device.value = "cpu"
    widget._preset.value = "fast"
    widget._update_every.value = 10
    latencies, iterations, finished_early = [], [], []
    for i, after in enumerate(a for a in afters for _ in range(repeats)):
        widget._seed.value = i
        worker = widget.run(layer)
        done: list[float] = []
        worker.finished.connect(lambda done=done: done.append(time.perf_counter()))
        if not _process_until(app, lambda: widget._run is not None and widget._run.last
                              is not None and widget._run.last.step >= after, 600):  # noqa: B023
            raise RuntimeError("the run did not reach the iteration to cancel at")
        pressed = time.perf_counter()
        widget._run_button.native.click()  # Cancel
        if not _process_until(app, lambda done=done: bool(done), 120):
            raise RuntimeError("Cancel did not end the worker within 120 s")
        latencies.append(done[0] - pressed)
        _process_until(app, lambda: not widget.is_running, 30)
        meta = viewer.layers["photo deblurred (partial)"].metadata
        iterations.append(meta["iterations"])
        finished_early.append(meta["settings"].get("finished_early"))
    viewer.close()
    return {"repeats": repeats, "after": afters, "size": size, "latencies": latencies,
            "median": statistics.median(latencies), "max": max(latencies),
            "iterations_at_cancel": iterations, "finished_early": finished_early}


def machine() -> str:
    import torch

    cores = os.cpu_count()
    return f"{cores}-core CPU ({platform.machine()}), torch {torch.__version__}, " \
           f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}"


def report(api: dict, widget: dict, cancel: dict, command: str) -> str:
    def growth(r: dict) -> str:
        return f"{100 * (r['rss_last'] - r['rss_first']) / r['rss_first']:+.1f} %"

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# Long use: many runs in one process, Cancel latency",
        "",
        f"Measured by `{command}` on {date}, {machine()}, commit {commit} (the machine shared "
        "with other jobs only through `flock /tmp/cpu.lock`).",
        "",
        "## Consecutive runs",
        "",
        "RSS is the process's resident memory (`VmRSS`) after the run; threads are Python "
        "threads (for the widget, not counting Qt's idle pool threads, which Qt ends itself "
        "after 30 s).",
        "",
        "| runs | where | RSS after the first (MB) | after the last (MB) | growth | max (MB) | "
        "threads before -> after | wall time (s) |",
        "|---:|---|---:|---:|---:|---:|---|---:|",
        f"| {api['runs']} | `deblur` (48 x 48, tiny generator, 20 iterations) | "
        f"{api['rss_first']:.0f} | {api['rss_last']:.0f} | {growth(api)} | "
        f"{api['rss_max']:.0f} | {api['threads_before']} -> {api['threads_after']} | "
        f"{api['seconds']:.1f} |",
        f"| {widget['runs']} | the widget in a napari viewer (48 x 48, 8 channels, 20 "
        f"iterations) | {widget['rss_first']:.0f} | {widget['rss_last']:.0f} | "
        f"{growth(widget)} | {widget['rss_max']:.0f} | {widget['threads_before']} -> "
        f"{widget['threads_after']} | {widget['seconds']:.1f} |",
        "",
        f"After the widget's runs: {widget['pool_active_after']} worker threads still running "
        f"in Qt's pool; layers {widget['layers']} (the outputs are updated in place, not "
        f"added again); input layer unchanged: {widget['input_unchanged']}.",
        "",
        "## Cancel",
        "",
        f"The widget on a {cancel['size']} x {cancel['size']} image (`blurred_photo`, 15 x 15 "
        "kernel), preset `fast` on the CPU; Cancel pressed after the run's iteration "
        f"{' or '.join(str(a) for a in cancel['after'])} (a few later "
        "where the main thread was busy); time from Cancel to the "
        "worker's `finished` signal. This includes what Cancel does for `fast`: the non-blind "
        "deconvolution of the whole image with the kernel so far "
        "(`napari_dip_deblur.finish_early`; the image is left as the last iterate where that "
        "kernel is still too near its start).",
        "",
        "| repeat | iterations done | deconvolved with the kernel so far "
        "| Cancel -> finished (s) |",
        "|---:|---:|---|---:|",
        *(f"| {i + 1} | {n} | {'yes' if fe else 'no'} | {t:.2f} |" for i, (n, fe, t) in
          enumerate(zip(cancel["iterations_at_cancel"], cancel["finished_early"],
                        cancel["latencies"], strict=True))),
        "",
        f"Median {cancel['median']:.2f} s, maximum {cancel['max']:.2f} s over "
        f"{len(cancel['latencies'])} cancels.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api-runs", type=int, default=50)
    parser.add_argument("--widget-runs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cancel-after", type=int, nargs="+", default=[20, 200],
                        help="iterations done before Cancel is pressed (each, --repeats times)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    command = "QT_QPA_PLATFORM=xcb xvfb-run -a flock /tmp/cpu.lock .venv/bin/python " \
              + shlex.join(["benchmarks/long_use.py", *(argv if argv is not None
                                                         else sys.argv[1:])])
    from qtpy.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])  # napari needs one
    api = measure_api(args.api_runs)
    print("api", api, flush=True)
    widget = measure_widget(args.widget_runs)
    print("widget", widget, flush=True)
    cancel = measure_cancel(args.repeats, args.cancel_after, args.size)
    print("cancel", cancel, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(api, widget, cancel, command))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
