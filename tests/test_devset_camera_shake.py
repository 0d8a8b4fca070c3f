"""The camera-shake development set: deterministic, normalised odd kernels that are streaks,
blurry images that are the sharp ones convolved with them (plus the stated noise)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal

from napari_dip_deblur.devsets.camera_shake import (
    NOISE_STD,
    SIZE_CLASSES,
    camera_shake_case,
    camera_shake_case_names,
    camera_shake_cases,
    size_class,
    support_size,
    trajectory_kernel,
)


@pytest.fixture(scope="module")
def cases():
    return camera_shake_cases()


def _same_convolution(sharp: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``sharp`` convolved with ``kernel`` ('same' size), each colour channel alike."""
    k = kernel.astype(np.float64)
    if sharp.ndim == 2:
        return signal.fftconvolve(sharp.astype(np.float64), k, mode="same")
    return np.stack([signal.fftconvolve(sharp[..., c].astype(np.float64), k, mode="same")
                     for c in range(sharp.shape[2])], axis=-1)


def _interior(image: np.ndarray, margin: int) -> np.ndarray:
    return image[margin:-margin, margin:-margin]


def _elongation(kernel: np.ndarray) -> float:
    """Square root of the ratio of the principal second moments of the kernel's mass."""
    rows, cols = np.nonzero(kernel)
    weights = kernel[rows, cols].astype(np.float64)
    centred = np.stack([rows - np.average(rows, weights=weights),
                        cols - np.average(cols, weights=weights)])
    low, high = np.linalg.eigvalsh((centred * weights) @ centred.T)
    return float(np.sqrt(high / low))


def _area_fraction(kernel: np.ndarray, size: int) -> float:
    """Share of the ``size x size`` square the kernel covers above 2 % of its peak."""
    return float((kernel > 0.02 * kernel.max()).sum() / size**2)


def test_deterministic(cases):
    again = camera_shake_cases()
    assert [c.name for c in again] == [c.name for c in cases]
    for a, b in zip(cases, again, strict=True):
        assert a.seed == b.seed and a.kernel_size == b.kernel_size
        np.testing.assert_array_equal(a.kernel, b.kernel)
        np.testing.assert_array_equal(a.sharp, b.sharp)
        np.testing.assert_array_equal(a.blurry, b.blurry)


def test_size_and_content(cases):
    names = [c.name for c in cases]
    assert len(cases) >= 40
    assert len(set(names)) == len(names)
    assert names == camera_shake_case_names()
    classes = [c.size_class for c in cases]
    assert classes.count("small") >= 10
    assert classes.count("medium") >= 8
    assert classes.count("large") >= 8
    assert sum(c.colour for c in cases) >= 10 and sum(not c.colour for c in cases) >= 10
    noisy = [c for c in cases if c.noise_std > 0]
    assert len(noisy) >= 8 and all(c.noise_std == NOISE_STD for c in noisy)
    assert {c.size_class for c in noisy} == set(SIZE_CLASSES)
    for c in cases:
        assert c.sharp.dtype == np.float32 and c.blurry.dtype == np.float32
        assert c.sharp.shape == c.blurry.shape
        assert c.sharp.shape[:2] == (255, 255)
        assert c.sharp.ndim == 2 or c.sharp.shape[2] == 3
        assert 0 <= c.sharp.min() and c.sharp.max() <= 1
        assert 0 <= c.blurry.min() and c.blurry.max() <= 1
        assert c.sharp.std() > 0.03  # a photo, not a flat patch
        assert c.blurry_uint8.dtype == np.uint8
        assert np.abs(c.blurry_uint8 / 255.0 - c.blurry).max() <= 0.5 / 255 + 1e-6
        assert c.size_class == size_class(c.kernel_size)


def test_kernels_normalised_odd_and_centred(cases):
    for c in cases:
        k = c.kernel
        side = k.shape[0]
        assert k.dtype == np.float32 and k.shape == (side, side), c.name
        assert side % 2 == 1 and c.kernel_size % 2 == 1, c.name
        assert 11 <= c.kernel_size <= side <= 75, c.name
        assert k.min() >= 0 and abs(float(k.sum()) - 1) < 1e-5, c.name
        assert support_size(k) == c.kernel_size, c.name
        # Centre of mass on the middle pixel (to the nearest pixel).
        com = np.array(ndimage.center_of_mass(k.astype(np.float64)))
        assert np.all(np.abs(com - (side - 1) / 2) <= 0.5 + 1e-9), (c.name, com)
    sizes = sorted(c.kernel_size for c in cases)
    assert sizes[0] == 11 and sizes[-1] == 75


def test_kernels_are_connected_streaks(cases):
    elongations = []
    for c in cases:
        support = c.kernel > 0
        _, components = ndimage.label(support, structure=np.ones((3, 3)))
        assert components == 1, c.name  # one continuous path, not scattered dots
        # Thin: a path covers far less of its square than a blob (a disc covers 79 %).
        assert _area_fraction(c.kernel, c.kernel_size) < 0.6, c.name
        elongations.append(_elongation(c.kernel))
    assert np.median([_area_fraction(c.kernel, c.kernel_size) for c in cases]) < 0.35
    # Elongated for a fair share: a round blob's principal moments are equal (ratio 1).
    assert np.mean(np.array(elongations) > 2) >= 0.25
    # The measures do tell a blob: a Gaussian disc fails both.
    r = np.arange(21) - 10
    blob = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 4.0**2))
    assert _elongation(blob) < 1.01 and _area_fraction(blob, 21) > 0.6


def test_blurry_is_sharp_convolved_plus_stated_noise(cases):
    for c in cases:
        half = c.kernel.shape[0] // 2
        expected = _interior(_same_convolution(c.sharp, c.kernel), half)
        residual = _interior(c.blurry.astype(np.float64), half) - expected
        if c.noise_std == 0:
            assert np.abs(residual).max() < 1e-5, c.name
        else:
            # Gaussian noise of the stated std (clipping at 0 and 1 trims it slightly).
            assert abs(residual.std() - c.noise_std) < 0.1 * c.noise_std, c.name
            assert abs(residual.mean()) < 0.1 * c.noise_std, c.name


def test_orientation_is_convolution(cases):
    """Correlating with the kernel (convolving with it rotated 180 degrees) does not give the
    blurry image: the kernel is stated in convolution orientation."""
    for c in cases[:8]:
        if c.noise_std:
            continue
        half = c.kernel.shape[0] // 2
        observed = _interior(c.blurry.astype(np.float64), half)
        flipped = _interior(_same_convolution(c.sharp, np.rot90(c.kernel, 2)), half)
        assert np.abs(observed - flipped).max() > 100 * 1e-5, c.name
        assert np.sqrt(np.mean((observed - flipped) ** 2)) > 1e-3, c.name


def test_case_by_name(cases):
    c = cases[5]
    again = camera_shake_case(c.name)
    np.testing.assert_array_equal(again.blurry, c.blurry)
    np.testing.assert_array_equal(again.kernel, c.kernel)
    with pytest.raises(ValueError, match="no camera-shake case named"):
        camera_shake_case("im1_kernel1")


def test_trajectory_kernel_checks_its_size():
    kernel = trajectory_kernel(15, seed=3)
    assert support_size(kernel) == 15 and abs(float(kernel.sum()) - 1) < 1e-5
    np.testing.assert_array_equal(kernel, trajectory_kernel(15, seed=3))
    assert not np.array_equal(kernel, trajectory_kernel(15, seed=4))
    for bad in (9, 14, 77, 15.0):
        with pytest.raises(ValueError, match="size must be an odd integer"):
            trajectory_kernel(bad)
