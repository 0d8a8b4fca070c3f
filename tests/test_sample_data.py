"""File > Open Sample: layer-data tuples, and the real route through napari."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dip_deblur._sample_data import make_blurred_fluorescence, make_blurred_photo


@pytest.mark.parametrize(
    ("make", "stem"),
    [(make_blurred_photo, "camera"), (make_blurred_fluorescence, "fluorescence")],
)
def test_samples_are_layer_data_tuples_with_the_truth(make, stem):
    layers = make()
    assert [kw["name"] for _, kw, _ in layers] == [
        f"{stem} sharp (truth)",
        f"{stem} kernel (truth)",
        stem,
    ]
    assert all(kind == "image" for _, _, kind in layers)
    (sharp, sharp_kw, _), (kernel, kernel_kw, _), (blurry, blurry_kw, _) = layers
    assert blurry.shape == sharp.shape == (128, 128)
    assert blurry.dtype == sharp.dtype == kernel.dtype == np.float32
    assert np.isfinite(blurry).all() and blurry.std() > 0
    assert kernel.ndim == 2 and all(s % 2 == 1 for s in kernel.shape)
    assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert blurry_kw.get("visible", True) and not sharp_kw["visible"]
    assert not kernel_kw["visible"]
    assert blurry_kw["metadata"]["true_kernel_size"] == list(kernel.shape)


def test_samples_are_deterministic():
    a, b = make_blurred_photo(), make_blurred_photo()
    for (x, _, _), (y, _, _) in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_open_sample_through_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-dip-deblur", "blurred_photo")
    assert [layer.name for layer in viewer.layers] == [
        "camera sharp (truth)",
        "camera kernel (truth)",
        "camera",
    ]
    assert viewer.layers["camera"].visible and not viewer.layers["camera sharp (truth)"].visible
    assert tuple(viewer.layers["camera"].contrast_limits) == (0.0, 1.0)
