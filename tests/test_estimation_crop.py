"""Fitting a crop of the image (``Settings.estimation_crop``) and restoring the whole of it,
and starts that all run to the end (``start_trial=1``)."""

import numpy as np
import pytest

from conftest import TINY_NETWORK
from napari_dip_deblur import PRESETS, deblur, deblur_iter
from napari_dip_deblur.api import estimation_region, start_seed
from napari_dip_deblur.regions import auto_region
from napari_dip_deblur.samples import blurred_photo
from napari_dip_deblur.sharpness import gradient_sparsity

TINY = {**TINY_NETWORK, "device": "cpu", "preset": "fast", "retry_mae_ratio": None, "starts": 1}


@pytest.fixture(scope="module")
def blurry():
    return blurred_photo(64, 5).blurry


def test_the_run_fits_the_best_textured_crop_and_restores_the_whole_image(blurry):
    before = blurry.copy()
    snapshots = list(deblur_iter(blurry, 5, iterations=6, yield_every=2,
                                 estimation_crop=40, **TINY))
    region = auto_region(blurry, 40)
    assert estimation_region(blurry, 40) == region
    final = snapshots[-1]
    assert final.settings["estimation_region"] == list(region.as_tuple())
    assert final.generator_image.shape == (40, 40)
    assert final.image.shape == blurry.shape and final.done
    # Until the end, the image is the input with the generator's iterate in the crop.
    first = snapshots[0]
    outside = np.ones(blurry.shape, bool)
    outside[region.slices] = False
    np.testing.assert_array_equal(first.image[outside], blurry[outside].astype(np.float32))
    np.testing.assert_array_equal(first.image[region.slices], first.generator_image)
    # The end is the whole input deconvolved: it differs from the input outside the crop too.
    assert np.abs(final.image[outside] - blurry[outside]).mean() > 0.05 * np.ptp(blurry)
    np.testing.assert_array_equal(blurry, before)


def test_no_crop_where_the_image_is_no_larger_than_it(blurry):
    assert estimation_region(blurry, 64) is None and estimation_region(blurry, None) is None
    result = deblur(blurry, 5, iterations=3, estimation_crop=64, **TINY)
    assert result.settings["estimation_region"] is None
    assert result.generator_image.shape == blurry.shape


def test_a_crop_fits_the_same_as_a_run_on_that_crop(blurry):
    # The intensity mapping of an 8-bit input does not depend on its content, so a run on
    # the crop itself is the same fit.
    eight_bit = np.round(blurry * 255).astype(np.uint8)
    cropped = deblur(eight_bit, 5, iterations=4, estimation_crop=40, **TINY)
    y0, x0, h, w = cropped.settings["estimation_region"]
    alone = deblur(eight_bit[y0:y0 + h, x0:x0 + w], 5, iterations=4, **TINY)
    np.testing.assert_array_equal(cropped.generator_image, alone.generator_image)
    np.testing.assert_array_equal(cropped.history["loss"], alone.history["loss"])


@pytest.mark.parametrize("value, message", [
    (8, "estimation_crop must be None or an integer > 8"),
    (True, "estimation_crop must be"),
    (40.0, "estimation_crop must be"),
])
def test_bad_crops_are_refused(blurry, value, message):
    with pytest.raises(ValueError, match=message):
        deblur(blurry, 5, iterations=2, estimation_crop=value, **TINY)


def test_a_crop_needs_the_final_deconvolution(blurry):
    with pytest.raises(ValueError, match="needs a final_deconvolution"):
        deblur(blurry, 5, iterations=2, estimation_crop=40, final_deconvolution="none",
               **{k: v for k, v in TINY.items()})


def test_fast_fits_a_176_px_crop_unless_the_final_deconvolution_is_turned_off():
    from napari_dip_deblur.presets import resolve_settings

    assert resolve_settings("fast").estimation_crop == 176
    assert resolve_settings("fast", final_deconvolution="none").estimation_crop is None
    assert resolve_settings("selfdeblur").estimation_crop is None
    # A run of fast counts both starts; the race of 2026-11-26 afternoon counted 330 + 119.
    assert resolve_settings("fast").run_iterations() == 880
    assert resolve_settings("fast", 330, start_trial=0.36).run_iterations() == 449


