"""The public API: validation, dtype and range policy, determinism, snapshots, divergence."""

import numpy as np
import pytest
import torch
from scipy import signal

from conftest import TINY_NETWORK
from napari_dip_deblur import (
    PRESETS,
    DeblurDivergedError,
    Settings,
    available_devices,
    deblur,
    deblur_iter,
)
from napari_dip_deblur.engine.schedule import Phase
from napari_dip_deblur.kernel_size import deconvolution_kernel, fit_kernel
from napari_dip_deblur.nonblind import deconvolve
from napari_dip_deblur.samples import blurred_photo

# A tiny network keeps every run here well under a second.
TINY = {**TINY_NETWORK, "final_deconvolution": "none", "starts": 1}


@pytest.mark.parametrize(
    ("image", "kernel_size", "kwargs", "message"),
    [
        (np.zeros((4, 32, 32)), 5, {}, "must be 2-D"),
        (np.zeros((0, 32)), 5, {}, "empty"),
        (np.full((32, 32), np.nan), 5, {}, "NaN"),
        (np.where(np.eye(32) > 0, np.inf, 1.0), 5, {}, "NaN or infinite"),
        (np.full((32, 32), 7.0), 5, {}, "constant"),
        ("blurry", 4, {}, "odd"),
        ("blurry", 1, {}, ">= 3"),
        ("blurry", 33, {}, "larger than the image"),
        ("blurry", (5, 35), {}, "larger than the image"),
        ("blurry", (5, 5, 5), {}, "kernel_size"),
        ("blurry", 5, {"preset": "nope"}, "preset must be .auto., one of"),
        ("blurry", 5, {"device": "tpu"}, "device"),
        ("blurry", 5, {"iterations": 0}, "iterations must be"),
        ("blurry", 5, {"colour": True}, "unknown override"),
        ("blurry", 5, {"seed": -1}, "seed"),
        (np.ones((32, 32), dtype=bool), 5, {}, "real numbers"),
        (np.random.default_rng(0).random((10, 10)), 3, {}, "at least 16x16"),
    ],
)
def test_bad_input_raises_a_specific_value_error(small_blurry, image, kernel_size, kwargs,
                                                 message):
    image = small_blurry if isinstance(image, str) else image
    with pytest.raises(ValueError, match=message):
        deblur(image, kernel_size, **{"iterations": 2, **TINY, **kwargs})


def test_validation_happens_before_iteration_starts(small_blurry):
    with pytest.raises(ValueError, match="yield_every"):
        deblur_iter(small_blurry, 5, yield_every=0)


def test_unavailable_device_is_refused_with_the_list_of_available_ones(small_blurry):
    missing = next(d for d in ("cuda", "mps") if d not in available_devices())
    with pytest.raises(ValueError, match="not available"):
        deblur(small_blurry, 5, device=missing, iterations=1, **TINY)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int32])
def test_dtypes_return_float32_in_the_input_range_and_leave_the_input_untouched(dtype):
    sample = blurred_photo(32, 5)
    scale = {np.uint8: 255, np.uint16: 4000, np.int32: 1000}.get(dtype, 1.0)
    image = (sample.blurry * scale + (100 if dtype is np.int32 else 0)).astype(dtype)
    before = image.copy()
    result = deblur(image, 5, iterations=3, **TINY)
    assert np.array_equal(image, before)
    assert result.image.dtype == np.float32 and result.image.shape == image.shape
    assert result.kernel.dtype == np.float32 and result.kernel.shape == (5, 5)
    lo, hi = float(image.min()), float(image.max())
    span = hi - lo
    # The result lives on the input's scale (a little outside [lo, hi] is sharpening).
    assert lo - 0.2 * span <= result.image.min() and result.image.max() <= hi + 0.2 * span
    assert abs(result.image.mean() - image.mean()) < 0.25 * span


