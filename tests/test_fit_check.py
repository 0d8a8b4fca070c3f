"""The fit check: the noise level of the input, and the second attempt from a centred kernel
when a run ends with a misfit far above it (``Settings.retry_mae_ratio``)."""

import numpy as np
import pytest

from conftest import TINY_NETWORK
from napari_dip_deblur import PRESETS, deblur, deblur_iter
from napari_dip_deblur.api import fit_ratio
from napari_dip_deblur.noise import NOISE_LEVEL_FLOOR, estimate_noise_level
from napari_dip_deblur.presets import resolve_settings
from napari_dip_deblur.samples import blurred_photo

TINY = {**TINY_NETWORK, "final_deconvolution": "none", "device": "cpu", "preset": "fast",
        "starts": 1}


@pytest.mark.parametrize("sigma", [0.003, 0.01, 0.05])
def test_noise_level_of_white_noise_on_a_smooth_image(sigma):
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[:256, :256] / 255.0
    smooth = 0.5 + 0.2 * np.sin(3 * rows) * np.cos(2 * cols) + 0.1 * rows
    estimate = estimate_noise_level(smooth + sigma * rng.standard_normal(smooth.shape))
    assert estimate == pytest.approx(sigma, rel=0.05)


def test_noise_added_to_a_blurred_photo_is_measured_and_the_ratio_has_a_floor():
    blurry = blurred_photo(128, 9, noise=0.0).blurry.astype(np.float64)
    base = estimate_noise_level(blurry)  # what the photo's own fine structure reads as
    noisy = blurry + 0.02 * np.random.default_rng(2).standard_normal(blurry.shape)
    assert estimate_noise_level(noisy) == pytest.approx(np.hypot(base, 0.02), rel=0.1)
    assert fit_ratio(0.004, 0.0) == pytest.approx(0.004 / NOISE_LEVEL_FLOOR)
    assert fit_ratio(0.004, 0.01) == pytest.approx(0.4)


@pytest.mark.parametrize("image", [np.zeros(9), np.zeros((2, 9)), np.zeros((3, 3, 3))])
def test_noise_level_needs_a_2d_image_of_3_by_3(image):
    with pytest.raises(ValueError, match="2-D image of at least 3 x 3"):
        estimate_noise_level(image)


def test_a_run_records_its_noise_level_and_fit_ratio(small_blurry):
    result = deblur(small_blurry, 5, iterations=6, **TINY)
    noise = estimate_noise_level(small_blurry)  # float input: mapped to [0.1, 0.9]
    scale = result.settings["intensity_scale"]
    assert result.settings["noise_level"] == pytest.approx(noise / scale, rel=1e-4)
    assert result.settings["fit_ratio"] == pytest.approx(
        fit_ratio(result.history["mae"][-1], result.settings["noise_level"]), rel=1e-5)
    assert result.settings["attempt"] == 1 and "kept_attempt" not in result.settings


def test_a_failed_fit_is_run_again_from_a_centred_kernel_and_the_better_fit_kept(small_blurry):
    # A threshold no fit can meet forces the second attempt.
    snapshots = list(deblur_iter(small_blurry, 5, iterations=6, yield_every=2,
                                 retry_mae_ratio=1e-6, **TINY))
    assert [s.step for s in snapshots] == [2, 4, 6, 8, 10, 12]
    assert [s.total for s in snapshots] == [6, 6, 12, 12, 12, 12]
    assert [s.settings["attempt"] for s in snapshots[:-1]] == [1, 1, 1, 2, 2]
    assert [s.done for s in snapshots] == [False] * 5 + [True]
    final, first_end = snapshots[-1], snapshots[2]
    ratios = final.settings["attempt_fit_ratios"]
    assert len(ratios) == 2 and ratios[0] == first_end.settings["fit_ratio"]
    kept = final.settings["kept_attempt"]
    assert kept == 1 + int(ratios[1] < ratios[0]) and final.settings["attempt"] == kept
    assert final.settings["fit_ratio"] == min(ratios)
    during = snapshots[3].settings  # the second attempt under way: only the first's ratio
    assert during["attempt_fit_ratios"] == ratios[:1] and "fit_ratio" not in during
    # The result is the kept attempt's last state, with that attempt's history.
    same_as_first = np.array_equal(final.image, first_end.image)
    assert same_as_first == (kept == 1)
    assert len(final.history["mae"]) == 6
    assert final.elapsed >= snapshots[4].elapsed >= first_end.elapsed