def test_fast_fits_a_smaller_crop_for_longer_below_21_px_kernels():
    from napari_dip_deblur.presets import resolve_settings

    fast = resolve_settings("fast")
    small, large = fast.for_kernel((19, 19)), fast.for_kernel((21, 9))
    assert (small.estimation_crop, small.iterations, small.kernel_lr) == (144, 600, 3e-4)
    assert (large.estimation_crop, large.iterations, large.kernel_lr) == (176, 440, 1e-3)
    # About the same cost per start: pixels fitted x iterations within 10 %.
    assert 144 ** 2 * 600 == pytest.approx(176 ** 2 * 440, rel=0.1)
    assert small.run_iterations() == 1200 and large.run_iterations() == 880
    # Folded in and cleared: the settings a run records are the ones it ran.
    for resolved in (small, large):
        assert resolved.small_kernel_crop is None and resolved.small_kernel_iterations is None
        assert resolved.for_kernel((5, 5)) == resolved
    # What the caller gives is what runs, for every kernel size.
    given = resolve_settings("fast", 300, estimation_crop=100).for_kernel((5, 5))
    assert (given.estimation_crop, given.iterations) == (100, 300)
    assert resolve_settings("fast", 300).for_kernel((5, 5)).estimation_crop == 144
    assert resolve_settings("fast", estimation_crop=100).for_kernel((5, 5)).iterations == 600
    assert resolve_settings("fast", small_kernel_crop=64).for_kernel((5, 5)).estimation_crop \
        == 64
    assert resolve_settings("fast", final_deconvolution="none").for_kernel(
        (5, 5)).estimation_crop is None
    plain = resolve_settings("selfdeblur").for_kernel((5, 5))
    assert (plain.estimation_crop, plain.iterations) == (None, 5000)


@pytest.mark.parametrize("overrides, message", [
    ({"small_kernel_crop": 8, "levels": 3}, "small_kernel_crop must be None or an integer > 8"),
    ({"small_kernel_crop": 100.0}, "small_kernel_crop must be None or an integer"),
    ({"small_kernel_crop": 100, "estimation_crop": None}, "small_kernel_crop needs an "
                                                          "estimation_crop"),
    ({"small_kernel_iterations": 0}, "small_kernel_iterations must be None or an integer >= 1"),
    ({"small_kernel_iterations": True}, "small_kernel_iterations must be None or an integer"),
])
def test_bad_small_kernel_settings_are_refused(overrides, message):
    from napari_dip_deblur.presets import resolve_settings

    with pytest.raises(ValueError, match=message):
        resolve_settings("fast", **overrides)


@pytest.mark.parametrize("kernel, crop, iterations", [(5, 144, 600), (21, 176, 440)])
def test_a_fast_run_fits_the_crop_and_length_of_its_kernel_size(kernel, crop, iterations):
    from napari_dip_deblur.restore import restore_iter

    image = blurred_photo(200, 5).blurry
    before = image.copy()
    # One iteration of each: the first snapshot records what the run will do.
    run = deblur_iter(image, kernel, preset="fast", device="cpu", yield_every=1)
    try:
        settings = next(run).settings
    finally:
        run.close()
    assert settings["estimation_region"] == list(auto_region(image, crop).as_tuple())
    assert (settings["estimation_crop"], settings["iterations"]) == (crop, iterations)
    assert settings["small_kernel_crop"] is None and settings["small_kernel_iterations"] is None
    progress = restore_iter(image, kernel, preset="fast", device="cpu", yield_every=1)
    try:
        first = next(p for p in progress if p.snapshot is not None)
    finally:
        progress.close()
    assert first.region == auto_region(image, crop)
    assert first.snapshot.settings["iterations"] == iterations
    # Both starts run to the end, then the whole image is deconvolved.
    assert first.total > 2 * iterations == first.snapshot.total
    np.testing.assert_array_equal(image, before)


def test_starts_that_run_to_the_end_keep_the_sharpest(blurry):
    n = 5
    result = deblur(blurry, 5, iterations=n, final_deconvolution="none",
                    **{**TINY, "starts": 2, "start_trial": 1.0})
    settings = result.settings
    assert settings["start_trial_iterations"] == n and result.iterations == 2 * n
    kept = settings["kept_start"]
    assert kept == 1 + int(np.argmin(settings["start_sparsity"]))
    seed = settings["start_seeds"][kept - 1]
    assert seed == start_seed(0, kept - 1)
    alone = deblur(blurry, 5, iterations=n, seed=seed, final_deconvolution="none", **TINY)
    np.testing.assert_array_equal(result.image, alone.image)
    assert settings["start_sparsity"][kept - 1] == pytest.approx(
        gradient_sparsity((alone.image / 255.0), margin=2), rel=1e-5)


