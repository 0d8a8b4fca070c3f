"""Kernel geometry: support, noise floor, centring, and the kernel-size suggestion."""

import numpy as np
import pytest
from scipy import ndimage

import napari_dip_deblur.api as api
from conftest import TINY_NETWORK
from napari_dip_deblur import PRESETS
from napari_dip_deblur.api import Snapshot
from napari_dip_deblur.kernel_size import (
    SUGGEST_FAST_OVERRIDES,
    centre_kernel,
    clean_kernel,
    deconvolution_kernel,
    fit_kernel,
    kernel_floor,
    kernel_support,
    needs_cleaning,
    suggest_kernel_size,
)
from napari_dip_deblur.samples import blurred_photo, gaussian_kernel, motion_kernel

TINY = {**TINY_NETWORK, "final_deconvolution": "none", "preset": "fast", "device": "cpu",
        "starts": 1}


def _box(shape=(15, 15), y0=5, x0=6, h=5, w=3, floor=0.0):
    kernel = np.full(shape, floor)
    kernel[y0:y0 + h, x0:x0 + w] += 1.0
    return kernel


def test_support_of_a_known_box():
    support = kernel_support(_box(), floor=0)
    assert support.shape == (5, 3)
    assert support.box == (5, 6, 5, 3)
    assert not support.touches_border
    corner = kernel_support(_box(y0=0, x0=12), floor=0)
    assert corner.box == (0, 12, 5, 3) and corner.touches_border


def test_support_ignores_a_uniform_noise_floor_measured_on_the_outer_ring():
    noisy = _box(floor=0.02)
    expected_floor = 0.02 / noisy.sum()  # the floor in units of the normalised kernel
    assert kernel_floor(noisy) == pytest.approx(expected_floor)
    assert kernel_support(noisy).shape == (5, 3)
    # Without removing the floor, 97 % of the mass needs a much larger box.
    assert np.prod(kernel_support(noisy, floor=0).shape) > 15


def test_support_mass_fraction_on_a_uniform_streak():
    streak = np.zeros((9, 9))
    streak[4, 2:7] = 1.0  # five equal pixels: 3 hold 60 %, 4 hold 80 %
    assert kernel_support(streak, 0.6, floor=0).shape == (1, 3)
    assert kernel_support(streak, 0.61, floor=0).shape == (1, 4)
    assert kernel_support(streak, 1.0, floor=0).shape == (1, 5)


def test_support_of_a_gaussian_grows_with_sigma_and_mass():
    small = kernel_support(gaussian_kernel(21, 1.0), floor=0).shape
    large = kernel_support(gaussian_kernel(21, 2.5), floor=0).shape
    # Isotropic: (nearly) square boxes; the smallest area may trade a row for a column.
    assert abs(small[0] - small[1]) <= 1 and abs(large[0] - large[1]) <= 1
    assert max(small) < min(large)
    # 97 % of a 2-D Gaussian needs +-2.43 sigma per axis (0.985^2 = 0.97): 4.9 sigma wide.
    assert 4 <= min(small) <= max(small) <= 6 and 11 <= min(large) <= max(large) <= 14
    assert kernel_support(gaussian_kernel(21, 2.5), 0.5, floor=0).shape[0] < large[0]


@pytest.mark.parametrize("mass", [0, -0.1, 1.5])
def test_support_refuses_a_mass_outside_0_1(mass):
    with pytest.raises(ValueError, match="mass"):
        kernel_support(_box(), mass)


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (np.ones(5), "2-D"),
        (np.zeros((5, 5)), "positive sum"),
        (np.full((5, 5), np.nan), "NaN"),
    ],
)
def test_bad_kernels_are_refused(kernel, message):
    with pytest.raises(ValueError, match=message):
        kernel_support(kernel)
    with pytest.raises(ValueError, match=message):
        centre_kernel(kernel)


def test_kernel_floor_of_small_kernels_is_zero():
    assert kernel_floor(np.ones((3, 3))) == 0.0
    assert kernel_floor(np.ones((4, 9))) == 0.0


def test_clean_kernel_removes_the_floor_and_renormalises():
    noisy = _box(floor=0.02)
    before = noisy.copy()
    cleaned = clean_kernel(noisy)
    assert np.array_equal(noisy, before)
    assert cleaned.dtype == np.float32 and cleaned.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(cleaned, _box() / _box().sum(), atol=1e-7)
    # Nothing above the floor: the kernel comes back normalised, not zeroed.
    flat = np.full((7, 7), 2.0)
    np.testing.assert_allclose(clean_kernel(flat), np.full((7, 7), 1 / 49), rtol=1e-6)