def test_the_second_attempt_starts_from_the_centred_kernel(small_blurry):
    second = list(deblur_iter(small_blurry, 9, iterations=1, yield_every=1, kernel_lr=1e-12,
                              retry_mae_ratio=1e-6, retry_kernel_start_sigma=0.1, **TINY))
    first_kernel, retry_kernel = second[0].kernel, second[1].kernel
    assert second[1].settings["attempt"] == 2
    assert first_kernel.max() < 2 * first_kernel.min()  # about flat
    assert retry_kernel[4, 4] == retry_kernel.max() and retry_kernel[4, 4] > 20 * retry_kernel[0, 0]


def test_a_fit_that_passes_the_check_runs_once_and_as_without_it(small_blurry):
    checked = deblur(small_blurry, 5, iterations=6, retry_mae_ratio=1e6, **TINY)
    unchecked = deblur(small_blurry, 5, iterations=6, retry_mae_ratio=None, **TINY)
    assert checked.iterations == 6 and checked.settings["attempt"] == 1
    np.testing.assert_array_equal(checked.image, unchecked.image)


def test_no_second_attempt_when_an_initial_kernel_is_given(small_blurry):
    start = np.ones((5, 5))
    result = deblur(small_blurry, 5, iterations=4, retry_mae_ratio=1e-6, initial_kernel=start,
                    **TINY)
    assert result.iterations == 4 and "kept_attempt" not in result.settings


def test_closing_during_the_second_attempt_keeps_its_last_snapshot(small_blurry):
    gen = deblur_iter(small_blurry, 5, iterations=50, yield_every=1, retry_mae_ratio=1e-6,
                      **TINY)
    seen = [next(gen) for _ in range(53)]
    gen.close()
    assert seen[-1].settings["attempt"] == 2 and seen[-1].step == 53
    with pytest.raises(StopIteration):
        next(gen)


def test_the_check_is_off_for_runs_shorter_than_the_preset_unless_asked_for():
    fast = PRESETS["fast"]
    assert fast.retry_mae_ratio is not None
    assert resolve_settings("fast").retry_mae_ratio == fast.retry_mae_ratio
    assert resolve_settings("fast", fast.iterations * 2).retry_mae_ratio == fast.retry_mae_ratio
    assert resolve_settings("fast", fast.iterations - 1).retry_mae_ratio is None
    assert resolve_settings("fast", 10, retry_mae_ratio=3.0).retry_mae_ratio == 3.0


@pytest.mark.parametrize(("overrides", "message"), [
    ({"retry_mae_ratio": 0}, "retry_mae_ratio must be None or > 0"),
    ({"retry_mae_ratio": True}, "retry_mae_ratio must be None or > 0"),
    ({"retry_mae_ratio": "4"}, "retry_mae_ratio must be None or > 0"),
    ({"retry_kernel_start_sigma": 0}, r"retry_kernel_start_sigma must be .* \(0, 10\)"),
    ({"retry_kernel_start_sigma": None}, r"retry_kernel_start_sigma must be .* \(0, 10\)"),
])
def test_bad_fit_check_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_settings("fast", **overrides)


def test_the_check_needs_an_mae_term_in_the_last_phase():
    with pytest.raises(ValueError, match="needs an 'mae' term in the last phase"):
        resolve_settings("selfdeblur", retry_mae_ratio=4.0)