def test_restore_fits_the_presets_crop_unless_a_region_is_given(blurry):
    from napari_dip_deblur.restore import restore

    result = restore(blurry, 5, iterations=3, estimation_crop=40, **TINY)
    assert result.regions == (auto_region(blurry, 40),)
    assert result.settings["estimation_crop"] == 40
    assert result.image.shape == blurry.shape
    given = restore(blurry, 5, iterations=3, estimation_crop=40, region=(0, 0, 48, 48),
                    **TINY)
    assert [r.as_tuple() for r in given.regions] == [(0, 0, 48, 48)]
    whole = restore(blurry, 5, iterations=3, **TINY)  # fast's 144 px: more than the image
    assert whole.regions == (None,) and whole.settings["estimation_crop"] == 144


def test_a_run_stopped_early_is_finished_with_the_kernel_it_had():
    from napari_dip_deblur import finish_early
    from napari_dip_deblur.kernel_size import deconvolution_kernel, needs_cleaning
    from napari_dip_deblur.nonblind import deconvolve

    # a run from the true kernel: its estimate can be deconvolved with from the start
    sample = blurred_photo(64, 5)
    blurry = sample.blurry
    before = blurry.copy()
    snapshots = list(deblur_iter(blurry, 5, iterations=6, yield_every=1, estimation_crop=40,
                                 initial_kernel=sample.kernel, kernel_lr=1e-2, **TINY))
    middle, final = snapshots[2], snapshots[-1]
    region = auto_region(blurry, 40)
    outside = np.ones(blurry.shape, bool)
    outside[region.slices] = False
    finished = finish_early(blurry, middle)
    # The whole input deconvolved with the kernel of iteration 3, as the end would have it.
    assert finished.step == middle.step == 3 and not finished.done
    assert finished.settings["finished_early"] is True
    assert "finished_early" not in middle.settings
    np.testing.assert_array_equal(middle.image[outside], blurry[outside].astype(np.float32))
    # outside the crop too the image is deconvolved, not the input any more
    assert np.abs(finished.image[outside] - blurry[outside]).mean() > 0.01 * np.ptp(blurry)
    applied = deconvolution_kernel(middle.generator_kernel,
                                   clean=needs_cleaning(middle.generator_kernel),
                                   max_shape=blurry.shape)
    np.testing.assert_array_equal(finished.image, deconvolve(
        blurry, applied, weight=PRESETS["fast"].final_deconvolution_weight))
    assert finished.kernel.shape == (5, 5) and finished.kernel.sum() == pytest.approx(1, 1e-5)
    # The kernel changed since, and so does the image; a final snapshot is already finished.
    assert not np.array_equal(finish_early(blurry, final).image, finished.image)
    assert finish_early(blurry, final) is final
    np.testing.assert_array_equal(blurry, before)


def test_a_kernel_still_near_its_flat_start_is_not_deconvolved_with(blurry):
    from napari_dip_deblur import finish_early

    first = next(deblur_iter(blurry, 5, iterations=50, yield_every=1, estimation_crop=40,
                             **TINY))
    assert first.generator_kernel.max() < 2 / first.generator_kernel.size  # nearly flat
    kept = finish_early(blurry, first)
    assert kept.settings["finished_early"] is False
    assert kept.image is first.image and kept.kernel is first.kernel


def test_finishing_early_needs_a_final_step_and_the_runs_input(blurry):
    from napari_dip_deblur import finish_early

    plain = next(deblur_iter(blurry, 5, iterations=3, final_deconvolution="none", **TINY))
    with pytest.raises(ValueError, match="no final deconvolution"):
        finish_early(blurry, plain)
    first = next(deblur_iter(blurry, 5, iterations=3, yield_every=1, **TINY))
    with pytest.raises(ValueError, match=r"image has shape \(64, 63\), but the run's input "
                                         r"had \(64, 64\)"):
        finish_early(blurry[:, 1:], first)


def test_fast_on_a_region_runs_the_region_settings_but_keeps_what_was_given(blurry):
    from napari_dip_deblur.restore import REGION_FAST_OVERRIDES, restore_iter

    def first_settings(**kwargs):
        progress = restore_iter(blurry, 5, region=(0, 0, 40, 40), preset="fast",
                                device="cpu", yield_every=1, **kwargs)
        try:
            return next(progress).snapshot.settings
        finally:
            progress.close()

    plain = first_settings()
    assert {k: plain[k] for k in REGION_FAST_OVERRIDES} == REGION_FAST_OVERRIDES
    given = first_settings(starts=2)
    assert (given["starts"], given["channels"], given["iterations"]) == (2, 32, 600)
    own = first_settings(iterations=5)  # iterations given: the preset's own settings
    assert (own["channels"], own["iterations"], own["starts"]) == (48, 5, 2)
