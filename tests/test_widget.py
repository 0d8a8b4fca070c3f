"""The dock widget, driven in a real viewer (Xvfb + xcb, started by pytest-xvfb).

Runs are tiny (32 x 32 image, 5 x 5 kernel, ``channels=8, levels=2``) so that the whole
module takes well under a minute on two CPU cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from conftest import WIDGET_TINY, wait_idle
from napari_dip_deblur._layer_data import locate_plane, plane_from_layer
from napari_dip_deblur._widget import PARTIAL_SUFFIX, DeblurWidget
from napari_dip_deblur.samples import blurred_photo

# Small and quick; one start (fast runs two, each to the end: the starts test has its own).
FAST = WIDGET_TINY


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _errors_since(n: int) -> list[str]:
    from napari.utils.notifications import NotificationSeverity, notification_manager

    return [
        str(r.message)
        for r in notification_manager.records[n:]
        if r.severity == NotificationSeverity.ERROR
    ]


def _n_records() -> int:
    from napari.utils.notifications import notification_manager

    return len(notification_manager.records)


def _count_data_events(viewer) -> dict[str, int]:
    """Count ``events.data`` of every layer added from now on, by (initial) name."""
    counts: dict[str, int] = {}

    def on_insert(event):
        name = event.value.name
        counts.setdefault(name, 0)

        def bump(_e, name=name):
            counts[name] += 1

        event.value.events.data.connect(bump)

    viewer.layers.events.inserted.connect(on_insert)
    return counts


# ---------------------------------------------------------------------- the plane helper
def test_plane_of_a_stack_follows_the_sliders(make_napari_viewer):
    viewer = make_napari_viewer()
    stack = np.arange(3 * 4 * 20 * 24, dtype=np.float32).reshape(3, 4, 20, 24)
    layer = viewer.add_image(stack, name="stack", scale=(1, 1, 0.5, 2), translate=(0, 0, 3, 4))
    viewer.dims.axis_labels = ("t", "z", "y", "x")
    viewer.dims.current_step = (2, 1, 0, 0)
    dims = viewer.dims
    plane = plane_from_layer(layer, dims.point, dims.displayed, dims.axis_labels)
    np.testing.assert_array_equal(plane.data, stack[2, 1])
    assert not np.shares_memory(plane.data, layer.data)
    loc = plane.location
    assert loc.label == "t=2, z=1"
    assert loc.position == {0: 2, 1: 1}
    assert loc.scale == (0.5, 2.0) and loc.translate == (3.0, 4.0)
    # another pair of displayed axes: the plane is (z, x) at t=2, y=row of the slider
    viewer.dims.order = (0, 2, 1, 3)
    viewer.dims.current_step = (2, 1, 10, 0)
    loc = locate_plane(layer, dims.point, dims.displayed, dims.axis_labels)
    assert loc.axes == (1, 3) and loc.label == f"t=2, y={loc.position[2]}"


def test_plane_keeps_the_colour_axis_and_refuses_what_it_cannot_deblur(make_napari_viewer):
    viewer = make_napari_viewer()
    data = np.arange(2 * 20 * 20 * 3, dtype=np.uint8).reshape(2, 20, 20, 3)
    rgb = viewer.add_image(data, rgb=True, name="rgb")
    viewer.dims.current_step = (1, 0, 0)
    dims = viewer.dims
    plane = plane_from_layer(rgb, dims.point, dims.displayed, dims.axis_labels)
    np.testing.assert_array_equal(plane.data, data[1])
    assert plane.location.rgb and plane.location.stack_axes == (0,)
    labels = viewer.add_labels(np.zeros((20, 20), np.int32), name="labels")
    with pytest.raises(TypeError, match="Labels layer"):
        plane_from_layer(labels)
    with pytest.raises(ValueError, match="2-D display"):
        plane_from_layer(viewer.add_image(np.zeros((4, 20, 20))), None, (0, 1, 2))


# ---------------------------------------------------------------------- the widget
def test_widget_imports_no_torch():
    code = (
        "import sys, napari_dip_deblur._widget, napari_dip_deblur._sample_data, "
        "napari_dip_deblur._writer; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_widget_lists_image_layers_only(viewer_widget, blurry):
    viewer, widget = viewer_widget
    assert widget._image.value is None
    viewer.add_labels(np.zeros((32, 32), np.int32), name="labels")
    viewer.add_points([[1, 1]], name="points")
    viewer.add_image(blurry, name="cells")
    viewer.add_image(np.stack([blurry] * 3), name="stack")
    assert [name for name, _ in widget._image_layer_choices()] == ["cells", "stack"]
    assert widget._image.choices == (viewer.layers["cells"], viewer.layers["stack"])
    viewer.layers["cells"].name = "renamed"
    combo = widget._image.native
    assert sorted(combo.itemText(i) for i in range(combo.count())) == ["renamed", "stack"]
    widget._image.value = viewer.layers["stack"]
    viewer.dims.current_step = (1, 0, 0)
    assert widget._plane.value == "axis -3=1"
    del viewer.layers["stack"]
    assert widget._image.value is viewer.layers["renamed"]
    assert widget._plane.value == "2-D image"


def test_advanced_section_passes_changed_values_as_overrides(viewer_widget):
    _, widget = viewer_widget
    box = widget._advanced_box.native  # the window is not shown: ask Qt if it is hidden
    assert box.isHidden()
    widget._show_advanced.value = True
    assert not box.isHidden()
    widget.extra_overrides = {}
    widget._preset.value = "staged"
    adv = widget._advanced
    assert adv["stage2_start"].enabled and adv["tv_weight"].enabled
    assert (adv["stage2_start"].value, adv["stage3_start"].value) == (0.2, 0.5)
    assert widget.overrides() == {}
    adv["tv_weight"].value = 0.05
    adv["kernel_lr"].value = 0.0002
    assert widget.overrides() == {"tv_weight": 0.05, "kernel_lr": 0.0002}
    assert widget._iterations.tooltip == "0 = the preset's default (5000)"
    widget._preset.value = "fast"  # resets to the preset's values; staged knobs unused
    assert widget._iterations.tooltip == ("0 = the preset's default (600 for kernels under "
                                          "21 px, else 440)")
    assert not adv["tv_weight"].enabled
    assert adv["kernel_lr"].value == pytest.approx(3e-4)
    adv["tv_weight"].value = 0.5
    assert widget.overrides() == {}
    widget._kernel_h.value = 8
    assert widget._kernel_h.value == 9


def test_run_adds_then_updates_layers_and_records_everything(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    cells = viewer.add_image(blurry, name="cells", scale=(2.0, 0.5), translate=(10.0, -3.0))
    cells.contrast_limits = (0.1, 0.8)
    before = cells.data.tobytes()
    counts = _count_data_events(viewer)
    widget._iterations.value = 6
    widget._update_every.value = 2
    widget._seed.value = 3

    widget._run_button.native.click()  # Run
    assert widget.is_running and widget._run_button.text == "Cancel"
    assert widget.worker.pbar.total == 6  # napari's activity dock
    wait_idle(widget, qtbot)

    assert widget._run_button.text == "Run"
    assert [lyr.name for lyr in viewer.layers] == ["cells", "cells deblurred", "cells kernel"]
    out, kernel = viewer.layers["cells deblurred"], viewer.layers["cells kernel"]
    # added at iteration 1, then replaced at 2, 4 and 6
    assert counts["cells deblurred"] >= 2 and counts["cells kernel"] >= 2
    assert out.data.shape == (32, 32) and kernel.data.shape == (5, 5)
    assert out.scale.tolist() == [2.0, 0.5] and out.translate.tolist() == [10.0, -3.0]
    # The kernel sits beside the image (right of its last column), magnified 32 / (3 * 5).
    zoom = 32 / (3 * 5)
    assert kernel.scale.tolist() == pytest.approx([2.0 * zoom, 0.5 * zoom])
    assert kernel.translate[0] == 10.0 and kernel.translate[1] > -3.0 + 32 * 0.5
    assert tuple(out.contrast_limits) == pytest.approx((0.1, 0.8))
    assert tuple(kernel.contrast_limits) == pytest.approx((0.0, float(kernel.data.max())))
    meta = out.metadata
    assert meta["partial"] is False and meta["error"] is None
    assert meta["iterations"] == meta["iterations_total"] == 6
    assert meta["seed"] == 3 and meta["device"] == "cpu" and meta["preset"] == "fast"
    assert meta["kernel_size"] == [5, 5] and meta["source"] == "cells"
    assert meta["plane"] == "2-D image"
    assert meta["wall_time"] > 0
    assert len(meta["loss_history"]["loss"]) == 6
    assert meta["settings"]["channels"] == 8 and meta["settings"]["iterations"] == 6
    assert kernel.metadata["iterations"] == 6
    assert "done: 6/6" in widget._status.value
    assert cells.data.tobytes() == before and cells.metadata == {}

    # a second run replaces the outputs' data: no new layers
    first = out.data.copy()
    widget._seed.value = 4
    widget.run()
    wait_idle(widget, qtbot)
    assert len(viewer.layers) == 3
    assert viewer.layers["cells deblurred"] is out and out.metadata["seed"] == 4
    assert not np.array_equal(out.data, first)
    assert cells.data.tobytes() == before


def test_the_status_tells_of_the_fit_checks_second_attempt(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(blurry, name="cells")
    widget.extra_overrides = {**FAST, "retry_mae_ratio": 1e-6}  # no fit meets it
    widget._iterations.value = 3
    statuses = []
    # Every status the widget shows, recorded as it is set (in the main thread): connected
    # before the run starts, so no early update can be missed however fast the worker is.
    widget.status_changed.connect(statuses.append)
    widget.run()
    wait_idle(widget, qtbot)
    assert any("second attempt, from a centred kernel" in text for text in statuses), statuses
    assert "done: 6/6 iterations" in widget._status.value
    assert "the first fit failed the fit check; kept the " in widget._status.value
    meta = viewer.layers["cells deblurred"].metadata
    assert meta["iterations"] == meta["iterations_total"] == 6
    assert meta["settings"]["kept_attempt"] in (1, 2)


def test_the_status_tells_which_start_runs_and_which_was_kept(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(blurry, name="cells")
    widget.extra_overrides = {"channels": 8, "levels": 2, "start_trial": 0.5}
    assert widget._starts.value == 2 and "starts" not in widget.overrides()  # fast's own
    widget._starts.value = 1  # the Advanced control
    assert widget.overrides()["starts"] == 1
    widget._starts.value = 2
    assert "starts" not in widget.overrides()
    widget._iterations.value = 4
    widget._update_every.value = 1
    statuses = []
    widget.status_changed.connect(statuses.append)  # before the run: nothing is missed
    widget.run()
    wait_idle(widget, qtbot)
    assert any("(start 2 of 2: the sharpest after 2 iterations goes on)" in text
               for text in statuses), statuses
    assert "done: 6/6 iterations" in widget._status.value
    assert "kept start " in widget._status.value and " of 2, the sharpest" in widget._status.value
    meta = viewer.layers["cells deblurred"].metadata
    assert meta["settings"]["kept_start"] in (1, 2)


def test_cancel_stops_quickly_and_keeps_a_partial_result(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    cells = viewer.add_image(blurry, name="cells")
    before = cells.data.tobytes()
    widget._iterations.value = 100_000
    widget._update_every.value = 100_000  # no updates after the first: cancel must not wait
    widget.run()
    qtbot.waitUntil(lambda: "cells deblurred" in viewer.layers, timeout=30_000)
    qtbot.wait(300)
    start = time.monotonic()
    widget._run_button.native.click()  # Cancel
    wait_idle(widget, qtbot, timeout=5_000)
    assert time.monotonic() - start < 2.0

    assert [lyr.name for lyr in viewer.layers] == [
        "cells",
        "cells deblurred" + PARTIAL_SUFFIX,
        "cells kernel" + PARTIAL_SUFFIX,
    ]
    meta = viewer.layers[1].metadata
    assert meta["partial"] is True
    assert 1 < meta["iterations"] < 100_000 == meta["iterations_total"]
    assert len(meta["loss_history"]["loss"]) == meta["iterations"]
    assert "cancelled" in widget._status.value
    assert cells.data.tobytes() == before

    # the next run takes the partial layers back over
    widget._iterations.value = 2
    widget.run()
    wait_idle(widget, qtbot)
    assert [lyr.name for lyr in viewer.layers] == ["cells", "cells deblurred", "cells kernel"]
    assert viewer.layers[1].metadata["partial"] is False


def test_cancel_of_a_crop_run_restores_the_whole_image(viewer_widget, qtbot):
    # fast fits a crop and only its final step restores the whole image: on Cancel the
    # partial result is that step with the kernel so far, not the input with a crop pasted
    viewer, widget = viewer_widget
    sample = blurred_photo(size=96, kernel_size=5)
    cells = viewer.add_image(sample.blurry, name="cells")
    # started from the true kernel, so that it can be deconvolved with whenever it stops
    widget.extra_overrides = {**FAST, "estimation_crop": 48, "initial_kernel": sample.kernel}
    widget._iterations.value = 100_000
    widget._update_every.value = 100_000  # the first iterate is shown, then no more
    widget.run()
    qtbot.waitUntil(lambda: "cells deblurred" in viewer.layers, timeout=30_000)
    qtbot.wait(300)
    live = viewer.layers["cells deblurred"]
    y0, x0, h, w = live.metadata["settings"]["estimation_region"]
    outside = np.ones(sample.blurry.shape, bool)
    outside[y0:y0 + h, x0:x0 + w] = False
    np.testing.assert_array_equal(live.data[outside], sample.blurry[outside])  # while it runs
    widget.cancel()
    wait_idle(widget, qtbot, timeout=10_000)
    restored = viewer.layers["cells deblurred" + PARTIAL_SUFFIX]
    assert restored.metadata["settings"]["finished_early"] is True
    assert restored.metadata["partial"] is True
    assert "then deconvolved with that kernel" in widget._status.value
    change = np.abs(restored.data[outside] - sample.blurry[outside]).mean()
    assert change > 0.002 * np.ptp(sample.blurry), change  # exactly 0 before Cancel finished
    assert np.isfinite(restored.data).all() and restored.data.shape == sample.blurry.shape
    np.testing.assert_array_equal(cells.data, sample.blurry)  # the input is untouched


def test_bad_inputs_show_an_error_and_leave_the_viewer_usable(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    cells = viewer.add_image(blurry, name="cells")
    nan = blurry.copy()
    nan[3, 4] = np.nan
    with_nan = viewer.add_image(nan, name="with nan")
    labels = viewer.add_labels(np.zeros((32, 32), np.int32), name="labels")
    rgb = viewer.add_image(np.zeros((32, 32, 3), np.uint8), name="rgb", rgb=True)
    widget._iterations.value = 2

    cases = [
        (cells, 41, "larger than the image"),  # ValueError from deblur_iter, in the worker
        (with_nan, 5, "NaN"),
        (labels, 5, "Labels layer"),  # refused before a worker starts
        (rgb, 5, "constant"),  # a colour run (restore_iter) refuses a constant image
    ]
    for layer, ksize, words in cases:
        widget._kernel_h.value = widget._kernel_w.value = ksize
        n = _n_records()
        widget.run(layer)
        wait_idle(widget, qtbot)
        errors = _errors_since(n)
        assert len(errors) == 1 and words in errors[0], (layer.name, errors)
        assert "failed" in widget._status.value
        assert widget._run_button.text == "Run" and widget._run_button.enabled
        assert len(viewer.layers) == 4  # no output layers

    # a bad Advanced setting (stage 3 before stage 2) is refused by the API, same route
    widget._image.value = cells
    widget._preset.value = "staged"
    widget._advanced["stage2_start"].value = 0.6
    widget._advanced["stage3_start"].value = 0.3
    n = _n_records()
    widget.run()
    wait_idle(widget, qtbot)
    errors = _errors_since(n)
    assert len(errors) == 1 and "phase starts must increase" in errors[0], errors
    assert len(viewer.layers) == 4
    widget._preset.value = "fast"

    # still usable: a good run goes through
    widget._kernel_h.value = widget._kernel_w.value = 5
    widget._image.value = cells
    widget.run()
    wait_idle(widget, qtbot)
    assert viewer.layers["cells deblurred"].metadata["partial"] is False
    assert np.isnan(with_nan.data[3, 4])  # inputs untouched


def test_an_error_mid_run_keeps_the_last_iterate(viewer_widget, blurry, qtbot, monkeypatch):
    """torch errors are RuntimeErrors, which superqt's worker would swallow silently."""
    import napari_dip_deblur
    from napari_dip_deblur.api import DeblurDivergedError

    real = napari_dip_deblur.deblur_iter

    def diverging(image, kernel_size, **kwargs):
        snapshots = real(image, kernel_size, **kwargs)
        for snap in snapshots:
            yield snap
            if snap.step == 3:
                raise DeblurDivergedError("the loss is NaN", snap)

    monkeypatch.setattr(napari_dip_deblur, "deblur_iter", diverging)
    viewer, widget = viewer_widget
    viewer.add_image(blurry, name="cells")
    widget._iterations.value = 50
    n = _n_records()
    widget.run()
    wait_idle(widget, qtbot)
    errors = _errors_since(n)
    assert len(errors) == 1 and "the loss is NaN" in errors[0]
    out = viewer.layers["cells deblurred" + PARTIAL_SUFFIX]
    assert out.metadata["partial"] is True and out.metadata["iterations"] == 3
    assert "the loss is NaN" in out.metadata["error"]
    assert widget._run_button.text == "Run"


