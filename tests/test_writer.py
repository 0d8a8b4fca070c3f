"""The kernel writer: .npy and .tif, directly and through napari's save."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_dip_deblur._writer import write_kernel
from napari_dip_deblur.samples import motion_kernel

META = {
    "name": "cells kernel",
    "metadata": {"seed": 3, "preset": "fast", "kernel_size": [13, 13], "loss_history": {}},
}


@pytest.fixture
def kernel() -> np.ndarray:
    return motion_kernel(13, seed=1)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".tiff"])
def test_write_kernel_round_trips_exactly(tmp_path, kernel, suffix):
    path = tmp_path / f"k{suffix}"
    written = write_kernel(str(path), kernel, META)
    assert written == [str(path)] and path.exists()
    back = np.load(path) if suffix == ".npy" else tifffile.imread(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, kernel)


def test_tif_carries_the_run_description(tmp_path, kernel):
    path = tmp_path / "k.tif"
    write_kernel(str(path), kernel, META)
    with tifffile.TiffFile(path) as tif:
        info = json.loads(tif.pages[0].description)
    assert info == {
        "name": "cells kernel",
        "preset": "fast",
        "kernel_size": [13, 13],
        "seed": 3,
        "source": None,
        "device": None,
        "iterations": None,
        "partial": None,
    }


def test_other_extensions_are_refused(tmp_path, kernel):
    with pytest.raises(ValueError, match=r"\.npy, \.tif"):
        write_kernel(str(tmp_path / "k.png"), kernel, META)


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_napari_save_uses_the_writer(make_napari_viewer, tmp_path, kernel, suffix):
    # Through a viewer, as a user saves: napari discovers the plugins when it starts one
    # (a bare layer's save found no writer unless an earlier test had started a viewer).
    viewer = make_napari_viewer()
    layer = viewer.add_image(kernel, name="cells kernel")
    path = tmp_path / f"saved{suffix}"
    written = layer.save(str(path), plugin="napari-dip-deblur")
    assert [str(p) for p in written] == [str(path)]
    back = np.load(path) if suffix == ".npy" else tifffile.imread(path)
    np.testing.assert_array_equal(back, kernel)
