"""Sample data for File > Open Sample: blurred images with their ground truth.

Built by :mod:`napari_dip_deblur.samples` (numpy/scipy/scikit-image, no download, no torch).
Each function returns napari layer-data tuples ``(data, add_kwargs, "image")``. The blurry
image comes last so that it is on top and selected; the ground truth (sharp image and true
kernel) is added hidden, for comparison with the widget's output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .samples import BlurredSample, blurred_fluorescence, blurred_photo

__all__ = ["make_blurred_fluorescence", "make_blurred_photo", "make_widefield_fluorescence"]

LayerDataTuple = tuple[Any, dict[str, Any], str]


def make_blurred_photo() -> list[LayerDataTuple]:
    """A 128 x 128 photo blurred by camera shake (13 x 13 kernel), with the truth.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``"camera"`` (blurry), ``"camera sharp (truth)"`` and ``"camera kernel (truth)"``.
    """
    return _layers(blurred_photo(), contrast_limits=(0.0, 1.0), colormap="gray")


def make_blurred_fluorescence() -> list[LayerDataTuple]:
    """A 128 x 128 synthetic fluorescence image (Gaussian PSF, Poisson noise), with the truth.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``"fluorescence"`` (blurry, photon counts), ``"fluorescence sharp (truth)"`` and
        ``"fluorescence kernel (truth)"`` (the PSF).
    """
    return _layers(blurred_fluorescence(), colormap="green")


def make_widefield_fluorescence() -> list[LayerDataTuple]:
    """A 256 x 256 widefield image of cells as a camera records it, with the truth.

    uint16 counts: about 400 photons at the peak, Poisson noise, a camera offset of 100
    counts and read noise, a slightly defocused pupil PSF (0.6 waves), pixels of scale 0.1. Made by
    :func:`napari_dip_deblur.devsets.fluorescence.make_case` (a seed outside the dev set's).

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``"widefield"`` (counts, uint16), ``"widefield sharp (truth)"`` (expected counts) and
        ``"widefield PSF (truth)"``.
    """
    from .devsets.fluorescence import make_case

    case = make_case("cells", "defocus-0.6", 400, seed=2026, size=256)
    sample = BlurredSample(case.blurry, case.sharp, case.psf.astype(np.float32), "widefield")
    layers = _layers(sample, colormap="green", scale=(0.1, 0.1))
    psf_data, psf_kwargs, psf_type = layers[1]
    psf_kwargs["name"] = "widefield PSF (truth)"
    layers[1] = (psf_data, psf_kwargs, psf_type)
    for _, kwargs, _ in layers:
        kwargs["metadata"] = {**kwargs["metadata"], "suggested_preset": "microscopy"}
    return layers


def _layers(sample: BlurredSample, **image_kwargs: Any) -> list[LayerDataTuple]:
    name = sample.name
    kh, kw = sample.kernel.shape
    hint = {"true_kernel_size": [kh, kw], "sample": name}
    return [
        (
            sample.sharp,
            {"name": f"{name} sharp (truth)", "visible": False, "metadata": hint, **image_kwargs},
            "image",
        ),
        (
            sample.kernel,
            {
                "name": f"{name} kernel (truth)",
                "visible": False,
                "colormap": "magma",
                "blending": "additive",
                "metadata": hint,
            },
            "image",
        ),
        (sample.blurry, {"name": name, "metadata": hint, **image_kwargs}, "image"),
    ]
