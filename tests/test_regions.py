"""Regions: parsing and checking rectangles, and the automatic choice of a textured crop."""

import numpy as np
import pytest
from scipy import ndimage

from napari_dip_deblur.regions import (
    Region,
    as_region,
    auto_region,
    gradient_energy,
    region_from_text,
)


def _texture(shape, seed=0, sigma=2.0):
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma)
    return noise / noise.std()


def test_region_slices_shape_and_text():
    region = Region(3, 5, 20, 30)
    image = np.arange(64 * 64).reshape(64, 64)
    assert image[region.slices].shape == region.shape == (20, 30)
    assert image[region.slices][0, 0] == image[3, 5]
    assert region.as_tuple() == (3, 5, 20, 30)
    assert str(region) == "20x30 at (y=3, x=5)"
    assert region_from_text(" 3, 5,20 ,30") == region


@pytest.mark.parametrize("text", ["3,5,20", "a,b,c,d", "3;5;20;30", "", "1,2,3,4,5", "1.5,2,3,4"])
def test_region_from_text_refuses_anything_but_four_integers(text):
    with pytest.raises(ValueError, match="y0,x0,height,width"):
        region_from_text(text)


def test_as_region_accepts_tuples_arrays_and_regions_inside_the_image():
    assert as_region((0, 0, 16, 16), (64, 64)) == Region(0, 0, 16, 16)
    assert as_region(np.array([48, 40, 16, 24]), (64, 64)) == Region(48, 40, 16, 24)
    assert as_region(Region(10, 10, 54, 54), (64, 64)) == Region(10, 10, 54, 54)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((50, 0, 16, 16), "does not lie inside"),
        ((0, 50, 16, 16), "does not lie inside"),
        ((-1, 0, 16, 16), "does not lie inside"),
        ((0, 0, 65, 16), "does not lie inside"),
        ((0, 0, 8, 32), "at least 16x16"),
        ((0, 0, 16), "y0, x0, height, width"),
        ((0, 0, 16.0, 16), "y0, x0, height, width"),
        ((True, 0, 16, 16), "y0, x0, height, width"),
        ("0,0,16,16", "y0, x0, height, width"),
        (5, "y0, x0, height, width"),
    ],
)
def test_as_region_refuses_bad_or_outside_rectangles(value, message):
    with pytest.raises(ValueError, match=message):
        as_region(value, (64, 64))


def test_gradient_energy_matches_numpy_central_differences():
    image = _texture((32, 40), seed=1)
    gy, gx = np.gradient(image)  # central differences inside, one-sided at the borders
    expected = gy**2 + gx**2
    np.testing.assert_allclose(gradient_energy(image)[1:-1, 1:-1], expected[1:-1, 1:-1],
                               rtol=1e-12)
    assert gradient_energy(np.full((8, 8), 3.0)).max() == 0


def test_auto_region_picks_the_textured_half_of_a_half_flat_image():
    image = np.full((96, 160), 0.5)
    image[:, 96:] += 0.1 * _texture((96, 64))
    region = auto_region(image, 48)
    assert region.shape == (48, 48)
    # Inside the image, and wholly in the textured part.
    assert 0 <= region.y0 and region.y0 + region.height <= 96
    assert region.x0 >= 96 and region.x0 + region.width <= 160
    # Mirrored: the left half.
    region = auto_region(image[:, ::-1], 48)
    assert region.x0 + region.width <= 64


def test_auto_region_is_clipped_to_the_image_and_takes_rectangles():
    image = _texture((40, 200))
    region = auto_region(image, 64)
    assert region.shape == (40, 64)
    assert 0 <= region.x0 <= 200 - 64 and region.y0 == 0
    assert auto_region(image, (16, 32)).shape == (16, 32)
    assert auto_region(image, 1000) == Region(0, 0, 40, 200)


def test_auto_region_ignores_the_edges_of_clipped_highlights():
    # Left: a saturated square (hard, clipped edges); right: weak but real texture. The
    # smoothed gradient of the clipped edge is stronger and spreads beyond the highlight.
    image = np.full((96, 192), 0.3)
    image[:, 96:] += 0.05 * _texture((96, 96), sigma=3)
    image = np.clip(image, 0, 0.95)
    image[24:72, 24:72] = 1.0
    unmasked = auto_region(image, 48, saturation=None)
    assert unmasked.x0 < 72  # without the mask the highlight's edge wins
    for smoothing in (0.0, 2.0):
        region = auto_region(image, 48, smoothing=smoothing)
        assert region.x0 >= 72, (smoothing, region)


def test_auto_region_leaves_the_input_untouched_and_checks_its_arguments():
    image = (255 * np.clip(0.5 + 0.2 * _texture((64, 64)), 0, 1)).astype(np.uint8)
    before = image.copy()
    auto_region(image, 32)
    assert np.array_equal(image, before)
    with pytest.raises(ValueError, match="2-D"):
        auto_region(np.zeros((4, 64, 64)), 32)
    with pytest.raises(ValueError, match="size must be positive"):
        auto_region(image, 0)