@pytest.mark.parametrize("place", [(0, 0), (1, 10), (9, 2), (7, 7), (12, 12)])
def test_centre_kernel_moves_the_centroid_to_the_centre(place):
    kernel = np.zeros((15, 15))
    kernel[place[0]:place[0] + 3, place[1]:place[1] + 2] = [[1, 2], [3, 1], [0, 2]]
    centred = centre_kernel(kernel)
    assert centred.dtype == np.float32
    assert centred.shape[0] % 2 == 1 and centred.shape[1] % 2 == 1
    assert centred.sum() == pytest.approx(1.0)
    centroid = np.array(ndimage.center_of_mass(centred))
    centre = (np.array(centred.shape) - 1) / 2
    assert np.all(np.abs(centroid - centre) <= 0.5), (centroid, centre)
    # Only zeros were added: the pattern is all there.
    assert np.count_nonzero(centred) == np.count_nonzero(kernel)


def test_centre_kernel_leaves_a_centred_kernel_as_it_is():
    kernel = motion_kernel(11, seed=3)  # recentred on its centre of mass by construction
    centred = centre_kernel(kernel)
    assert centred.shape == kernel.shape
    np.testing.assert_allclose(centred, kernel / kernel.sum(), rtol=1e-6)


def _fake_deblur_iter(kernel, calls):
    """A stand-in for the blind run (its one final snapshot has the given kernel): these
    tests are about measuring the support, not about the run."""
    def fake(image, kernel_size, seed=0, yield_every=10, **kwargs):
        calls.append((np.array(image), kernel_size, kwargs))
        image = np.asarray(image, np.float32)
        yield Snapshot(step=1, total=1, image=image, kernel=kernel.astype(np.float32),
                       generator_image=image, loss=0.0, terms={}, elapsed=0.0, done=True,
                       history={}, settings={"device": "cpu"})
    return fake


def test_suggestion_is_the_measured_support_plus_the_margin(monkeypatch):
    # A 5 x 3 blur found in a generous 21 x 21 estimate, off-centre, with a noise floor.
    generous = _box((21, 21), y0=4, x0=11, floor=1e-3)
    calls = []
    monkeypatch.setattr(api, "deblur_iter", _fake_deblur_iter(generous, calls))
    image = blurred_photo(64, 5).blurry
    suggestion = suggest_kernel_size(image, 21, margin=2, iterations=7)
    assert suggestion.support.shape == (5, 3)
    assert suggestion.size == (7, 5)
    assert suggestion.max_size == (21, 21) and suggestion.reliable
    assert suggestion.region is None
    # "auto" is `fast` on the CPU, whose suggestion runs keep the measured 64 channels, one
    # start, on all of the image given.
    assert calls[0][1] == 21 and calls[0][2] == {**SUGGEST_FAST_OVERRIDES, "iterations": 7}
    np.testing.assert_array_equal(calls[0][0], image)
    # A blur reaching the border is flagged, and the suggestion never exceeds max_size.
    monkeypatch.setattr(api, "deblur_iter", _fake_deblur_iter(_box((21, 21), 0, 0, 21, 19), []))
    edge = suggest_kernel_size(image, 21)
    assert not edge.reliable and edge.size == (21, 21)


def test_suggestion_runs_on_a_region(monkeypatch):
    calls = []
    monkeypatch.setattr(api, "deblur_iter", _fake_deblur_iter(_box(), calls))
    image = np.full((100, 120), 0.5, np.float32)  # flat, then smooth texture (no step)
    texture = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((100, 60)), 2)
    image[:, 60:] += texture / texture.std() * 0.1
    suggestion = suggest_kernel_size(image, 15, region_size=48)  # "auto": the textured half
    assert suggestion.region.shape == (48, 48) and suggestion.region.x0 >= 60
    np.testing.assert_array_equal(calls[-1][0], image[suggestion.region.slices])
    suggestion = suggest_kernel_size(image, 15, region=(10, 20, 32, 40))
    np.testing.assert_array_equal(calls[-1][0], image[10:42, 20:60])
    # Default generous size on a small crop: a third of its side, odd.
    suggest_kernel_size(image, region=(0, 0, 32, 40))
    assert calls[-1][1] == 11


