"""Tests of the Levin et al. (2009) scoring protocol, the kernel error and the data loader."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from napari_dip_deblur import levin
from napari_dip_deblur.levin import KERNEL_SIZES, LevinCase, levin_root, load_levin
from napari_dip_deblur.metrics import (
    KernelError,
    LevinScore,
    _bilinear_window,
    _shift_errors,
    kernel_error,
    levin_align,
    levin_score,
)


def smooth_image(shape=(96, 96), seed=0, sigma=2.0):
    """A textured image spanning [0, 255]."""
    noise = np.random.default_rng(seed).uniform(0, 255, shape)
    image = ndimage.gaussian_filter(noise, sigma)
    return 255 * (image - image.min()) / (image.max() - image.min())


def displaced(image, shift):
    """``image`` with its content moved by ``shift`` (rows, cols), bilinear."""
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(float)
    return ndimage.map_coordinates(image, [rows - shift[0], cols - shift[1]], order=1,
                                   mode="nearest")


def streak_kernel():
    """An asymmetric, L-shaped 9x9 kernel (sums to 1) with a zero border."""
    kernel = np.zeros((9, 9))
    kernel[2, 2:7] = [1, 2, 3, 2, 1]
    kernel[3:7, 6] = [2, 3, 1, 1]
    return kernel / kernel.sum()


# --------------------------------------------------------------------------- levin_score


def test_image_against_itself_is_perfect():
    image = smooth_image()
    score = levin_score(image, image)
    assert isinstance(score, LevinScore)
    assert score.psnr == np.inf
    assert score.ssim == pytest.approx(1.0)
    assert score.shift == (0.0, 0.0)


@pytest.mark.parametrize("shift", [(1.25, -2.5), (-3.75, 0.5), (5.0, -5.0)])
def test_exact_subpixel_shift_is_found(shift):
    """Truth = estimate sampled bilinearly at a grid shift: the search must land on it."""
    estimate = smooth_image()
    truth = displaced(estimate, shift)  # estimate's content sits at -shift w.r.t. the truth
    score = levin_score(estimate, truth)
    assert score.shift == (-shift[0], -shift[1])
    assert score.psnr > 200  # exact up to rounding
    assert score.ssim == pytest.approx(1.0)


def test_shifted_copy_recovers_the_shift():
    truth = smooth_image(seed=1)
    estimate = ndimage.shift(truth, (1.25, -2.5), order=1, mode="nearest")
    score = levin_score(estimate, truth)
    assert score.shift == (1.25, -2.5)
    assert 35 < score.psnr < 60  # double interpolation blurs a little


def test_unshifted_case_agrees_with_skimage():
    truth = smooth_image(seed=2)
    estimate = truth + np.random.default_rng(3).normal(0, 4.0, truth.shape)
    score = levin_score(estimate, truth)
    assert score.shift == (0.0, 0.0)
    crop_est, crop_truth = estimate[15:-15, 15:-15], truth[15:-15, 15:-15]
    mse = np.mean((crop_est - crop_truth) ** 2)
    assert score.psnr == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-12)
    assert score.psnr == pytest.approx(
        peak_signal_noise_ratio(crop_truth, crop_est, data_range=255), rel=1e-12)
    expected_ssim = structural_similarity(
        crop_truth, crop_est, data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, K1=0.01, K2=0.03)
    assert score.ssim == pytest.approx(expected_ssim, rel=1e-12)


def test_fast_search_matches_brute_force():
    rng = np.random.default_rng(4)
    estimate = np.pad(rng.uniform(0, 255, (41, 45)), ((0, 1), (0, 1)), mode="edge")
    reference = rng.uniform(0, 255, (41 - 16, 45 - 16))
    shifts = np.arange(-3, 3.01, 0.5) + 0.25  # fractions other than 0 and 0.5 too
    fast = _shift_errors(estimate, reference, 8, shifts)
    brute = np.array([[np.sum((_bilinear_window(estimate, 8, reference.shape, dy, dx)
                               - reference) ** 2) for dx in shifts] for dy in shifts])
    np.testing.assert_allclose(fast, brute, rtol=1e-10)


def test_bilinear_window_matches_map_coordinates():
    image = smooth_image((40, 40), seed=5)
    rows, cols = np.mgrid[0:20, 0:20].astype(float)
    expected = ndimage.map_coordinates(image, [10 + rows - 1.75, 10 + cols + 2.25], order=1)
    np.testing.assert_allclose(_bilinear_window(image, 10, (20, 20), -1.75, 2.25), expected,
                               rtol=1e-12)


def test_alignment_returns_the_aligned_crop():
    truth = smooth_image(seed=6)
    result = levin_align(np.roll(truth, (2, -1), axis=(0, 1)), truth)
    assert result.shift == (2.0, -1.0)
    assert result.aligned.shape == result.reference.shape == (66, 66)
    np.testing.assert_allclose(result.aligned, truth[15:-15, 15:-15])
    assert result.sse == pytest.approx(0.0, abs=1e-9)


def test_uint8_input_scores_like_its_float_values():
    truth = np.rint(smooth_image(seed=7)).astype(np.uint8)
    estimate = np.clip(truth.astype(int) + 3, 0, 255).astype(np.uint8)
    assert levin_score(estimate, truth) == levin_score(estimate.astype(float),
                                                       truth.astype(float))


def test_options_change_the_search():
    truth = smooth_image(seed=8)
    estimate = np.roll(truth, 3, axis=1)
    assert levin_score(estimate, truth, max_shift=2.0).shift[1] == 2.0  # capped
    assert levin_score(estimate, truth, step=1.0, crop=10).shift == (0.0, 3.0)


@pytest.mark.parametrize(
    ("estimate", "truth", "kwargs", "message"),
    [
        (np.zeros((64, 64, 3)), np.zeros((64, 64, 3)), {}, "2-D"),
        (np.zeros((64, 64)), np.full((60, 64), 100.0), {}, "same shape"),
        (np.full((64, 64), np.nan), np.full((64, 64), 100.0), {}, "NaN"),
        (np.zeros((64, 64)), np.full((64, 64), 0.5), {}, "multiply both images by 255"),
        (np.zeros((64, 64)), np.full((64, 64), 100.0), {"max_shift": 5.5, "crop": 5},
         "must not exceed"),
        (np.zeros((64, 64)), np.full((64, 64), 100.0), {"step": 0}, "step"),
        (np.zeros((64, 64)), np.full((64, 64), 100.0), {"crop": -1}, "crop"),
        (np.zeros((40, 40)), np.full((40, 40), 100.0), {}, "SSIM window"),
    ],
)
def test_bad_inputs_raise(estimate, truth, kwargs, message):
    with pytest.raises(ValueError, match=message):
        levin_score(estimate, truth, **kwargs)


# --------------------------------------------------------------------------- kernel_error


def test_kernel_against_itself():
    kernel = streak_kernel()
    error = kernel_error(kernel, kernel)
    assert isinstance(error, KernelError)
    assert error.ncc == pytest.approx(1.0)
    assert error.l2 == pytest.approx(0.0, abs=1e-12)
    assert error.shift == (0.0, 0.0)


def test_kernel_shifted_and_padded_copy():
    kernel = streak_kernel()
    estimate = np.roll(np.pad(kernel, 2), (2, -1), axis=(0, 1))  # 13x13, moved by (2, -1)
    error = kernel_error(3.0 * estimate, kernel)  # any scale
    assert error.ncc == pytest.approx(1.0)
    assert error.l2 == pytest.approx(0.0, abs=1e-12)
    assert error.shift == (2.0, -1.0)


def test_kernel_smaller_estimate_holding_the_support():
    kernel = streak_kernel()
    error = kernel_error(kernel[1:-1, 1:-1], kernel)  # 7x7 vs 9x9, same centre
    assert error.ncc == pytest.approx(1.0)
    assert error.shift == (0.0, 0.0)


def test_kernel_errors_of_different_kernels():
    kernel = streak_kernel()
    rotated = kernel_error(np.rot90(kernel, 2), kernel)
    assert rotated.ncc < 0.9
    blurred = ndimage.gaussian_filter(kernel, 1.0)
    error = kernel_error(blurred, kernel)
    assert rotated.ncc < error.ncc < 1.0
    assert error.shift == (0.0, 0.0)
    expected_l2 = np.linalg.norm(blurred / blurred.sum() - kernel / kernel.sum())
    assert error.l2 == pytest.approx(expected_l2, rel=1e-12)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    assert kernel_error(delta, kernel).ncc == pytest.approx(kernel.max() / np.linalg.norm(kernel))


@pytest.mark.parametrize(
    ("estimate", "message"),
    [(np.ones(9), "2-D"), (np.zeros((5, 5)), "all zero"), (np.full((5, 5), np.nan), "NaN"),
     (-np.ones((3, 3)), "positive sum"), (np.ones((0, 3)), "empty")],
)
def test_bad_kernels_raise(estimate, message):
    with pytest.raises(ValueError, match=message):
        kernel_error(estimate, streak_kernel())


# --------------------------------------------------------------------------- Levin data


@pytest.fixture(scope="module")
def levin_cases() -> list[LevinCase]:
    try:
        return load_levin()
    except FileNotFoundError as error:
        pytest.skip(f"Levin data set not available ({error}); set {levin.ENV_VAR}")


def test_loader_gives_the_32_cases(levin_cases):
    assert [c.name for c in levin_cases[:3]] == ["im1_kernel1", "im1_kernel2", "im1_kernel3"]
    assert len(levin_cases) == 32
    assert len({c.name for c in levin_cases}) == 32
    true_sizes = {1: 19, 2: 17, 3: 15, 4: 27, 5: 13, 6: 21, 7: 23, 8: 23}
    for case in levin_cases:
        assert case.name == f"im{case.image_index}_kernel{case.kernel_index}"
        assert case.kernel_size == KERNEL_SIZES[case.kernel_index]
        assert case.kernel.shape == (true_sizes[case.kernel_index],) * 2
        assert case.kernel.sum() == pytest.approx(1.0)
        assert case.blurry.shape == case.sharp.shape == (255, 255)
        assert case.blurry.dtype == case.sharp.dtype == case.kernel.dtype == np.float64
        assert 0 <= case.blurry.min() and case.blurry.max() <= 255
        assert case.sharp.max() > 150  # [0, 255], not [0, 1]
        assert not case.blurry.flags.writeable


def test_loader_selects_a_subset(levin_cases):
    root = levin_root()
    chosen = load_levin(root, images=[2], kernels=[8, 4])
    assert [c.name for c in chosen] == ["im2_kernel4", "im2_kernel8"]
    with pytest.raises(ValueError, match="kernels"):
        load_levin(root, kernels=[9])


def test_kernels_are_in_convolution_orientation(levin_cases):
    """convolve(sharp, kernel) must explain the blurry photo better than the rotated kernel."""
    for case in levin_cases[:8]:  # image 1, all eight kernels
        model = signal.fftconvolve(case.sharp, case.kernel, mode="same")
        flipped = signal.fftconvolve(case.sharp, case.kernel[::-1, ::-1], mode="same")
        fit = levin_score(model, case.blurry).psnr
        assert fit > 38, case.name
        assert fit > levin_score(flipped, case.blurry).psnr + 2, case.name


def test_blurry_inputs_score_the_published_baseline(levin_cases):
    scores = [levin_score(case.blurry, case.sharp) for case in levin_cases]
    assert np.mean([s.psnr for s in scores]) == pytest.approx(23.25, abs=0.05)
    assert np.mean([s.ssim for s in scores]) == pytest.approx(0.699, abs=0.005)
    assert max(max(abs(v) for v in s.shift) for s in scores) <= 5


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(levin.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_levin()
    monkeypatch.delenv(levin.ENV_VAR)
    monkeypatch.setattr(levin, "_default_candidates", lambda: [tmp_path / "nowhere"])
    with pytest.raises(FileNotFoundError, match=levin.ENV_VAR) as info:
        levin_root()
    assert "nowhere" in str(info.value)
