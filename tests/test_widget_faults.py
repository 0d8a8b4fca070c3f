"""The dock widget under faults, in a real viewer (Xvfb + xcb): the input layer removed, the
viewer closed or the layer's data replaced during a run, Run on an image too large for
memory, a layer with NaNs. Each ends with a message in napari's notification area, no
exception escaping (pytest-qt fails a test on an exception in a Qt callback), no worker
thread left running and the input layer's data unchanged.

Runs are tiny (32 x 32 image, 5 x 5 kernel, ``channels=8, levels=2``). Nothing waits on
timing between threads: every wait is ``qtbot.waitUntil`` with a generous timeout.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from conftest import WIDGET_TINY, wait_idle
from napari_dip_deblur._widget import PARTIAL_SUFFIX, SCOPE_SHARED, DeblurWidget

FAST = WIDGET_TINY
LONG = 100_000  # iterations: a run that only a fault ends


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def notifications():
    """Every notification napari shows from now on, as ``(severity, message)``."""
    from napari.utils.notifications import notification_manager

    seen: list[tuple[str, str]] = []

    def record(notification: Any) -> None:
        seen.append((str(notification.severity), str(notification.message)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


def _pool_threads() -> int:
    """Worker threads running now (napari's workers run in Qt's global thread pool)."""
    from qtpy.QtCore import QThreadPool

    return QThreadPool.globalInstance().activeThreadCount()


def _python_threads() -> int:
    """Python threads that are not Qt pool threads seen from Python (those stay listed,
    idle, as dummy threads once a worker has run on them)."""
    return sum(not isinstance(t, threading._DummyThread) for t in threading.enumerate())


def _no_thread_left(qtbot: Any, python_threads: int) -> None:
    qtbot.waitUntil(lambda: _pool_threads() == 0, timeout=30_000)
    assert _python_threads() <= python_threads


def _messages(seen: list[tuple[str, str]], severity: str | None = None) -> list[str]:
    return [m for s, m in seen if severity is None or s == severity]


def _start_long_run(viewer: Any, widget: DeblurWidget, qtbot: Any, name: str = "cells") -> Any:
    widget._iterations.value = LONG
    widget._update_every.value = 2
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: f"{name} deblurred" in viewer.layers, timeout=30_000)
    return worker


# ---------------------------------------------------------------------- removed, closed
@pytest.mark.parametrize("stack", [False, True], ids=["plane", "stack"])
def test_removing_the_input_layer_stops_the_run_and_says_so(viewer_widget, blurry, qtbot,
                                                           notifications, stack):
    viewer, widget = viewer_widget
    threads = _python_threads()
    data = np.stack([blurry, blurry[::-1]]) if stack else blurry.copy()
    cells = viewer.add_image(data, name="cells")
    before = data.tobytes()
    if stack:
        widget._scope.value = SCOPE_SHARED
    _start_long_run(viewer, widget, qtbot)

    viewer.layers.remove(cells)
    wait_idle(widget, qtbot)

    warnings = _messages(notifications, "warning")
    assert len(warnings) == 1 and "'cells' was removed" in warnings[0], notifications
    assert "stopped" in warnings[0]
    assert not _messages(notifications, "error"), notifications
    assert "cells" not in viewer.layers
    partial = viewer.layers["cells deblurred" + PARTIAL_SUFFIX]
    assert partial.metadata["partial"] is True
    assert widget._run_button.text == "Run" and widget._run_button.enabled
    assert data.tobytes() == before
    _no_thread_left(qtbot, threads)


def test_closing_the_viewer_during_a_run_stops_it_and_says_so(make_napari_viewer, blurry,
                                                              qtbot, notifications):
    threads = _python_threads()
    viewer = make_napari_viewer()
    widget = DeblurWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.extra_overrides = dict(FAST)
    widget._kernel_h.value = widget._kernel_w.value = 5
    data = blurry.copy()
    viewer.add_image(data, name="cells")
    worker = _start_long_run(viewer, widget, qtbot)
    finished = []
    worker.finished.connect(lambda: finished.append(True))

    viewer.close()
    qtbot.waitUntil(lambda: bool(finished), timeout=30_000)

    infos = _messages(notifications, "info")
    assert any("'cells'" in m and "viewer was closed" in m for m in infos), notifications
    assert not _messages(notifications, "error"), notifications
    assert widget.worker is None
    np.testing.assert_array_equal(data, blurry)
    _no_thread_left(qtbot, threads)


# ---------------------------------------------------------------------- data replaced
@pytest.mark.parametrize("stack", [False, True], ids=["plane", "stack"])
def test_replacing_the_layers_data_during_a_run_warns_and_uses_the_data_it_started_with(
        viewer_widget, blurry, qtbot, notifications, stack):
    viewer, widget = viewer_widget
    threads = _python_threads()
    data = np.stack([blurry, blurry.T]) if stack else blurry.copy()
    cells = viewer.add_image(data, name="cells")
    before = data.tobytes()
    if stack:
        widget._scope.value = SCOPE_SHARED
    _start_long_run(viewer, widget, qtbot)

    replacement = np.zeros((2, 40, 40) if stack else (40, 40), np.float32)
    cells.data = replacement
    qtbot.waitUntil(lambda: len(_messages(notifications, "warning")) > 0, timeout=30_000)
    assert widget.is_running  # the run goes on, on the data it was given
    widget.cancel()
    wait_idle(widget, qtbot)

    warnings = _messages(notifications, "warning")
    assert len(warnings) == 1, notifications
    assert "data of 'cells' changed during the run" in warnings[0]
    assert not _messages(notifications, "error"), notifications
    out = viewer.layers["cells deblurred" + PARTIAL_SUFFIX]
    assert out.data.shape == data.shape  # the data it started with, not the replacement
    assert out.metadata["input_changed"] is True
    assert data.tobytes() == before
    assert not replacement.any() and cells.data is replacement
    _no_thread_left(qtbot, threads)


# ---------------------------------------------------------------------- refused up front
def test_an_image_too_large_for_memory_is_refused_before_anything_is_copied(
        viewer_widget, qtbot, notifications, monkeypatch):
    monkeypatch.delenv("DIP_DEBLUR_SKIP_MEMORY_CHECK", raising=False)
    viewer, widget = viewer_widget
    threads = _python_threads()
    # 4096 x 4096 with the selfdeblur generator (128 channels, non-local blocks, no crop):
    # estimated at several hundred GB, far beyond any machine this runs on.
    big = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
    viewer.add_image(big, name="big")
    before = big.tobytes()
    widget.extra_overrides = {}
    widget._preset.value = "selfdeblur"
    widget._device.value = "cpu"
    # A stack of 2**24 planes of 64 x 64 (a broadcast view: 256 GB that take no memory):
    # restoring all planes needs the data several times over.
    stack = np.broadcast_to(np.arange(64 * 64, dtype=np.float32).reshape(64, 64),
                            (2**24, 64, 64))
    huge = viewer.add_image(stack, name="huge", contrast_limits=(0, 4096))

    assert widget.run(viewer.layers["big"]) is None
    widget._preset.value = "fast"
    widget.extra_overrides = dict(FAST)
    widget._image.value = huge
    widget._scope.value = SCOPE_SHARED
    assert widget.run(huge) is None

    errors = _messages(notifications, "error")
    assert len(errors) == 2, notifications
    for error, name in zip(errors, ("big", "huge"), strict=True):
        assert f"Deblurring {name!r} failed: not enough RAM" in error
        assert "GB is available" in error
    assert not widget.is_running and widget._run_button.text == "Run"
    assert [lyr.name for lyr in viewer.layers] == ["big", "huge"]
    assert big.tobytes() == before
    _no_thread_left(qtbot, threads)


def test_a_layer_with_nans_is_refused_with_a_message(viewer_widget, blurry, qtbot,
                                                     notifications):
    viewer, widget = viewer_widget
    threads = _python_threads()
    nan = blurry.copy()
    nan[3, 4] = np.nan
    layer = viewer.add_image(nan, name="with nan")
    before = nan.tobytes()
    widget._iterations.value = 2
    widget.run(layer)
    wait_idle(widget, qtbot)

    errors = _messages(notifications, "error")
    assert len(errors) == 1 and "'with nan' failed" in errors[0] and "NaN" in errors[0]
    assert [lyr.name for lyr in viewer.layers] == ["with nan"]
    assert widget._run_button.text == "Run" and widget._run_button.enabled
    assert nan.tobytes() == before
    _no_thread_left(qtbot, threads)


# ---------------------------------------------------------------------- long use
def test_consecutive_runs_leave_no_thread_and_no_extra_layer(viewer_widget, blurry, qtbot):
    # the long version, with memory: benchmarks/long_use.py (docs/benchmarks/long-use.md)
    viewer, widget = viewer_widget
    threads = _python_threads()
    cells = viewer.add_image(blurry, name="cells")
    before = blurry.tobytes()
    widget._iterations.value = 3
    outputs = set()
    for seed in range(5):
        widget._seed.value = seed
        assert widget.run(cells) is not None
        wait_idle(widget, qtbot)
        assert viewer.layers["cells deblurred"].metadata["seed"] == seed
        outputs.add(id(viewer.layers["cells deblurred"]))
    assert [lyr.name for lyr in viewer.layers] == ["cells", "cells deblurred", "cells kernel"]
    assert len(outputs) == 1  # updated in place, run after run
    assert cells.data.tobytes() == before
    _no_thread_left(qtbot, threads)
