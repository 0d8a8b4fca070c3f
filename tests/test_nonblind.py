"""Non-blind deconvolution: quality on a known blur, borders, the dtype policy, input checks,
and the solvers against independent references (a dense least-squares solve, brute force)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal
from skimage import data

from napari_dip_deblur.nonblind import (
    DEFAULT_WEIGHTS,
    EDGES,
    METHODS,
    _Problem,
    _shrinkage_table,
    deconvolve,
)

SIDE = 96


def psnr(estimate: np.ndarray, truth: np.ndarray, peak: float = 255.0) -> float:
    return float(10 * np.log10(peak**2 / np.mean((np.asarray(estimate, float) - truth) ** 2)))


def streak_kernel() -> np.ndarray:
    """An asymmetric L-shaped 9x9 motion kernel (sums to 1): a flip would be caught."""
    kernel = np.zeros((9, 9))
    kernel[2, 2:7] = [1, 2, 3, 2, 1]
    kernel[3:7, 6] = [2, 3, 1, 1]
    return kernel / kernel.sum()


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    """A natural 96x96 image on [0, 255] blurred by a 'valid' convolution of a larger crop,
    so the blur really pulls in content from outside the frame (nothing is periodic), plus
    Gaussian noise of std 1 (seeded)."""
    kernel = streak_kernel()
    camera = data.camera().astype(np.float64).reshape(256, 2, 256, 2).mean(axis=(1, 3))
    pad = kernel.shape[0] // 2
    large = camera[100 : 100 + SIDE + 2 * pad, 60 : 60 + SIDE + 2 * pad]
    noise = np.random.default_rng(0).normal(0.0, 1.0, (SIDE, SIDE))
    return {
        "truth": large[pad:-pad, pad:-pad],
        "blurry": signal.convolve(large, kernel, mode="valid") + noise,
        "kernel": kernel,
    }


def distance_to_edge(shape: tuple[int, int]) -> np.ndarray:
    rows = np.minimum(np.arange(shape[0]), shape[0] - 1 - np.arange(shape[0]))
    cols = np.minimum(np.arange(shape[1]), shape[1] - 1 - np.arange(shape[1]))
    return np.minimum(rows[:, None], cols[None, :])


# --------------------------------------------------------------------------- quality


@pytest.mark.parametrize(
    ("method", "alpha", "gain"),
    [("hyper_laplacian", 2 / 3, 12.0), ("hyper_laplacian", 0.5, 12.0),
     ("hyper_laplacian", 1.0, 12.0), ("wiener", 2 / 3, 11.0)],
)
def test_deconvolution_raises_psnr_by_a_clear_margin(scene, method, alpha, gain):
    # Measured: 20.2 dB blurry, 33.7-34.3 dB restored (whole frame, borders included).
    restored = deconvolve(scene["blurry"], scene["kernel"], method=method, alpha=alpha,
                          data_range=255)
    before = psnr(scene["blurry"], scene["truth"])
    after = psnr(restored, scene["truth"])
    assert after > before + gain, (before, after)


def test_the_kernel_is_read_in_convolution_orientation(scene):
    # The same kernel rotated by 180 degrees (a correlation kernel) must do much worse.
    right = deconvolve(scene["blurry"], scene["kernel"], data_range=255)
    flipped = deconvolve(scene["blurry"], scene["kernel"][::-1, ::-1], data_range=255)
    assert psnr(right, scene["truth"]) > psnr(flipped, scene["truth"]) + 8


def test_an_off_centre_delta_undoes_its_shift():
    # convolve(x, k, 'same') with a delta at (1, 3) of a 5x5 kernel moves content by (-1, +1).
    sharp = np.random.default_rng(3).uniform(0, 255, (40, 50))
    kernel = np.zeros((5, 5))
    kernel[1, 3] = 1.0
    shifted = signal.convolve(sharp, kernel, mode="same")
    assert np.allclose(shifted[5:-5, 5:-5], sharp[6:-4, 4:-6])
    restored = deconvolve(shifted, kernel, method="wiener", weight=1e-6)
    inner = (slice(5, -5), slice(5, -5))
    assert np.abs(restored - sharp)[inner].max() < 1e-2 * 255


@pytest.mark.parametrize("method", METHODS)
def test_no_ringing_from_the_borders(scene, method):
    """Beyond the kernel's reach (4 px) the error near the border stays close to the interior
    error with the default edge; assuming a periodic image rings far inwards."""
    distance = distance_to_edge((SIDE, SIDE))
    band = (distance >= 4) & (distance < 16)
    interior = distance >= 20

    def band_over_interior(edge: str) -> float:
        error = (deconvolve(scene["blurry"], scene["kernel"], method=method, edge=edge,
                            data_range=255) - scene["truth"]) ** 2
        return float(np.sqrt(error[band].mean() / error[interior].mean()))

    assert band_over_interior("extend") < 1.8  # measured 1.2-1.4
    assert band_over_interior("periodic") > 2.5  # measured about 4: the measure sees ringing


def test_extended_domain_beats_tapering_near_the_borders(scene):
    distance = distance_to_edge((SIDE, SIDE))
    errors = {edge: np.abs(deconvolve(scene["blurry"], scene["kernel"], edge=edge,
                                      data_range=255) - scene["truth"])[distance < 16].mean()
              for edge in ("extend", "taper")}
    assert errors["extend"] < 0.7 * errors["taper"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kernel", [np.ones((1, 1)), np.pad(np.ones((1, 1)), 1)],
                         ids=["1x1", "3x3"])
def test_a_delta_kernel_returns_about_the_input(scene, method, kernel):
    restored = deconvolve(scene["blurry"], kernel, method=method)
    difference = np.abs(restored - scene["blurry"])
    # Only the prior acts: it removes a little noise (measured mean 0.03-0.11, max < 0.8).
    assert difference.mean() < 0.25
    assert difference.max() < 2.0


def test_a_constant_image_stays_constant():
    restored = deconvolve(np.full((20, 20), 7, dtype=np.uint16), streak_kernel())
    assert restored.dtype == np.float32
    assert np.array_equal(restored, np.full((20, 20), 7, dtype=np.float32))


# --------------------------------------------------------------------------- dtype and scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
@pytest.mark.parametrize("method", METHODS)
def test_input_is_untouched_and_output_is_a_fresh_float32_array(scene, dtype, method):
    image = np.clip(scene["blurry"], 0, 255).astype(dtype)
    image.setflags(write=False)  # read-only input must work too
    before = image.copy()
    restored = deconvolve(image, scene["kernel"], method=method, edge="periodic")
    assert np.array_equal(image, before)
    assert restored.dtype == np.float32 and restored.shape == image.shape
    assert not np.shares_memory(restored, image) and restored.flags.writeable


def test_uint8_input_gives_float32_on_the_0_255_scale(scene):
    image = np.clip(np.round(scene["blurry"]), 0, 255).astype(np.uint8)
    restored = deconvolve(image, scene["kernel"])
    assert restored.dtype == np.float32
    assert abs(restored.mean() - image.mean()) < 1.0  # same brightness, not rescaled
    assert psnr(restored, scene["truth"]) > psnr(image, scene["truth"]) + 10
    # uint8 is read on a fixed 0..255 range: the same as passing data_range=255 for floats.
    as_float = deconvolve(image.astype(np.float64), scene["kernel"], data_range=255)
    np.testing.assert_allclose(restored, as_float, atol=1e-2)


@pytest.mark.parametrize("method", METHODS)
def test_float_results_follow_the_input_scale(scene, method):
    restored = deconvolve(scene["blurry"], scene["kernel"], method=method)
    rescaled = deconvolve(0.01 * scene["blurry"] - 3.0, scene["kernel"], method=method)
    # float32 rounding moves a few gradients across the shrinkage threshold: allow 0.1 % of
    # the rescaled range (about 2.5).
    np.testing.assert_allclose(rescaled, 0.01 * restored - 3.0, atol=2.5e-3)


def test_unnormalised_kernels_are_normalised(scene):
    restored = deconvolve(scene["blurry"], scene["kernel"], data_range=255)
    scaled = deconvolve(scene["blurry"], 40 * scene["kernel"], data_range=255)
    np.testing.assert_allclose(scaled, restored, atol=1e-3)


def test_a_larger_weight_gives_a_smoother_result(scene):
    def roughness(weight: float) -> float:
        restored = deconvolve(scene["blurry"], scene["kernel"], weight=weight, data_range=255)
        return float(np.abs(np.diff(restored, axis=1)).mean())

    assert roughness(1e-3) < roughness(DEFAULT_WEIGHTS["hyper_laplacian"]) < roughness(1e-5)


# --------------------------------------------------------------------------- bad input


GOOD_IMAGE = np.random.default_rng(0).uniform(0, 1, (32, 32))
GOOD_KERNEL = np.full((3, 3), 1 / 9)


@pytest.mark.parametrize(
    ("image", "kernel", "kwargs", "message"),
    [
        (np.zeros((4, 32, 32)), GOOD_KERNEL, {}, "image must be 2-D"),
        (np.zeros(32), GOOD_KERNEL, {}, "image must be 2-D"),
        (np.zeros((0, 32)), GOOD_KERNEL, {}, "image is empty"),
        (np.where(np.eye(32) > 0, np.nan, 1.0), GOOD_KERNEL, {}, "image contains NaN"),
        (np.where(np.eye(32) > 0, np.inf, 1.0), GOOD_KERNEL, {}, "image contains NaN"),
        (np.ones((32, 32), dtype=bool), GOOD_KERNEL, {}, "image must hold real numbers"),
        (np.ones((32, 32), dtype=complex), GOOD_KERNEL, {}, "image must hold real numbers"),
        (GOOD_IMAGE, np.ones((4, 4)), {}, "kernel must have odd sides"),
        (GOOD_IMAGE, np.ones((3, 4)), {}, "kernel must have odd sides"),
        (GOOD_IMAGE, np.ones(5), {}, "kernel must be a non-empty 2-D array"),
        (GOOD_IMAGE, np.ones((33, 3)), {}, "kernel (33x3) is larger than the image"),
        (GOOD_IMAGE, np.full((3, 3), np.nan), {}, "kernel contains NaN"),
        (GOOD_IMAGE, np.zeros((3, 3)), {}, "kernel must sum to a positive value"),
        (GOOD_IMAGE, -GOOD_KERNEL, {}, "kernel must sum to a positive value"),
        (GOOD_IMAGE, GOOD_KERNEL, {"method": "richardson_lucy"}, "method must be one of"),
        (GOOD_IMAGE, GOOD_KERNEL, {"edge": "reflect"}, "edge must be one of"),
        (GOOD_IMAGE, GOOD_KERNEL, {"weight": 0.0}, "weight must be a finite number > 0"),
        (GOOD_IMAGE, GOOD_KERNEL, {"weight": -1e-3}, "weight must be a finite number > 0"),
        (GOOD_IMAGE, GOOD_KERNEL, {"weight": np.nan}, "weight must be a finite number > 0"),
        (GOOD_IMAGE, GOOD_KERNEL, {"weight": "big"}, "weight must be a finite number > 0"),
        (GOOD_IMAGE, GOOD_KERNEL, {"alpha": 0.0}, "alpha must be a finite number > 0"),
        (GOOD_IMAGE, GOOD_KERNEL, {"alpha": 2.5}, "alpha must be in (0, 2]"),
        (GOOD_IMAGE, GOOD_KERNEL, {"iterations": 0}, "iterations must be an integer >= 1"),
        (GOOD_IMAGE, GOOD_KERNEL, {"iterations": 2.5}, "iterations must be an integer >= 1"),
        (GOOD_IMAGE, GOOD_KERNEL, {"iterations": True}, "iterations must be an integer >= 1"),
        (GOOD_IMAGE, GOOD_KERNEL, {"data_range": 0}, "data_range must be a finite number > 0"),
    ],
)
def test_bad_input_raises_a_specific_value_error(image, kernel, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        deconvolve(image, kernel, **kwargs)


# --------------------------------------------------------------------------- solvers


def dense_blur_and_gradients(kernel: np.ndarray, shape: tuple[int, int]):
    """Matrices of the circular convolution (kernel centred on its middle pixel) and of the
    circular forward differences on a ``shape`` domain, built pixel by pixel."""
    rows, cols = shape
    size = rows * cols
    index = np.arange(size).reshape(shape)
    blur = np.zeros((size, size))
    kh, kw = kernel.shape
    for i in range(kh):
        for j in range(kw):
            # (k * x)[p] = sum k[i, j] x[p - (i - kh // 2, j - kw // 2)]
            source = np.roll(index, (i - kh // 2, j - kw // 2), axis=(0, 1))
            blur[index.ravel(), source.ravel()] += kernel[i, j]
    eye = np.eye(size)
    horizontal = eye[np.roll(index, -1, axis=1).ravel()] - eye
    vertical = eye[np.roll(index, -1, axis=0).ravel()] - eye
    return blur, horizontal, vertical


@pytest.mark.parametrize("edge", ["extend", "periodic"])
def test_wiener_matches_a_dense_least_squares_solve(edge):
    """The minimiser of 1/2 ||M(k * x) - y||^2 + w/2 ||D x||^2 on the solver's domain, by
    dense normal equations: checks the operators, the mask and the conjugate gradients."""
    rng = np.random.default_rng(5)
    observed = rng.uniform(0, 1, (13, 11))
    kernel = rng.uniform(0, 1, (5, 3))
    kernel /= kernel.sum()
    weight = 1e-2
    offset, span = observed.mean(), observed.max() - observed.min()
    normalised = ((observed - offset) / span).astype(np.float32)
    problem = _Problem.build(torch.from_numpy(normalised), kernel, edge)
    blur, horizontal, vertical = dense_blur_and_gradients(kernel, problem.shape)
    window = np.zeros(problem.shape, dtype=bool)
    window[problem.window] = True
    rows = blur[window.ravel()]  # M K: blur, then keep the observed window
    system = rows.T @ rows + weight * (horizontal.T @ horizontal + vertical.T @ vertical)
    solution = np.linalg.solve(system, rows.T @ normalised.ravel().astype(np.float64))
    expected = solution.reshape(problem.shape)[problem.window] * span + offset

    restored = deconvolve(observed, kernel, method="wiener", weight=weight, edge=edge,
                          iterations=300)
    np.testing.assert_allclose(restored, expected, atol=2e-4)


@pytest.mark.parametrize("alpha", [0.5, 2 / 3, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("beta", [1.0, 30.0, 1000.0])
def test_shrinkage_table_matches_brute_force(alpha, beta):
    limit = 1.5
    slope, intercept, step = _shrinkage_table(alpha, beta, limit)
    v = np.linspace(0, limit, 151)
    cell = np.minimum((v / step).astype(int), len(slope) - 1)
    w = slope.numpy()[cell] * (v / step) + intercept.numpy()[cell]

    def brute_force(values: np.ndarray) -> np.ndarray:
        candidates = np.linspace(0, limit, 30001)[None, :]  # a 5e-5 grid
        energy = candidates**alpha + beta / 2 * (candidates - values[:, None]) ** 2
        return candidates[0, energy.argmin(axis=1)]

    best = brute_force(v)
    # For alpha < 1 the minimiser jumps from 0 at a threshold; the table is linear inside the
    # one cell that holds the jump, so points that close to it are left out.
    near_jump = (brute_force(v - step) == 0) != (brute_force(v + step) == 0)
    assert near_jump.sum() <= 1
    ours = w**alpha + beta / 2 * (w - v) ** 2
    grid = best**alpha + beta / 2 * (best - v) ** 2
    # Never worse than the grid's minimum, to within the grid's resolution.
    assert np.all((ours <= grid + 1e-6 * (1 + grid))[~near_jump])
    np.testing.assert_allclose(w[~near_jump], best[~near_jump], atol=5e-5 + step)
    # The closed forms, to within a cell (soft thresholding has a kink).
    if alpha == 1.0:
        np.testing.assert_allclose(w, np.maximum(v - 1 / beta, 0), atol=step)
    if alpha == 2.0:
        np.testing.assert_allclose(w, beta * v / (beta + 2), atol=1e-6)


def test_every_edge_and_method_runs_on_odd_shapes():
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 255, (23, 41))
    kernel = rng.uniform(0, 1, (7, 3))
    for method in METHODS:
        for edge in EDGES:
            restored = deconvolve(image, kernel, method=method, edge=edge, iterations=3)
            assert restored.shape == image.shape and np.isfinite(restored).all()
