"""Microscopy: the PSF families, Richardson-Lucy in counts, the background, the blind PSF
width, the stopping rule, the count detector, the dev set's determinism, and input checks.

Real synthetic fluorescence from the dev set (64-128 px), no mocks."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from napari_dip_deblur.devsets.fluorescence import (
    PSFS,
    affine_psnr,
    fluorescence_cases,
    make_case,
    true_psf,
)
from napari_dip_deblur.microscopy import (
    FAMILIES,
    PSFModel,
    deconvolve_microscopy,
    estimate_psf,
    looks_like_counts,
    psf_width,
    render_psf,
)
from napari_dip_deblur.microscopy.background import estimate_background
from napari_dip_deblur.microscopy.blind_rl import blind_richardson_lucy
from napari_dip_deblur.microscopy.noise_model import estimate_noise_model
from napari_dip_deblur.microscopy.richardson_lucy import richardson_lucy
from napari_dip_deblur.microscopy.stopping import cross_validated_iterations

MODELS = [PSFModel("gaussian", 1.5), PSFModel("airy", 3.0), PSFModel("defocus", 2.0, 0.8)]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.family)
def test_psf_families_are_normalised_centred_symmetric(model: PSFModel) -> None:
    psf = render_psf(model, 21)
    assert psf.shape == (21, 21)
    assert psf.min() >= 0
    assert psf.sum() == pytest.approx(1.0, abs=1e-12)
    yy, xx = np.mgrid[-10:11, -10:11]
    assert np.sum(psf * yy) == pytest.approx(0.0, abs=1e-9)  # centroid on the middle pixel
    assert np.sum(psf * xx) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(psf, psf[::-1, :], atol=1e-12)
    np.testing.assert_allclose(psf, psf.T, atol=1e-12)


def test_psf_widths_match_optics() -> None:
    # a Gaussian's FWHM is 2.355 sigma (widened by the pixel: sigma^2 + 1/12)
    sigma = 2.0
    assert psf_width(render_psf(PSFModel("gaussian", sigma), 31)) == pytest.approx(
        2.3548 * np.sqrt(sigma**2 + 1 / 12), rel=0.03)
    # the Airy FWHM is 0.84 times its first-ring radius (1.03 / 1.22)
    assert psf_width(render_psf(PSFModel("airy", 4.0), 31)) == pytest.approx(0.84 * 4.0,
                                                                              rel=0.05)
    # defocus widens the in-focus pattern
    assert psf_width(render_psf(PSFModel("defocus", 2.0, 1.0), 31)) > 2 * psf_width(
        render_psf(PSFModel("defocus", 2.0, 0.0), 31))


def test_psf_model_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="family"):
        PSFModel("lorentz", 1.0)
    with pytest.raises(ValueError, match="width"):
        PSFModel("gaussian", 0.0)
    with pytest.raises(ValueError, match="defocus"):
        PSFModel("gaussian", 1.0, defocus=0.5)
    with pytest.raises(ValueError, match="odd"):
        render_psf(PSFModel("gaussian", 1.0), 8)


def test_dev_set_is_deterministic_and_in_counts() -> None:
    a = make_case("cells", "defocus-0.9", 200, seed=5, size=64)
    b = make_case("cells", "defocus-0.9", 200, seed=5, size=64)
    c = make_case("cells", "defocus-0.9", 200, seed=6, size=64)
    np.testing.assert_array_equal(a.blurry, b.blurry)
    np.testing.assert_array_equal(a.sharp, b.sharp)
    assert not np.array_equal(a.blurry, c.blurry)
    assert a.blurry.dtype == np.uint16 and a.blurry.shape == (64, 64)
    assert a.psf.sum() == pytest.approx(1.0)
    # the blurred expected photons peak at 200 above the background, with an offset of 100
    assert a.blurry.max() == pytest.approx(a.background + 200, abs=5 * np.sqrt(200) + 10)
    names = [case.name for case in fluorescence_cases(size=32)]
    assert len(names) == len(set(names)) == 3 * len(PSFS)


def test_true_psfs_are_centred_and_symmetric() -> None:
    for name in PSFS:
        psf = true_psf(name)
        np.testing.assert_allclose(psf, psf[::-1, ::-1], atol=1e-12)
        assert psf.sum() == pytest.approx(1.0)


def test_richardson_lucy_keeps_counts_background_and_sign() -> None:
    case = make_case("beads", "gaussian-1.2", 1000, seed=1, size=64)
    counts = case.blurry.copy()
    result = richardson_lucy(counts, case.psf, case.background, iterations=30)
    np.testing.assert_array_equal(counts, case.blurry)  # input untouched
    assert result.image.dtype == np.float32 and result.image.min() >= 0
    assert result.iterations == 30
    # flux is kept: same mean counts (the boundary-aware model loses a little at the edges)
    assert result.image.mean() == pytest.approx(counts.mean(), rel=0.03)
    # where there is no object the result sits at the background (within 1 % of the peak of
    # 1000 photons: RL leaves a little of the blurred light there), not at zero
    dark = case.sharp < case.background + 1
    assert np.median(result.image[dark]) == pytest.approx(case.background, abs=10)
    # and it is sharper than the input
    assert affine_psnr(result.image, case.sharp) > affine_psnr(counts, case.sharp) + 1.5
    # residuals fall
    assert result.residuals[-1] < result.residuals[0]


def test_richardson_lucy_discrepancy_rule_stops() -> None:
    case = make_case("cells", "gaussian-1.2", 200, seed=2, size=64)
    noise = estimate_noise_model(case.blurry)
    variance = float(np.mean(noise.variance(case.blurry)))
    result = richardson_lucy(case.blurry, case.psf, case.background, noise_variance=variance,
                             max_iterations=300)
    assert 1 <= result.iterations < 300
    assert result.residuals[-1] <= variance
    with pytest.raises(ValueError, match="noise_variance"):
        richardson_lucy(case.blurry, case.psf, case.background)


def test_background_and_noise_model_estimates() -> None:
    case = make_case("cells", "defocus-0.6", 1000, seed=3)
    assert estimate_background(case.blurry) == pytest.approx(case.background, rel=0.03)
    noise = estimate_noise_model(case.blurry)
    assert noise.gain == pytest.approx(1.0, rel=0.1)  # one count per photon
    assert -noise.constant / noise.gain == pytest.approx(100.0, abs=10)  # the camera offset


def test_stopping_rule_runs_longer_with_more_photons() -> None:
    low = make_case("filaments", "gaussian-1.2", 50, seed=4, size=64)
    high = make_case("filaments", "gaussian-1.2", 5000, seed=4, size=64)
    its = [cross_validated_iterations(c.blurry, c.psf, estimate_background(c.blurry),
                                      estimate_noise_model(c.blurry), max_iterations=150)
           for c in (low, high)]
    assert its[0] < its[1]


def test_blind_width_within_tolerance_on_an_easy_case() -> None:
    case = make_case("filaments", "airy-3.2", 5000, seed=3)
    blurry = case.blurry.copy()
    psf, model = estimate_psf(blurry)
    np.testing.assert_array_equal(blurry, case.blurry)
    assert psf.sum() == pytest.approx(1.0)
    assert psf_width(model.render(31)) == pytest.approx(psf_width(case.psf), rel=0.10)


def test_deconvolve_microscopy_blind_beats_input_in_counts() -> None:
    case = make_case("cells", "gaussian-2.2", 1000, seed=7)
    blurry = case.blurry.copy()
    result = deconvolve_microscopy(blurry)
    np.testing.assert_array_equal(blurry, case.blurry)
    assert result.image.dtype == np.float32 and result.image.shape == blurry.shape
    assert result.image.min() >= 0
    assert result.model is not None and result.model.family in FAMILIES
    assert result.background == pytest.approx(case.background, rel=0.05)
    assert result.image.mean() == pytest.approx(blurry.mean(), rel=0.03)
    assert affine_psnr(result.image, case.sharp) > affine_psnr(blurry, case.sharp) + 1.0


def test_deconvolve_microscopy_with_a_measured_psf() -> None:
    case = make_case("beads", "defocus-0.9", 1000, seed=8, size=64)
    result = deconvolve_microscopy(case.blurry, psf=case.psf * 3.0, iterations=40)
    assert result.model is None and result.iterations == 40
    np.testing.assert_allclose(result.psf, case.psf)
    assert affine_psnr(result.image, case.sharp) > affine_psnr(case.blurry, case.sharp) + 2.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image": np.zeros((4, 64, 64))}, "2-D"),
    ({"image": np.zeros((16, 64))}, "32 x 32"),
    ({"image": np.full((64, 64), np.nan)}, "NaN"),
    ({"psf": np.ones((4, 4))}, "odd"),
    ({"psf": -np.ones((3, 3))}, "non-negative"),
    ({"iterations": 0}, "iterations"),
])
def test_deconvolve_microscopy_rejects_bad_input(kwargs: dict, message: str) -> None:
    arguments = {"image": np.ones((64, 64), np.uint16), **kwargs}
    with pytest.raises(ValueError, match=message):
        deconvolve_microscopy(**arguments)


def test_looks_like_counts() -> None:
    assert looks_like_counts(make_case("beads", "gaussian-1.2", 200, seed=9, size=64).blurry)
    assert looks_like_counts(make_case("cells", "airy-2.0", 5000, seed=9, size=64).blurry)
    camera = data.camera()[::4, ::4]
    assert not looks_like_counts(camera)  # an 8-bit photo: little noise
    assert not looks_like_counts(camera.astype(np.float32))  # floats are not counts
    assert not looks_like_counts(np.zeros((64, 64), np.uint16))


def test_blind_richardson_lucy_baseline() -> None:
    case = make_case("beads", "gaussian-1.2", 1000, seed=10, size=64)
    image, psf = blind_richardson_lucy(case.blurry, case.background, psf_size=15, outer=4)
    assert image.dtype == np.float32 and image.min() >= 0 and image.shape == (64, 64)
    assert psf.shape == (15, 15) and psf.min() >= 0
    assert psf.sum() == pytest.approx(1.0)
    assert affine_psnr(image, case.sharp) > affine_psnr(case.blurry, case.sharp)


# ---------------------------------------------------------------- the faces: CLI, sample, widget
def test_cli_microscopy_preset_writes_float_counts_and_the_psf(tmp_path) -> None:
    import tifffile

    from napari_dip_deblur import cli
    from napari_dip_deblur.microscopy import PRESET

    assert cli.MICROSCOPY == PRESET
    case = make_case("beads", "gaussian-1.2", 500, seed=11, size=64)
    source = tmp_path / "beads.tif"
    tifffile.imwrite(source, case.blurry)
    out, psf_out = tmp_path / "out.tif", tmp_path / "psf.npy"
    assert cli.main([str(source), "--preset", PRESET, "-o", str(out), "--kernel-out",
                     str(psf_out), "-q"]) == 0
    restored = tifffile.imread(out)
    assert restored.dtype == np.float32 and restored.shape == (64, 64)
    assert restored.min() >= 0 and restored.mean() == pytest.approx(case.blurry.mean(), rel=0.03)
    assert np.load(psf_out).sum() == pytest.approx(1.0)
    # an existing output is refused without --overwrite; -k belongs to the blind deblur
    assert cli.main([str(source), "--preset", PRESET, "-o", str(out), "-q"]) == 2
    with pytest.raises(SystemExit):
        cli.main([str(source), "--preset", PRESET, "-k", "15", "-o", str(out), "-q"])


def test_cli_suggests_the_microscopy_preset_for_counts(capsys) -> None:
    from napari_dip_deblur.cli import _hint_microscopy

    _hint_microscopy(make_case("cells", "airy-2.0", 1000, seed=12, size=64).blurry)
    assert "--preset microscopy" in capsys.readouterr().err
    _hint_microscopy(data.camera()[::4, ::4])
    assert capsys.readouterr().err == ""


def test_widefield_sample_is_uint16_counts_with_its_truth() -> None:
    from napari_dip_deblur._sample_data import make_widefield_fluorescence

    layers = make_widefield_fluorescence()
    (sharp, sharp_kw, _), (psf, psf_kw, _), (blurry, blurry_kw, _) = layers
    assert blurry.dtype == np.uint16 and blurry.shape == (256, 256)
    assert blurry_kw["name"] == "widefield" and blurry_kw["scale"] == (0.1, 0.1)
    assert psf_kw["name"] == "widefield PSF (truth)" and psf.sum() == pytest.approx(1.0)
    assert sharp.shape == blurry.shape and not sharp_kw["visible"]
    assert looks_like_counts(blurry)


def test_microscopy_widget_keeps_scale_and_translate(make_napari_viewer, qtbot) -> None:
    from napari_dip_deblur._microscopy_widget import MicroscopyWidget

    viewer = make_napari_viewer()
    case = make_case("filaments", "gaussian-1.2", 1000, seed=13, size=64)
    layer = viewer.add_image(case.blurry, name="fibres", scale=(0.2, 0.3),
                             translate=(5.0, -2.0))
    widget = MicroscopyWidget(viewer)
    assert widget._image.value is layer
    assert "photon counts" in widget._status.value
    widget._iterations.value = 20
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=30_000)
    out = viewer.layers["fibres deconvolved"]
    assert out.data.dtype == np.float32 and out.data.min() >= 0
    assert tuple(out.scale) == (0.2, 0.3) and tuple(out.translate) == (5.0, -2.0)
    assert widget.last_result.iterations == 20
    assert "fibres PSF" in viewer.layers
    np.testing.assert_array_equal(layer.data, case.blurry)  # the input layer is untouched


def test_blind_deblur_widget_points_counts_to_the_microscopy_widget(make_napari_viewer) -> None:
    from napari_dip_deblur._widget import DeblurWidget

    viewer = make_napari_viewer()
    photo = viewer.add_image(data.camera()[::4, ::4].astype(np.float32) / 255, name="photo")
    widget = DeblurWidget(viewer)
    widget._image.value = photo
    assert "photon counts" not in widget._status.value
    counts = viewer.add_image(make_case("beads", "gaussian-1.2", 300, seed=14, size=64).blurry,
                              name="beads")
    widget._image.value = counts
    assert "Microscopy deconvolution" in widget._status.value