def test_kernel_is_nonnegative_sums_to_one_and_supports_rectangles(small_blurry):
    result = deblur(small_blurry, (3, 7), iterations=3, **TINY)
    assert result.kernel.shape == (3, 7)
    assert result.kernel.min() >= 0
    assert result.kernel.sum() == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_result_and_different_seed_different_result(small_blurry):
    a = deblur(small_blurry, 5, iterations=5, seed=3, **TINY)
    b = deblur(small_blurry, 5, iterations=5, seed=3, **TINY)
    c = deblur(small_blurry, 5, iterations=5, seed=4, **TINY)
    # Bit for bit in one process (same torch build, threads and instruction set: what the
    # settings record, since another machine's last bits differ and the optimisation grows
    # them; docs/reliability.md).
    assert np.array_equal(a.image, b.image) and np.array_equal(a.kernel, b.kernel)
    assert not np.array_equal(a.image, c.image)
    assert a.settings["torch_threads"] == torch.get_num_threads() >= 1
    assert a.settings["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_deblur_iter_yields_every_n_and_a_final_snapshot(small_blurry):
    snapshots = list(deblur_iter(small_blurry, 5, iterations=7, yield_every=3, **TINY))
    assert [s.step for s in snapshots] == [3, 6, 7]
    assert [s.done for s in snapshots] == [False, False, True]
    assert all(s.total == 7 for s in snapshots)
    assert len(snapshots[-1].history["loss"]) == 7
    assert snapshots[0].image is not snapshots[1].image
    final = snapshots[-1]
    assert final.settings["iterations_done"] == 7 and final.settings["seed"] == 0
    assert final.loss == pytest.approx(final.history["loss"][-1])


def test_closing_the_generator_stops_the_work(small_blurry):
    gen = deblur_iter(small_blurry, 5, iterations=1000, yield_every=1, **TINY)
    first = next(gen)
    gen.close()
    assert first.step == 1
    with pytest.raises(StopIteration):
        next(gen)


def test_history_follows_the_loss_schedule(small_blurry):
    result = deblur(small_blurry, 5, preset="selfdeblur", iterations=10, **TINY)
    assert set(result.history) == {"mse", "ssim", "loss"}
    # MSE for the first 20 % (2 iterations), then 1 - SSIM.
    mse, ssim = result.history["mse"], result.history["ssim"]
    assert np.isfinite(mse[:2]).all() and np.isnan(mse[2:]).all()
    assert np.isnan(ssim[:2]).all() and np.isfinite(ssim[2:]).all()
    np.testing.assert_allclose(result.history["loss"][2:], result.history["ssim"][2:])


def test_staged_overrides_rebuild_the_three_intervals(small_blurry):
    result = deblur(small_blurry, 5, preset="staged", iterations=10, stage2_start=0.3,
                    stage3_start=0.6, tv_weight=0.5, kernel_energy_weight=0.0, **TINY)
    phases = result.settings["phases"]
    assert [p["start"] for p in phases] == [0.0, 0.3, 0.6]
    assert phases[1]["terms"] == {"mae": 1.0, "tv": 0.5, "kernel_energy": 0.0}
    assert np.isfinite(result.history["tv"][3:6]).all() and np.isnan(result.history["tv"][6:]).all()


def test_presets_are_complete_and_documented():
    assert {"selfdeblur", "staged", "mse", "mae", "ssim", "mae+ssim", "fast"} <= set(PRESETS)
    for name, settings in PRESETS.items():
        assert isinstance(settings, Settings) and settings.name == name
        assert settings.description and settings.source
    faithful = PRESETS["selfdeblur"]
    assert (faithful.iterations, faithful.image_lr, faithful.kernel_lr) == (5000, 0.01, 1e-4)
    assert faithful.lr_milestones == (0.4, 0.6, 0.8) and faithful.channels == 128


def test_fast_uses_the_faster_kernel_rate_from_21_px_unless_kernel_lr_is_given():
    blurry = blurred_photo(48, 5).blurry
    fast = PRESETS["fast"]
    assert fast.kernel_lr_for((19, 19)) == 3e-4 and fast.kernel_lr_for((21, 9)) == 1e-3
    used = {size: deblur(blurry, size, preset="fast", iterations=1, **TINY).settings["kernel_lr"]
            for size in (19, 21)}
    assert used == {19: 3e-4, 21: 1e-3}
    # An explicit kernel_lr is what runs, whatever the size; large_kernel_lr can still be set.
    assert deblur(blurry, 21, preset="fast", iterations=1, kernel_lr=2e-4,
                  **TINY).settings["kernel_lr"] == 2e-4
    assert deblur(blurry, 5, preset="fast", iterations=1, large_kernel_lr=5e-4,
                  large_kernel_side=5, **TINY).settings["kernel_lr"] == 5e-4
    # selfdeblur has no such rule.
    assert PRESETS["selfdeblur"].kernel_lr_for((27, 27)) == 1e-4


@pytest.mark.parametrize(("override", "message"), [
    ({"large_kernel_lr": 0.0}, "large_kernel_lr must be None or > 0"),
    ({"large_kernel_lr": "fast"}, "large_kernel_lr must be None or > 0"),
    ({"large_kernel_lr": True}, "large_kernel_lr must be None or > 0"),
    ({"large_kernel_side": 0}, "large_kernel_side must be an integer >= 1"),
    ({"large_kernel_side": 2.5}, "large_kernel_side must be an integer >= 1"),
    ({"kernel_start_sigma": 0.0}, "kernel_start_sigma must be None or a fraction"),
    ({"kernel_start_sigma": True}, "kernel_start_sigma must be None or a fraction"),
    ({"kernel_start_sigma": "wide"}, "kernel_start_sigma must be None or a fraction"),
])
def test_bad_kernel_generator_settings_are_refused(small_blurry, override, message):
    with pytest.raises(ValueError, match=message):
        deblur_iter(small_blurry, 5, preset="fast", iterations=1, **override, **TINY)


def test_memory_format_is_recorded_resolved_and_validated(small_blurry):
    used = {fmt: deblur(small_blurry, 5, iterations=2, memory_format=fmt,
                        **TINY).settings["memory_format"]
            for fmt in ("contiguous", "channels_last", "auto")}
    assert used == {"contiguous": "contiguous", "channels_last": "channels_last",
                    "auto": "channels_last"}  # the CPU's
    with pytest.raises(ValueError, match="memory_format must be 'auto', 'contiguous' or"):
        deblur_iter(small_blurry, 5, iterations=1, memory_format="nhwc", **TINY)


def test_divergence_stops_with_the_last_good_snapshot(small_blurry):
    # A weight that overflows float32 makes the loss infinite from iteration 6 on.
    phases = (Phase(0.0, {"mae": 1.0}), Phase(0.5, {"mae": 1e39}))
    gen = deblur_iter(small_blurry, 5, iterations=10, yield_every=2, phases=phases, **TINY)
    seen = []
    with pytest.raises(DeblurDivergedError, match="NaN or infinite") as info:
        for snapshot in gen:
            seen.append(snapshot.step)
    assert seen == [2, 4]
    assert info.value.snapshot is not None and info.value.snapshot.step == 4
    assert np.isfinite(info.value.snapshot.image).all()


def aligned_psnr(estimate, truth, border, max_shift=4):
    """PSNR (peak 1) after the best integer shift: a blind kernel is known up to a shift."""
    inner = truth[border:-border, border:-border]
    best = -np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            moved = np.roll(estimate, (dy, dx), axis=(0, 1))[border:-border, border:-border]
            best = max(best, 10 * np.log10(1 / np.mean((moved - inner) ** 2)))
    return best


@pytest.mark.slow
def test_end_to_end_deblurring_finds_the_kernel():
    # What holds for every draw: the kernel is found and the model holds. Whether the image
    # then beats the input is, today, a draw of the seed and of the CPU's rounding: on an
    # AVX-512 machine on 2026-12-03 seeds 0-3 gave 27.97 / 32.28 / 36.55 / 27.77 dB against
    # the input's 30.55 (kernel NCC 0.90 / 0.96 / 0.98 / 0.92), so a one-seed PSNR assert
    # here only tested the machine. Quality is measured over seeds on the development set
    # (benchmarks/devset.py), where a rule that makes it reliable has to prove itself.
    sample = blurred_photo(96, 13, blur_length=7.8)
    result = deblur(sample.blurry, 13, iterations=500, channels=32, levels=4, seed=0)
    ncc = signal.correlate(result.kernel / np.linalg.norm(result.kernel),
                           sample.kernel / np.linalg.norm(sample.kernel)).max()
    assert ncc > 0.85
    before = aligned_psnr(sample.blurry, sample.sharp, 13)
    after = aligned_psnr(np.clip(result.image, 0, 1), sample.sharp, 13)
    assert np.isfinite(after) and after > before - 5, (before, after)  # no wreck
    # The model holds: the restored image blurred by the kernel gives back the input.
    reblurred = signal.convolve(result.image, result.kernel, mode="same")
    residual = np.abs(reblurred - sample.blurry)[13:-13, 13:-13].mean()
    assert residual < 0.02


def test_three_interval_knobs_are_refused_for_other_presets(small_blurry):
    with pytest.raises(ValueError, match="only apply to the three-interval"):
        deblur(small_blurry, 5, preset="fast", tv_weight=0.1, iterations=2, **TINY)


def test_auto_preset_is_the_recommended_one_for_the_device(small_blurry):
    result = deblur(small_blurry, 5, iterations=1, device="cpu", **TINY)
    assert result.settings["preset"] == "fast"


def test_final_deconvolution_replaces_only_the_last_image(small_blurry):
    snapshots = list(deblur_iter(small_blurry, 5, iterations=4, yield_every=2,
                                 **{**TINY, "final_deconvolution": "hyper_laplacian"}))
    first, last = snapshots
    assert first.image is first.generator_image
    assert last.image.shape == last.generator_image.shape == small_blurry.shape
    assert not np.allclose(last.image, last.generator_image)
    plain = deblur(small_blurry, 5, iterations=4, **TINY)
    np.testing.assert_array_equal(plain.image, plain.generator_image)
    # The final step centres the kernel and divides it by its sum again: the same kernel up
    # to the last bits, which depend on the CPU's SIMD width (the order of the sum).
    np.testing.assert_allclose(plain.kernel, last.kernel, rtol=1e-5, atol=1e-8)
    # without a final step the generator's kernel is the kernel, in an array of its own
    np.testing.assert_array_equal(plain.generator_kernel, plain.kernel)
    assert not np.shares_memory(plain.generator_kernel, plain.kernel)
    np.testing.assert_array_equal(first.generator_kernel, first.kernel)


def test_an_image_too_small_for_the_generator_depth_is_refused_up_front():
    # 5 levels halve a side 5 times; BatchNorm needs more than a 1 x 1 map at the bottom.
    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    with pytest.raises(ValueError, match="too small for a 5-level generator"):
        deblur(image, 5, iterations=1, levels=5, channels=8, skip_channels=4,
               non_local_levels=())
    # one level fewer fits the same image, and runs
    result = deblur(image, 5, iterations=1, levels=4, channels=8, skip_channels=4,
                    non_local_levels=(), final_deconvolution="none")
    assert result.image.shape == image.shape


def test_initial_kernel_is_where_the_kernel_starts_and_is_then_refined(small_blurry):
    start = np.zeros((5, 5))
    start[2, 1:4] = [1.0, 2.0, 1.0]
    first = next(deblur_iter(small_blurry, 5, iterations=3, yield_every=1, kernel_lr=1e-12,
                             initial_kernel=start, **TINY))
    # After one step with a negligible learning rate the kernel is the start, normalised,
    # with empty pixels raised to the 1e-3 floor that keeps them trainable.
    expected = np.maximum(start, 2e-3)
    np.testing.assert_allclose(first.kernel, expected / expected.sum(), rtol=1e-4)
    assert first.settings["initial_kernel"] is True
    refined = deblur(small_blurry, 5, iterations=20, kernel_lr=1e-2, initial_kernel=start,
                     **TINY)
    assert np.abs(refined.kernel - first.kernel).max() > 1e-3
    assert refined.kernel.sum() == pytest.approx(1.0, abs=1e-5)


def test_final_deconvolution_with_an_off_centre_oversized_estimate_stays_aligned():
    # The estimate as an oversized blind run returns it: 9 px of blur placed 6 px off the
    # centre of a 25 px array. A near-zero kernel rate keeps the run's kernel at that start.
    sample = blurred_photo(96, 9, noise=0.0)
    start = np.roll(np.pad(sample.kernel, 8), (6, -5), axis=(0, 1))
    result = deblur(sample.blurry, 25, iterations=1, kernel_lr=1e-12, initial_kernel=start,
                    channels=8, levels=3, skip_channels=4, non_local_levels=(),
                    final_deconvolution="hyper_laplacian")
    assert result.settings["deconvolution_kernel_cleaned"] is True
    assert result.kernel.shape == (25, 25)
    rows, cols = np.indices(result.kernel.shape)
    assert (result.kernel * rows).sum() == pytest.approx(12, abs=0.5)  # centred
    assert (result.kernel * cols).sum() == pytest.approx(12, abs=0.5)

    def error(image, shift=(0, 0)):
        inner = (slice(20, -20), slice(20, -20))
        return np.abs(np.roll(image, shift, axis=(0, 1))[inner] - sample.sharp[inner]).mean()

    # Sharper than the input, and where the input is: shifting it by the estimate's offset
    # (what deconvolving with the raw estimate did) only makes it worse.
    assert error(result.image) < 0.6 * error(sample.blurry), (error(result.image),
                                                               error(sample.blurry))
    assert error(result.image) < 0.5 * error(result.image, (6, -5))
    # The generator's own estimate is kept as it was, off centre, and the final step can be
    # redone from it exactly with other options.
    raw = result.generator_kernel
    assert np.unravel_index(raw.argmax(), raw.shape) == np.unravel_index(start.argmax(),
                                                                         start.shape)
    applied = deconvolution_kernel(raw, clean=True, max_shape=sample.blurry.shape)
    np.testing.assert_array_equal(fit_kernel(applied, raw.shape), result.kernel)
    again = deconvolve(sample.blurry, applied, weight=PRESETS["fast"].final_deconvolution_weight)
    np.testing.assert_array_equal(again, result.image)


def test_a_good_initial_kernel_beats_a_random_start_at_the_same_budget():
    sample = blurred_photo(64, 9, blur_length=6.0)
    runs = {name: deblur(sample.blurry, 9, iterations=60, channels=16, levels=3,
                         non_local_levels=(), final_deconvolution="none", seed=0,
                         initial_kernel=start)
            for name, start in (("random", None), ("true", sample.kernel))}
    ncc = {name: signal.correlate(r.kernel / np.linalg.norm(r.kernel),
                                  sample.kernel / np.linalg.norm(sample.kernel)).max()
           for name, r in runs.items()}
    assert ncc["true"] > 0.9
    assert ncc["true"] > ncc["random"] + 0.05, ncc


@pytest.mark.parametrize("start, match", [
    (np.ones((3, 3)), r"initial_kernel has shape \(3, 3\), but kernel_size asks for \(5, 5\)"),
    (-np.ones((5, 5)), "non-negative with a positive sum"),
    (np.zeros((5, 5)), "non-negative with a positive sum"),
    (np.full((5, 5), np.nan), "initial_kernel contains NaN"),
])
def test_a_bad_initial_kernel_is_refused(small_blurry, start, match):
    with pytest.raises(ValueError, match=match):
        deblur_iter(small_blurry, 5, iterations=1, initial_kernel=start, **TINY)