def test_deblurs_the_displayed_plane_of_a_stack(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    stack = np.stack([blurry, blurry[::-1], blurry.T])
    layer = viewer.add_image(stack, name="stack", scale=(5.0, 1.5, 1.5))
    viewer.dims.current_step = (2, 0, 0)
    assert widget._plane.value == "axis -3=2"
    widget._iterations.value = 2
    widget.run()
    wait_idle(widget, qtbot)
    out = viewer.layers["stack deblurred"]
    assert out.ndim == 2 and out.scale.tolist() == [1.5, 1.5]
    assert out.metadata["plane_index"] == {"0": 2} and out.metadata["plane"] == "axis -3=2"
    assert layer.data.tobytes() == stack.tobytes()


def test_closing_the_viewer_mid_run_stops_the_worker(make_napari_viewer, blurry, qtbot):
    viewer = make_napari_viewer()
    widget = DeblurWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.extra_overrides = dict(FAST)
    widget._kernel_h.value = widget._kernel_w.value = 5
    viewer.add_image(blurry, name="cells")
    widget._iterations.value = 100_000
    worker = widget.run()
    qtbot.waitUntil(lambda: "cells deblurred" in viewer.layers, timeout=30_000)
    finished = []
    worker.finished.connect(lambda: finished.append(True))
    viewer.close()
    qtbot.waitUntil(lambda: bool(finished), timeout=2_000)
    assert widget.worker is None


def test_widget_starts_on_the_active_image(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-dip-deblur", "blurred_photo")  # "camera" is added last
    widget = DeblurWidget(viewer)
    assert widget._image.value is viewer.layers["camera"]
    assert widget._plane.value == "2-D image"
    widget.native.deleteLater()


# ---------------------------------------------------------------------- colour, stacks, regions
def _rgb(blurry: np.ndarray) -> np.ndarray:
    return np.rint(np.stack([blurry, 0.8 * blurry, 0.5 * blurry], -1) * 255).astype(np.uint8)


def test_rgb_layer_gives_an_rgb_result(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    data = _rgb(blurry)
    layer = viewer.add_image(data, name="photo", rgb=True, scale=(2.0, 2.0))
    assert widget._plane.value == "2-D image (colour)"
    assert widget._scope.native.isHidden()  # no planes to choose from
    widget._iterations.value = 3
    widget.run()
    wait_idle(widget, qtbot)

    out, kernel = viewer.layers["photo deblurred"], viewer.layers["photo kernel"]
    assert out.rgb and out.data.shape == (32, 32, 3) and out.data.dtype == np.float32
    assert out.scale.tolist() == [2.0, 2.0]
    assert kernel.data.shape == (5, 5) and kernel.data.sum() == pytest.approx(1, abs=1e-5)
    meta = out.metadata
    assert meta["partial"] is False and meta["rgb"] is True and meta["mode"] == "single"
    assert meta["settings"]["colour"]["luminance_weights"] == "rec601"
    assert meta["planes_restored"] == [0] and meta["iterations"] == 3
    assert not np.array_equal(out.data, data.astype(np.float32))
    assert layer.data.tobytes() == data.tobytes()
    assert "done" in widget._status.value


@pytest.mark.parametrize("scope", ["all planes, one kernel", "all planes, a kernel each"])
def test_all_planes_give_a_stack_of_the_same_shape(viewer_widget, blurry, qtbot, scope):
    viewer, widget = viewer_widget
    stack = np.stack([blurry, blurry[::-1], blurry.T]).astype(np.float32)
    layer = viewer.add_image(stack, name="stack", scale=(5.0, 1.5, 1.5),
                             translate=(1.0, 2.0, 3.0))
    viewer.dims.current_step = (1, 0, 0)
    assert not widget._scope.native.isHidden()
    widget._scope.value = scope
    widget._iterations.value = 3
    widget.run()
    wait_idle(widget, qtbot)

    out, kernel = viewer.layers["stack deblurred"], viewer.layers["stack kernel"]
    assert out.data.shape == stack.shape and out.data.dtype == np.float32
    assert out.scale.tolist() == [5.0, 1.5, 1.5] and out.translate.tolist() == [1.0, 2.0, 3.0]
    meta = out.metadata
    assert meta["partial"] is False and meta["scope"] == scope
    assert meta["n_planes"] == 3 and meta["planes_restored"] == [0, 1, 2]
    assert meta["plane"] == "all planes"
    for i in range(3):  # every plane restored
        assert not np.array_equal(out.data[i], stack[i])
    if scope == "all planes, one kernel":
        assert meta["mode"] == "shared" and meta["reference"] == [1]  # the displayed plane
        assert kernel.data.shape == (5, 5)
    else:
        assert meta["mode"] == "per_plane" and meta["reference"] is None
        assert kernel.data.shape == (3, 5, 5)
        assert kernel.data.sum(axis=(1, 2)) == pytest.approx([1, 1, 1], abs=1e-5)
        assert kernel.scale[0] == 5.0 and kernel.translate[0] == 1.0
    assert layer.data.tobytes() == stack.tobytes()


def test_region_from_a_shapes_rectangle_is_used(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    image = blurred_photo(size=48, kernel_size=5).blurry
    layer = viewer.add_image(image, name="big", scale=(2.0, 2.0), translate=(10.0, 0.0))
    # drawn in world coordinates: pixels 4..35 (rows) and 8..39 (columns)
    corners = np.array([[10 + 2 * 3.6, 2 * 7.5], [10 + 2 * 35.5, 2 * 39.4]])
    viewer.add_shapes([corners], shape_type="rectangle", name="roi")
    widget._image.value = layer
    widget._region.value = "rectangle in a Shapes layer"
    assert not widget._shapes.native.isHidden()
    assert widget._shapes.value is viewer.layers["roi"]
    widget._iterations.value = 3
    widget.run()
    wait_idle(widget, qtbot)

    out = viewer.layers["big deblurred"]
    assert out.data.shape == (48, 48) and out.metadata["partial"] is False
    region = out.metadata["region"]
    assert region["shapes_layer"] == "roi"
    assert region["rectangle"] == [4, 8, 32, 32]
    assert out.metadata["regions"] == [[4, 8, 32, 32]]
    assert out.scale.tolist() == [2.0, 2.0]
    assert layer.data.tobytes() == image.tobytes()


def test_region_without_a_rectangle_is_refused(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(blurry, name="cells")
    viewer.add_shapes([np.array([[1, 1], [20, 20]])], shape_type="line", name="lines")
    widget._region.value = "rectangle in a Shapes layer"
    n = _n_records()
    assert widget.run() is None
    errors = _errors_since(n)
    assert len(errors) == 1 and "holds no rectangle" in errors[0]
    assert widget._run_button.text == "Run" and len(viewer.layers) == 2


def test_cancel_during_a_stack_run_keeps_finished_planes(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    stack = np.stack([blurry, blurry[::-1], blurry.T]).astype(np.float32)
    layer = viewer.add_image(stack, name="stack")
    widget._scope.value = "all planes, a kernel each"
    widget._iterations.value = 200
    widget._update_every.value = 50
    worker = widget.run()

    def cancel_after_the_first_plane(item: Any) -> None:  # runs after the widget's slot
        if getattr(item, "planes_done", 0) >= 1 and not widget._run.cancelled:
            widget.cancel()

    worker.yielded.connect(cancel_after_the_first_plane)
    wait_idle(widget, qtbot)

    out = viewer.layers["stack deblurred" + PARTIAL_SUFFIX]
    kernel = viewer.layers["stack kernel" + PARTIAL_SUFFIX]
    meta = out.metadata
    assert meta["partial"] is True and meta["settings"]["stopped"] is True
    # Cancel finishes the plane in hand: plane 1 if its blind run had begun (restored only
    # where its kernel so far could be deconvolved with), never plane 2.
    restored = meta["planes_restored"]
    assert restored in ([0], [0, 1])
    assert (restored == [0, 1]) is meta["settings"].get("finished_early", False)
    assert out.data.shape == stack.shape
    assert not np.array_equal(out.data[0], stack[0])
    for plane in (1, 2):
        assert np.array_equal(out.data[plane], stack[plane]) is (plane not in restored)
    assert kernel.data[0].sum() == pytest.approx(1, abs=1e-5)
    assert not kernel.data[2].any()
    assert "cancelled" in widget._status.value
    assert f"{len(restored)}/3 planes" in widget._status.value
    assert layer.data.tobytes() == stack.tobytes()


def test_cancel_during_a_colour_estimate_finishes_with_the_kernel_so_far(viewer_widget,
                                                                         blurry, qtbot):
    viewer, widget = viewer_widget
    photo = _rgb(blurry)
    layer = viewer.add_image(photo, name="photo", rgb=True)
    widget._iterations.value = 100_000
    widget._update_every.value = 100_000  # the first iterate is shown, then no more
    widget.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=30_000)
    widget._run_button.native.click()  # Cancel
    wait_idle(widget, qtbot, timeout=10_000)

    out = viewer.layers["photo deblurred" + PARTIAL_SUFFIX]
    settings = out.metadata["settings"]
    assert out.metadata["partial"] is True and settings["stopped"] is True
    assert out.metadata["iterations"] < 100_000
    # The image is the input deconvolved with the kernel so far, or, where that kernel was
    # still too near its flat start, the input itself; the status says which.
    if settings["finished_early"]:
        assert "with the kernel it had when cancelled" in widget._status.value
        assert not np.array_equal(out.data, photo.astype(np.float32))
    else:
        assert "too near its start" in widget._status.value
        np.testing.assert_array_equal(out.data, photo.astype(np.float32))
    assert "cancelled" in widget._status.value
    assert viewer.layers["photo kernel" + PARTIAL_SUFFIX].data.shape == (5, 5)
    assert layer.data.tobytes() == photo.tobytes()


def test_suggest_size_sets_the_kernel_size(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(_rgb(blurry), name="photo", rgb=True)
    widget._suggest_iterations.value = 5
    widget._kernel_h.value = widget._kernel_w.value = 3
    worker = widget.suggest()
    assert worker is not None and widget.is_suggesting
    assert widget._run_button.text == "Cancel" and widget.run() is None
    qtbot.waitUntil(lambda: not widget.is_suggesting, timeout=30_000)
    suggestion = widget.last_suggestion
    assert suggestion is not None
    assert (widget._kernel_h.value, widget._kernel_w.value) == suggestion.size
    assert suggestion.size[0] % 2 == 1 and suggestion.max_size == (11, 11)
    assert "suggested kernel size" in widget._status.value
    assert widget._run_button.enabled and widget._suggest_button.text == "Suggest size"


def test_cancel_stops_a_suggestion_and_keeps_the_kernel_size(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(blurry, name="cells")
    widget._suggest_iterations.value = 100_000  # would take far longer than the test
    widget._kernel_h.value, widget._kernel_w.value = 7, 5
    worker = widget.suggest()
    assert worker is not None
    steps: list[int] = []
    worker.yielded.connect(lambda snap: steps.append(snap.step))
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=60_000)  # it is running
    widget._run_button.changed.emit(True)  # the user presses Cancel
    assert widget._run_button.text == "Cancelling…"
    qtbot.waitUntil(lambda: not widget.is_suggesting, timeout=60_000)
    assert max(steps) < 100_000 and widget.last_suggestion is None
    assert (widget._kernel_h.value, widget._kernel_w.value) == (7, 5)
    assert "suggestion cancelled" in widget._status.value
    assert widget._run_button.text == "Run" and widget._run_button.enabled


def test_noise_aware_keeps_tv_in_the_last_interval(viewer_widget, blurry, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(blurry, name="cells")
    widget._noise_aware.value = True
    widget._noise_weight.value = 0.02
    widget._iterations.value = 2
    widget.run()
    wait_idle(widget, qtbot)
    meta = viewer.layers["cells deblurred"].metadata
    assert meta["noise_aware"] == pytest.approx(0.02) and meta["partial"] is False
    last = meta["settings"]["phases"][-1]
    terms = last["terms"] if isinstance(last, dict) else last.terms
    assert terms["tv"] == pytest.approx(0.02)


# ---------------------------------------------------------------------- a known kernel
def _psnr(image: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    error = np.mean((np.asarray(image, np.float64) - np.asarray(truth, np.float64)) ** 2)
    return float(10 * np.log10(data_range**2 / error))


@pytest.fixture
def no_blind_run(monkeypatch):
    """Any blind estimate fails the run (and so the test)."""
    import napari_dip_deblur
    import napari_dip_deblur.restore as restore_module

    def refuse(*args, **kwargs):
        raise AssertionError("a blind run was started")

    monkeypatch.setattr(restore_module, "deblur_iter", refuse)
    monkeypatch.setattr(napari_dip_deblur, "deblur_iter", refuse)


def test_a_known_kernel_restores_without_a_blind_run(viewer_widget, qtbot, no_blind_run):
    from napari_dip_deblur.restore import restore

    viewer, widget = viewer_widget
    sample = blurred_photo(size=32, kernel_size=5)
    cells = viewer.add_image(sample.blurry, name="cells", scale=(2.0, 2.0))
    psf = viewer.add_image(sample.kernel * 7, name="psf")  # not normalised: divided by its sum
    cells_before, psf_before = cells.data.tobytes(), psf.data.tobytes()
    widget._image.value = cells
    assert widget._known_kernel.value is None  # default: blind estimation
    assert widget._known_kernel.native.currentText() == "none (estimate it)"
    blind_only = [widget._kernel_h, widget._kernel_w, widget._suggest_button,
                  widget._region, widget._preset, widget._iterations, widget._device,
                  widget._seed, widget._update_every, widget._advanced_box]
    assert all(w.enabled for w in blind_only)

    widget._known_kernel.value = psf
    assert not any(w.enabled for w in blind_only)  # visibly unused
    assert widget._noise_aware.enabled and widget._run_button.enabled
    assert "Known kernel 'psf' (5x5)" in widget._kernel_hint.value
    errors_before = _n_records()
    widget._run_button.native.click()
    assert widget.is_running and "known kernel 'psf'" in widget._status.value
    wait_idle(widget, qtbot)

    assert _errors_since(errors_before) == []
    assert [lyr.name for lyr in viewer.layers] == ["cells", "psf", "cells deblurred"]
    out = viewer.layers["cells deblurred"]
    before = _psnr(sample.blurry, sample.sharp, 1.0)
    after = _psnr(out.data, sample.sharp, 1.0)
    assert after > before + 8, (before, after)  # measured: 32.61 -> 44.38 dB
    np.testing.assert_allclose(out.data, restore(sample.blurry, kernel=psf.data).image,
                               atol=1e-5)  # exactly the library's non-blind restoration
    assert out.data.shape == (32, 32) and out.scale.tolist() == [2.0, 2.0]
    meta = out.metadata
    assert meta["kernel_source"] == "given" and meta["kernel_layer"] == "psf"
    assert meta["kernel_size"] == [5, 5] and meta["partial"] is False
    assert meta["preset"] is None and meta["seed"] is None and meta["overrides"] == {}
    assert meta["iterations"] == 0 and meta["regions"] == [] and meta["planes_restored"] == [0]
    assert "known kernel 'psf'" in widget._status.value and "done" in widget._status.value
    assert cells.data.tobytes() == cells_before and psf.data.tobytes() == psf_before
    # still a known-kernel setup after the run; "none" gives the blind controls back
    assert not any(w.enabled for w in blind_only)
    widget._known_kernel.value = None
    assert all(w.enabled for w in blind_only)
    assert "longest blur streak" in widget._kernel_hint.value
    # the choice follows the layer: kept when it is renamed, "none" when it is deleted
    widget._known_kernel.value = psf
    psf.name = "measured psf"
    assert widget._known_kernel.value is psf and "'measured psf'" in widget._kernel_hint.value
    del viewer.layers["measured psf"]
    assert widget._known_kernel.value is None and all(w.enabled for w in blind_only)


def test_a_kernel_layer_of_an_earlier_run_restores_a_colour_stack(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    sample = blurred_photo(size=32, kernel_size=5)
    frames = np.stack([_rgb(sample.blurry), _rgb(sample.blurry)[::-1]])  # (2, 32, 32, 3)
    sharp = np.stack([_rgb(sample.sharp), _rgb(sample.sharp)[::-1]]) / 255
    clip = viewer.add_image(frames, name="clip", rgb=True)
    viewer.dims.current_step = (1, 0, 0)
    widget._scope.value = "all planes, a kernel each"
    widget._iterations.value = 3
    widget.run()  # an earlier blind run: "clip kernel" is a stack of kernels (not usable)
    wait_idle(widget, qtbot)
    widget._scope.value = "all planes, one kernel"
    widget.run()  # ... now a 2-D one
    wait_idle(widget, qtbot)
    kernel_layer = viewer.layers["clip kernel"]
    assert kernel_layer.data.shape == (5, 5)
    kernel_layer.data = sample.kernel.copy()  # as if that run had found the true kernel
    kernel_before = kernel_layer.data.tobytes()
    widget._scope.value = "all planes, a kernel each"

    widget._known_kernel.value = kernel_layer
    # nothing to estimate per plane: that choice is gone, the nearest is taken
    assert widget._scope.value == "all planes, one kernel"
    assert "all planes, a kernel each" not in widget._scope.choices
    widget.run()
    wait_idle(widget, qtbot)

    assert [lyr.name for lyr in viewer.layers] == ["clip", "clip deblurred", "clip kernel"]
    out = viewer.layers["clip deblurred"]
    assert out.rgb and out.data.shape == frames.shape
    for i in range(2):
        before = _psnr(frames[i] / 255, sharp[i], 1.0)
        after = _psnr(out.data[i] / 255, sharp[i], 1.0)
        assert after > before + 8, (i, before, after)  # measured: 34.60 -> 45.05 dB
    meta = out.metadata
    assert meta["kernel_layer"] == "clip kernel" and meta["mode"] == "shared"
    assert meta["planes_restored"] == [0, 1] and meta["partial"] is False
    assert kernel_layer.data.tobytes() == kernel_before  # the kernel layer is not written
    assert clip.data.tobytes() == frames.tobytes()
    widget._known_kernel.value = None
    assert "all planes, a kernel each" in widget._scope.choices


def test_a_bad_known_kernel_shows_the_error_and_adds_no_layer(viewer_widget, qtbot,
                                                              no_blind_run):
    viewer, widget = viewer_widget
    sample = blurred_photo(size=32, kernel_size=5)
    cells = viewer.add_image(sample.blurry, name="cells")
    cases = [
        (np.ones((3, 5, 5), np.float32), "kernel must be a 2-D array"),  # e.g. a kernel stack
        (np.ones((4, 4), np.float32), "kernel must have odd sides"),
        (np.pad([[-0.5]], 2, constant_values=0.1), "kernel has negative values"),
        (np.ones((33, 33), np.float32), "larger than the image planes"),
    ]
    kernels = [viewer.add_image(data, name=f"bad {i}") for i, (data, _) in enumerate(cases)]
    layers = list(viewer.layers)
    before = {lyr.name: lyr.data.tobytes() for lyr in layers}
    widget._image.value = cells
    checks = [(layer, words) for layer, (_, words) in zip(kernels, cases, strict=True)]
    checks.append((cells, "is the image being deblurred"))  # refused before a worker starts
    for layer, words in checks:
        widget._known_kernel.value = layer
        n = _n_records()
        widget.run()
        wait_idle(widget, qtbot)
        errors = _errors_since(n)
        assert len(errors) == 1 and words in errors[0], (layer.name, errors)
        assert errors[0].startswith("Deblurring 'cells' failed")
        assert "failed" in widget._status.value
        assert widget._run_button.text == "Run" and widget._run_button.enabled
        assert list(viewer.layers) == layers  # no output layer
        assert {lyr.name: lyr.data.tobytes() for lyr in layers} == before
