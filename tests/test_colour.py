"""Colour layout and luminance, against scikit-image's colour conversions."""

import numpy as np
import pytest
from skimage import color, data

from napari_dip_deblur.colour import LUMINANCE_WEIGHTS, colour_layout, luminance


@pytest.fixture(scope="module")
def photo():
    return data.astronaut()[::8, ::8]  # (64, 64, 3) uint8


def test_rec709_luminance_matches_skimage_rgb2gray(photo):
    # rgb2gray uses 0.2125, 0.7154, 0.0721: the Rec. 709 weights to three decimals.
    ours = luminance(photo, weights="rec709") / 255
    np.testing.assert_allclose(ours, color.rgb2gray(photo), atol=3e-4)


def test_rec601_luminance_is_the_y_of_skimage_ycbcr(photo):
    # rgb2ycbcr gives studio-range Y = 16 + 219 * (0.299 R + 0.587 G + 0.114 B).
    y = (color.rgb2ycbcr(photo)[..., 0] - 16) / 219
    np.testing.assert_allclose(luminance(photo) / 255, y, atol=1e-6)


def test_luminance_is_float64_on_the_input_scale_and_leaves_the_input_untouched(photo):
    before = photo.copy()
    grey = luminance(photo)
    assert np.array_equal(photo, before)
    assert grey.dtype == np.float64 and grey.shape == photo.shape[:2]
    assert luminance(np.full((4, 4, 3), 100, np.uint8))[0, 0] == pytest.approx(100.0)
    for weights in LUMINANCE_WEIGHTS:
        assert sum(LUMINANCE_WEIGHTS[weights]) == pytest.approx(1.0)
    # "mean" is the plain channel average.
    np.testing.assert_allclose(luminance(photo, weights="mean"), photo.mean(axis=-1))


def test_alpha_is_ignored_and_the_channel_axis_can_be_anywhere(photo):
    rgba = np.concatenate([photo, np.zeros((*photo.shape[:2], 1), np.uint8)], axis=-1)
    np.testing.assert_array_equal(luminance(rgba), luminance(photo))
    first = np.moveaxis(photo, -1, 0)  # (3, M, N)
    np.testing.assert_array_equal(luminance(first, channel_axis=0), luminance(photo))
    grey_alpha = np.stack([photo[..., 0], photo[..., 1]], axis=-1)  # grey + alpha
    np.testing.assert_array_equal(luminance(grey_alpha), photo[..., 0].astype(float))


@pytest.mark.parametrize(
    ("shape", "axis", "alpha", "expected"),
    [
        ((8, 8, 3), -1, None, (2, 3, False)),
        ((8, 8, 4), -1, None, (2, 3, True)),
        ((8, 8, 2), -1, None, (2, 1, True)),
        ((3, 8, 8), 0, None, (0, 3, False)),
        ((5, 8, 8, 4), -1, None, (3, 3, True)),
        ((8, 8, 4), -1, True, (2, 3, True)),
    ],
)
def test_colour_layout_reads_the_channels(shape, axis, alpha, expected):
    layout = colour_layout(shape, axis, alpha)
    assert (layout.channel_axis, layout.n_colour, layout.has_alpha) == expected


@pytest.mark.parametrize(
    ("shape", "axis", "alpha", "message"),
    [
        ((8, 8), -1, None, "channel_axis=None"),
        ((8, 8, 5), -1, None, "holds 5 channels"),
        ((8, 8, 1), -1, None, "holds 1 channels"),
        ((8, 8, 3), -1, True, "with alpha=True"),
        ((8, 8, 4), -1, False, "holds 4 channels"),
        ((8, 8, 3), 3, None, "out of range"),
        ((8, 8, 3), 0, None, "holds 8 channels"),
    ],
)
def test_colour_layout_refuses_what_is_not_colour(shape, axis, alpha, message):
    with pytest.raises(ValueError, match=message):
        colour_layout(shape, axis, alpha)


def test_unknown_weights_are_refused(photo):
    with pytest.raises(ValueError, match="weights must be one of"):
        luminance(photo, weights="srgb")
