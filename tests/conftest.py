"""Shared test fixtures and settings.

``TINY_NETWORK`` is the generator every quick blind run here uses: a few channels and
levels, no non-local blocks, so a run takes well under a second. Test modules add what
they need on top, e.g. ``{**TINY_NETWORK, "starts": 1}``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from napari_dip_deblur.samples import blurred_photo

TINY_NETWORK = {"channels": 8, "levels": 3, "skip_channels": 4, "non_local_levels": ()}
WIDGET_TINY = {"channels": 8, "levels": 2, "starts": 1}
"""What the widget tests' ``viewer_widget`` runs with (``extra_overrides``)."""


@pytest.fixture(scope="session")
def small_blurry() -> np.ndarray:
    """A 32 x 32 photo blurred by a 5 px motion kernel (read-only: tests must not edit it)."""
    image = blurred_photo(32, 5).blurry
    image.setflags(write=False)
    return image


@pytest.fixture
def blurry() -> np.ndarray:
    """The same image as ``small_blurry``, a fresh writable copy (for napari layers)."""
    return blurred_photo(32, 5).blurry


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures(...)``): on
    a shared 2-core machine torch's default (2 threads) can be 100x slower when another
    process is busy, and tiny networks gain nothing from more."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def wait_idle(widget: Any, qtbot: Any = None, timeout: int = 30_000) -> None:
    """Wait until the widget's run has ended (through ``qtbot`` where a test has one)."""
    if qtbot is not None:
        qtbot.waitUntil(lambda: not widget.is_running, timeout=timeout)
        return
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout / 1000
    while widget.is_running and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


@pytest.fixture
def viewer_widget(make_napari_viewer):
    """A real viewer with the Blind deblur widget docked: tiny networks, a 5 x 5 kernel."""
    from napari_dip_deblur._widget import DeblurWidget

    viewer = make_napari_viewer()
    widget = DeblurWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Blind deblur")
    widget.extra_overrides = dict(WIDGET_TINY)
    widget._kernel_h.value = widget._kernel_w.value = 5
    yield viewer, widget
    if widget.worker is not None:  # never leave a worker running into the next test
        widget.cancel()
        wait_idle(widget, timeout=10_000)