def test_suggestion_from_a_real_blind_run_has_the_documented_form():
    sample = blurred_photo(48, 5)
    suggestion = suggest_kernel_size(sample.blurry, 11, iterations=20, **TINY)
    assert suggestion.max_size == (11, 11) and suggestion.kernel.shape == (11, 11)
    h, w = suggestion.size
    assert h % 2 == 1 and w % 2 == 1 and 3 <= h <= 11 and 3 <= w <= 11
    assert suggestion.result.iterations == 20
    assert suggestion.result.settings["channels"] == TINY["channels"]  # given: kept


def test_a_fast_suggestion_runs_the_generator_it_was_measured_with():
    image = blurred_photo(40, 5).blurry
    small = {"levels": 3, "device": "cpu", "final_deconvolution": "none"}
    fast = suggest_kernel_size(image, 7, preset="fast", iterations=2, **small)
    assert fast.result.settings["channels"] == SUGGEST_FAST_OVERRIDES["channels"] == 64
    assert fast.result.iterations == 2
    default = suggest_kernel_size(image, 7, preset="fast", iterations=None, channels=8, **small)
    assert default.result.iterations == SUGGEST_FAST_OVERRIDES["iterations"]
    assert default.result.settings["channels"] == 8
    other = suggest_kernel_size(image, 7, preset="mae", iterations=2, non_local_levels=(),
                                **small)
    assert other.result.settings["channels"] == PRESETS["mae"].channels


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.zeros((3, 32, 32)), {}, "2-D"),
        (np.zeros((32, 32)), {"region": "best"}, "region must be"),
        (np.zeros((32, 32)), {"region": (20, 20, 16, 16)}, "does not lie inside"),
    ],
)
def test_suggestion_refuses_bad_input(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        suggest_kernel_size(image, 9, **kwargs)


def test_needs_cleaning_finds_an_oversized_estimate_only():
    blur = np.ones((9, 9))
    # A 9 px blur in a 25 px array on a noise floor: oversized.
    assert needs_cleaning(np.pad(blur, 8) + 3e-4)
    # The same blur filling its own array, or reaching the border of a larger one: not.
    assert not needs_cleaning(blur + 3e-4)
    assert not needs_cleaning(np.roll(np.pad(blur, 8), 8, axis=1) + 3e-4)
    # 15 of 25 px leaves exactly the default 40 % spare; 17 px does not.
    assert needs_cleaning(np.pad(np.ones((15, 15)), 5) + 3e-4)
    assert not needs_cleaning(np.pad(np.ones((17, 17)), 4) + 3e-4)
    with pytest.raises(ValueError, match="spare must lie in"):
        needs_cleaning(blur, spare=1.0)


def test_deconvolution_kernel_centres_and_cleans_as_asked():
    box = _box(y0=2, x0=9, floor=1e-3)  # a box 3 px off-centre on a floor, in 15 x 15
    centred = deconvolution_kernel(box, clean=False)
    rows, cols = np.indices(centred.shape)
    assert centred.sum() == pytest.approx(1.0, abs=1e-6)
    assert (centred * rows).sum() == pytest.approx((centred.shape[0] - 1) / 2, abs=0.5)
    assert (centred * cols).sum() == pytest.approx((centred.shape[1] - 1) / 2, abs=0.5)
    assert (centred > 0).sum() == 15 * 15  # the floor stays (the padding is zero)
    assert (deconvolution_kernel(box, clean=True) > 0).sum() == 5 * 3  # the floor goes
    auto = deconvolution_kernel(box)  # a 5 x 3 box in 15 x 15 is oversized: cleaned
    np.testing.assert_array_equal(auto, deconvolution_kernel(box, clean=True))
    with pytest.raises(ValueError, match="clean must be True, False or 'auto'"):
        deconvolution_kernel(box, clean="yes")
    # Centring grows the 15 px estimate by twice its offset, unless the image is too small.
    assert centred.shape == (21, 21)
    fitted = deconvolution_kernel(box, clean=False, max_shape=(16, 40))
    assert fitted.shape == (15, 21) and fitted.sum() == pytest.approx(1.0, abs=1e-6)


def test_fit_kernel_crops_and_pads_about_the_centre():
    k = np.zeros((7, 7))
    k[3, 1:6] = 1.0
    cropped = fit_kernel(k, (3, 3))
    np.testing.assert_allclose(cropped, np.pad(np.ones((1, 3)) / 3, ((1, 1), (0, 0))))
    padded = fit_kernel(k, (9, 11))
    assert padded.shape == (9, 11) and padded[4, 3:8].sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(fit_kernel(np.pad([[1.0]], ((0, 0), (0, 6))), (3, 3))[1, 1],
                                  1.0)  # nothing inside: an impulse
