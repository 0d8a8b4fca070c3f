"""The dip-deblur command line, on real files."""

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_dip_deblur.cli import main
from napari_dip_deblur.samples import blurred_photo


@pytest.fixture
def blurry_png(tmp_path):
    path = tmp_path / "blurry.png"
    iio.imwrite(path, np.rint(blurred_photo(40, 5).blurry * 255).astype(np.uint8))
    return path


def test_deblurs_a_png_and_writes_image_and_kernel(blurry_png, tmp_path, capsys):
    out, kernel_out = tmp_path / "out" / "restored.png", tmp_path / "kernel.npy"
    code = main([str(blurry_png), "-k", "5", "-o", str(out), "--iterations", "3",
                 "--kernel-out", str(kernel_out), "--device", "cpu", "-q"])
    assert code == 0
    restored = iio.imread(out)
    assert restored.shape == (40, 40) and restored.dtype == np.uint8
    kernel = np.load(kernel_out)
    assert kernel.shape == (5, 5) and kernel.sum() == pytest.approx(1, abs=1e-5)
    assert iio.imread(blurry_png).shape == (40, 40)


def test_tiff_output_keeps_float_values_and_rectangular_kernels(blurry_png, tmp_path):
    out = tmp_path / "restored.tif"
    assert main([str(blurry_png), "-k", "3x5", "-o", str(out), "--iterations", "2",
                 "--kernel-out", str(tmp_path / "k.tif"), "-q"]) == 0
    restored = tifffile.imread(out)
    assert restored.dtype == np.float32 and restored.shape == (40, 40)
    assert tifffile.imread(tmp_path / "k.tif").shape == (3, 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "4"], "odd"),
        (["-k", "99"], "larger than the image"),
        (["-k", "5", "--iterations", "0"], "iterations"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(blurry_png, tmp_path, capsys, args,
                                                   message):
    code = main([str(blurry_png), "-o", str(tmp_path / "x.png"), "-q", *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_input_file_is_reported(tmp_path, capsys):
    assert main([str(tmp_path / "nope.png"), "-k", "5", "-o", str(tmp_path / "x.png")]) == 2
    assert "no such image file" in capsys.readouterr().err


def test_demo_runs_and_reports_psnr_and_kernel_error(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--iterations", "20", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR  blurry" in printed and "kernel: normalised cross-correlation" in printed
    for name in ("blurry", "restored", "sharp", "kernel_estimated", "kernel_true"):
        assert (tmp_path / "demo" / f"{name}.png").is_file()
