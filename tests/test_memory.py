"""Memory estimates and the up-front refusal of runs that would not fit."""

import itertools
from pathlib import Path

import numpy as np
import pytest

import napari_dip_deblur.memory as memory
from conftest import TINY_NETWORK
from napari_dip_deblur.memory import (
    GB,
    InsufficientMemoryError,
    MemoryEstimate,
    available_memory,
    blind_bytes,
    check_memory,
    estimate_memory,
    nonblind_bytes,
)
from napari_dip_deblur.restore import restore
from napari_dip_deblur.samples import blurred_photo

TINY = {**TINY_NETWORK, "final_deconvolution": "none", "preset": "fast", "device": "cpu",
        "iterations": 3}


def _estimate(**changes):
    fields = {"blind": 2 * GB, "nonblind": GB, "arrays": GB // 10, "device": "cpu",
              "available_host": 64 * GB, "available_device": None, "blind_shape": (256, 256),
              "plane_shape": (4096, 4096)}
    return MemoryEstimate(**{**fields, **changes})


def test_blind_estimate_grows_with_pixels_width_kernel_and_attention():
    base = blind_bytes((128, 128), (15, 15), channels=64)
    assert blind_bytes((256, 256), (15, 15), channels=64) > 3 * (base - memory._BLIND_FIXED)
    assert blind_bytes((128, 128), (15, 15), channels=128) > base
    assert blind_bytes((128, 128), (31, 31), channels=64) > base
    assert blind_bytes((128, 128), (15, 15), channels=64, skip_channels=32) > base
    assert blind_bytes((128, 128), (15, 15), channels=64, non_local_levels=(2, 3, 4)) > base
    assert blind_bytes((128, 128), (15, 15), channels=64, gpu=True) == pytest.approx(
        1.3 * base, rel=1e-6)
    # Self-attention at the finest level is quadratic in the pixels: it dominates large runs.
    attention = blind_bytes((1024, 1024), (15, 15), channels=64, non_local_levels=(0,))
    assert attention > 10 * blind_bytes((1024, 1024), (15, 15), channels=64)


def test_nonblind_estimate_never_falls_as_the_plane_grows_and_stays_a_few_gb_at_4096():
    sides = [64, 128, 256, 512, 1024, 2048, 3000, 4096, 6000, 8192]
    estimates = [nonblind_bytes((s, s), (27, 27)) for s in sides]
    assert all(b >= a for a, b in itertools.pairwise(estimates))
    assert estimates[sides.index(4096)] <= 3 * GB  # the "a few GB" for 4096 x 4096
    assert estimates[-1] > estimates[sides.index(4096)]


def test_a_4096_image_with_a_256_region_is_planned_within_a_few_gb():
    plan = estimate_memory((256, 256), (4096, 4096), (27, 27), channels=64,
                           data_bytes=2 * 4096 * 4096 * 4)
    assert plan.host < 4 * GB
    assert plan.host == plan.arrays + max(plan.blind, plan.nonblind)
    assert "4096x4096" in plan.describe() and "256x256" in plan.describe()


def test_host_counts_the_blind_part_only_when_it_runs_on_the_host():
    assert _estimate().host == GB // 10 + 2 * GB
    assert _estimate(device="mps").host == GB // 10 + 2 * GB
    assert _estimate(device="cuda:0").host == GB // 10 + GB


def test_fits_compares_with_what_is_available():
    assert _estimate().fits
    assert _estimate(available_host=None).fits  # unknown: no refusal
    assert not _estimate(available_host=GB).fits
    assert not _estimate(device="cuda", available_device=GB).fits
    assert _estimate(device="cuda", available_device=3 * GB, available_host=2 * GB).fits


def test_check_memory_refuses_with_advice_for_the_heavier_part(monkeypatch):
    monkeypatch.delenv("DIP_DEBLUR_SKIP_MEMORY_CHECK", raising=False)
    check_memory(_estimate())  # fits: no error
    with pytest.raises(InsufficientMemoryError) as info:
        check_memory(_estimate(available_host=GB))
    message = str(info.value)
    assert "not enough RAM" in message and "1.0 GB is available" in message
    assert "smaller region" in message and "channels=32" in message
    assert "device='cuda'" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)

    with pytest.raises(InsufficientMemoryError, match="crop or a downsampled copy"):
        check_memory(_estimate(blind=GB // 2, nonblind=3 * GB, available_host=GB))
    with pytest.raises(InsufficientMemoryError, match="not enough GPU memory") as info:
        check_memory(_estimate(device="cuda:0", available_device=GB))
    assert "device='cuda'" not in str(info.value)

    monkeypatch.setenv("DIP_DEBLUR_SKIP_MEMORY_CHECK", "1")
    check_memory(_estimate(available_host=GB))


def test_available_memory_is_positive_and_below_the_machine_total():
    available = available_memory()
    if available is None:
        pytest.skip("no way to read the available memory here")
    assert 0 < available
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total = next(int(line.split()[1]) * 1024 for line in meminfo.read_text().splitlines()
                     if line.startswith("MemTotal:"))
        assert available <= total


def test_restore_refuses_a_run_that_would_not_fit_before_doing_any_work(monkeypatch):
    monkeypatch.delenv("DIP_DEBLUR_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 1024**2)
    image = blurred_photo(32, 5).blurry
    before = image.copy()
    out = np.zeros(image.shape, np.float32)
    with pytest.raises(InsufficientMemoryError, match=r"not enough RAM.*To fit: "):
        restore(image, 5, out=out, **TINY)
    assert np.array_equal(image, before)
    assert not out.any()  # refused before anything was written
    # memory_check=False runs it anyway (the estimate is an estimate).
    result = restore(image, 5, memory_check=False, **TINY)
    assert result.image.shape == image.shape
    assert result.settings["memory_estimate_bytes"]["blind"] > 0
