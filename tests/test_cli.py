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


def test_starts_are_raced_and_the_summary_says_which_was_kept(blurry_png, tmp_path, capsys):
    out = tmp_path / "restored.png"
    assert main([str(blurry_png), "-k", "5", "-o", str(out), "--iterations", "6",
                 "--starts", "3", "--device", "cpu"]) == 0
    assert iio.imread(out).shape == (40, 40)
    text = capsys.readouterr()
    # fast's starts each run to the end: 3 x 6 iterations
    assert "(18 iterations, kept start " in text.out
    assert "of 3, the sharpest after 6 iterations" in text.out + text.err


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
        (["-k", "5", "--starts", "0"], "starts must be an integer >= 1"),
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


# ---------------------------------------------------------------------- colour, stacks, regions
@pytest.fixture
def colour_png(tmp_path):
    blurry = blurred_photo(40, 5).blurry
    rgb = np.rint(np.stack([blurry, 0.8 * blurry, 0.5 * blurry], -1) * 255).astype(np.uint8)
    alpha = np.full((40, 40, 1), 200, np.uint8)
    path = tmp_path / "colour.png"
    iio.imwrite(path, np.concatenate([rgb, alpha], -1))
    return path


@pytest.fixture
def stack_tif(tmp_path):
    blurry = blurred_photo(40, 5).blurry
    path = tmp_path / "stack.tif"
    stack = np.stack([blurry, blurry[::-1], blurry.T]).astype(np.float32)
    tifffile.imwrite(path, stack, photometric="minisblack")
    return path


def test_colour_png_gives_a_colour_png_with_alpha_passed_through(colour_png, tmp_path, capsys):
    out = tmp_path / "restored.png"
    assert main([str(colour_png), "-k", "5", "-o", str(out), "--iterations", "3",
                 "--kernel-out", str(tmp_path / "k.npy")]) == 0
    restored, blurry = iio.imread(out), iio.imread(colour_png)
    assert restored.shape == (40, 40, 4) and restored.dtype == np.uint8
    np.testing.assert_array_equal(restored[..., 3], blurry[..., 3])
    assert not np.array_equal(restored[..., :3], blurry[..., :3])
    assert np.load(tmp_path / "k.npy").shape == (5, 5)
    assert "colour" in capsys.readouterr().out


@pytest.mark.parametrize(("mode", "kernel_shape"), [("shared", (5, 5)),
                                                     ("per-plane", (3, 5, 5))])
def test_a_tiff_stack_is_restored_plane_by_plane(stack_tif, tmp_path, capsys, mode,
                                                 kernel_shape):
    out, kernels = tmp_path / "restored.tif", tmp_path / "kernels.tif"
    extra = ["--reference", "2"] if mode == "shared" else []
    assert main([str(stack_tif), "-k", "5", "-o", str(out), "--iterations", "3", "--mode",
                 mode, "--kernel-out", str(kernels), *extra]) == 0
    restored = tifffile.imread(out)
    assert restored.shape == (3, 40, 40) and restored.dtype == np.float32
    assert tifffile.imread(kernels).shape == kernel_shape
    printed = capsys.readouterr().out
    assert ("estimated on plane 2" in printed) == (mode == "shared")


def test_region_estimates_on_a_crop_and_restores_the_whole_image(tmp_path, capsys):
    path = tmp_path / "big.png"
    iio.imwrite(path, np.rint(blurred_photo(64, 5).blurry * 255).astype(np.uint8))
    out = tmp_path / "restored.png"
    assert main([str(path), "-k", "5", "-o", str(out), "--iterations", "2",
                 "--region", "8,16,32,40"]) == 0
    assert iio.imread(out).shape == (64, 64)
    assert "32x40 at (y=8, x=16)" in capsys.readouterr().out
    assert main([str(path), "-k", "5", "-o", str(out), "--iterations", "2", "--region", "auto",
                 "--region-size", "32", "--overwrite"]) == 0
    assert "kernel estimated on 32x32 at" in capsys.readouterr().out


def test_suggest_size_prints_a_size_and_k_auto_uses_it(blurry_png, tmp_path, capsys):
    assert main([str(blurry_png), "--suggest-size", "9", "--suggest-iterations", "3", "-q"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("suggested kernel size: ")
    size = printed.split()[3]
    h, w = (int(v) for v in size.split("x"))
    assert 3 <= h <= 9 and 3 <= w <= 9 and h % 2 == w % 2 == 1
    out = tmp_path / "auto.png"
    assert main([str(blurry_png), "-k", "auto", "--suggest-size", "9", "--suggest-iterations",
                 "3", "-o", str(out), "--iterations", "2", "--noise-aware"]) == 0
    assert "(suggested)" in capsys.readouterr().out and out.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "1,2,3"], "argument --region: region must be 'y0,x0,height,width'"),
        (["--region", "auto", "--region-size", "8"], "argument --region-size"),
        (["--noise-aware", "0"], "argument --noise-aware"),
        (["--suggest-size", "4"], "argument --suggest-size"),
        (["--mode", "per-plane", "--reference", "0"], "argument --reference"),
    ],
)
def test_bad_option_values_are_refused_by_the_parser(blurry_png, tmp_path, capsys, args,
                                                     message):
    with pytest.raises(SystemExit) as exit_info:
        main([str(blurry_png), "-k", "5", "-o", str(tmp_path / "x.png"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "args", "message"),
    [
        ("png", ["--region", "30,0,20,20"], "--region: region 20x20 at (y=30, x=0) does not "
                                            "lie inside the 40x40 image"),
        ("png", ["--reference", "1"], "--reference: this image has a single plane"),
        ("tif", ["--reference", "3"], "--reference: plane 3 is out of range for 3 planes"),
        ("tif", [], "-o/--output: a stack of 3 planes needs a .tif"),
    ],
)
def test_bad_values_for_this_image_exit_2_naming_the_option(blurry_png, stack_tif, tmp_path,
                                                            capsys, source, args, message):
    path = blurry_png if source == "png" else stack_tif
    out = tmp_path / ("x.tif" if source == "tif" and args else "x.png")
    assert main([str(path), "-k", "5", "-o", str(out), "-q", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_run_that_would_not_fit_in_memory_is_refused(colour_png, tmp_path, capsys,
                                                        monkeypatch):
    import napari_dip_deblur.memory as memory

    monkeypatch.delenv("DIP_DEBLUR_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)
    out = tmp_path / "x.png"
    assert main([str(colour_png), "-k", "5", "-o", str(out), "-q"]) == 2
    assert "dip-deblur: error: not enough RAM" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------------- a known kernel
@pytest.fixture
def no_blind_run(monkeypatch):
    """Fail the test if a blind estimate is started."""
    import napari_dip_deblur.api as api
    import napari_dip_deblur.restore as restore

    def refuse(*args, **kwargs):
        raise AssertionError("a blind run was started")

    monkeypatch.setattr(api, "deblur_iter", refuse)
    monkeypatch.setattr(restore, "deblur_iter", refuse)


def _save_kernel(path, kernel):
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, kernel)
    elif suffix == ".tif":
        tifffile.imwrite(path, kernel.astype(np.float32))
    else:  # an 8-bit picture of the kernel, scaled to its maximum
        iio.imwrite(path, np.rint(kernel / kernel.max() * 255).astype(np.uint8))
    return path


@pytest.mark.parametrize("name", ["psf.npy", "psf.tif", "psf.png"])
def test_kernel_file_restores_a_png_without_a_blind_step(blurry_png, tmp_path, capsys,
                                                         no_blind_run, name):
    from napari_dip_deblur.nonblind import deconvolve

    sample = blurred_photo(40, 5)
    kernel_file = _save_kernel(tmp_path / name, sample.kernel * 3)
    out, kernel_out = tmp_path / "restored.png", tmp_path / "used.npy"
    assert main([str(blurry_png), "--kernel", str(kernel_file), "-o", str(out),
                 "--kernel-out", str(kernel_out)]) == 0
    assert "restored with the given 5x5 kernel" in capsys.readouterr().out
    used = np.load(kernel_out)
    assert used.shape == (5, 5) and used.sum() == pytest.approx(1, abs=1e-5)
    if name != "psf.png":  # the PNG holds the kernel to 8 bits
        np.testing.assert_allclose(used, sample.kernel / sample.kernel.sum(), atol=1e-6)
    blurry = iio.imread(blurry_png)
    restored = iio.imread(out)
    assert restored.shape == (40, 40) and restored.dtype == np.uint8
    expected = np.clip(np.rint(deconvolve(blurry, used)), 0, 255)
    assert np.abs(restored.astype(float) - expected).max() <= 1
    sharp = sample.sharp * 255

    def error(image):
        return np.mean((image.astype(float) - sharp) ** 2)

    assert error(restored) < error(blurry) / 4  # measured: 32.95 -> 44.55 dB PSNR


def test_kernel_file_restores_a_stack_and_a_colour_image(stack_tif, colour_png, tmp_path,
                                                         capsys, no_blind_run):
    kernel_file = _save_kernel(tmp_path / "psf.npy", blurred_photo(40, 5).kernel)
    out = tmp_path / "restored.tif"
    # -k may be given if it agrees; --noise-aware is honoured (a stronger non-blind prior).
    assert main([str(stack_tif), "--kernel", str(kernel_file), "-k", "5", "-o", str(out),
                 "--noise-aware"]) == 0
    assert "3 planes, restored with the given 5x5 kernel" in capsys.readouterr().out
    restored = tifffile.imread(out)
    assert restored.shape == (3, 40, 40) and restored.dtype == np.float32
    out = tmp_path / "restored.png"
    assert main([str(colour_png), "--kernel", str(kernel_file), "-o", str(out), "-q"]) == 0
    restored, blurry = iio.imread(out), iio.imread(colour_png)
    assert restored.shape == (40, 40, 4)
    np.testing.assert_array_equal(restored[..., 3], blurry[..., 3])
    assert not np.array_equal(restored[..., :3], blurry[..., :3])


@pytest.mark.parametrize(
    ("kernel", "extra", "message"),
    [
        (None, [], "--kernel: no such kernel file"),
        (b"not a numpy file", [], "--kernel: cannot read"),
        (np.ones((4, 5)), [], "--kernel: psf.npy: kernel must have odd sides"),
        (np.ones((3, 3, 3)), [], "kernel must be a 2-D array"),
        (np.pad([[-1.0]], 1, constant_values=1), [], "kernel has negative values"),
        (np.zeros((5, 5)), [], "kernel must sum to a positive value"),
        (np.full((3, 3), np.nan), [], "kernel contains NaN"),
        (np.ones((41, 41)), [], "larger than the image planes (40x40)"),
        (np.ones((5, 5)), ["-k", "7"], "-k/--kernel-size 7x7 does not match the 5x5 kernel"),
    ],
)
def test_a_bad_kernel_file_exits_2_with_a_clear_message(blurry_png, tmp_path, capsys,
                                                        no_blind_run, kernel, extra, message):
    path = tmp_path / "psf.npy"
    if isinstance(kernel, bytes):
        path.write_bytes(kernel)
    elif kernel is not None:
        np.save(path, kernel)
    out = tmp_path / "x.png"
    assert main([str(blurry_png), "--kernel", str(path), "-o", str(out), "-q", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dip-deblur: error: ") and message in err
    assert not out.exists()


def test_a_kernel_file_of_an_unknown_kind_is_refused(blurry_png, tmp_path, capsys):
    path = tmp_path / "psf.txt"
    path.write_text("0 1 0\n1 1 1\n0 1 0\n")
    assert main([str(blurry_png), "--kernel", str(path), "-o", str(tmp_path / "x.png")]) == 2
    assert "--kernel: the kernel file must end in .npy, .tif, .tiff, .png" in \
        capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "auto"], "argument --kernel: a kernel size suggestion"),
        (["--suggest-size"], "argument --kernel: a kernel size suggestion"),
        (["--region", "auto"], "argument --kernel: --region only steer"),
        (["--starts", "2"], "argument --kernel: --starts only steer"),
        (["--iterations", "5", "--mode", "per-plane"],
         "argument --kernel: --mode per-plane, --iterations only steer"),
    ],
)
def test_blind_only_options_with_a_kernel_file_are_refused(blurry_png, tmp_path, capsys,
                                                           args, message):
    path = _save_kernel(tmp_path / "psf.npy", np.ones((3, 3)))
    with pytest.raises(SystemExit) as exit_info:
        main([str(blurry_png), "--kernel", str(path), "-o", str(tmp_path / "x.png"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_summary_says_when_the_fit_check_ran_a_second_attempt():
    from napari_dip_deblur.cli import _describe
    from napari_dip_deblur.restore import restore

    blurry = blurred_photo(40, 5).blurry
    layout = {"colour": False, "stack_shape": ()}
    tiny = {"iterations": 3, "channels": 8, "levels": 3, "device": "cpu", "starts": 1}
    retried = restore(blurry, 5, retry_mae_ratio=1e-6, **tiny)  # a threshold no fit meets
    assert retried.settings["kept_attempt"] in (1, 2)
    assert "the first fit failed the fit check; kept the " in _describe(retried, layout)
    once = restore(blurry, 5, **tiny)
    assert "fit check" not in _describe(once, layout)
    assert "start" not in _describe(once, layout)
    raced = restore(blurry, 5, **{**tiny, "starts": 2, "start_trial": 0.7})
    kept = raced.settings["kept_start"]
    assert f"kept start {kept} of 2, the sharpest after 2 iterations" in _describe(raced, layout)


def _interrupted_run(args: list[str], ready: str, settle: float) -> tuple[int, str]:
    """Run ``dip-deblur ARGS`` in a real process, send it a real SIGINT ``settle`` seconds
    after its stderr first shows ``ready``; its exit status and stderr."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    process = subprocess.Popen([sys.executable, "-m", "napari_dip_deblur.cli", *args],
                               stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(
        lambda: process.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while ready not in "".join(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(settle)
    process.send_signal(signal.SIGINT)
    status = process.wait(timeout=60)
    reader.join(timeout=10)
    return status, "".join(seen)


@pytest.mark.slow  # a subprocess interrupted for real: end to end
def test_ctrl_c_writes_what_the_run_has_and_exits_130(blurry_png, tmp_path):
    """A real SIGINT to a real process, part-way through a long run."""
    out, kernel_out = tmp_path / "restored.png", tmp_path / "kernel.npy"
    before = iio.imread(blurry_png)
    status, text = _interrupted_run(
        [str(blurry_png), "-k", "5", "-o", str(out), "--kernel-out", str(kernel_out),
         "--iterations", "1000000", "--starts", "1", "--device", "cpu"],
        ready="loss=", settle=3)  # once the progress bar shows iterations
    assert status == 130
    assert "interrupted at iteration " in text and "of 1000000; wrote" in text
    assert iio.imread(out).shape == (40, 40)
    assert np.load(kernel_out).shape[0] >= 5
    np.testing.assert_array_equal(iio.imread(blurry_png), before)


@pytest.mark.slow  # a subprocess interrupted for real: end to end
def test_ctrl_c_on_a_stack_finishes_the_plane_in_hand_and_writes_what_it_has(tmp_path):
    # A known kernel on a stack of large planes: about a second a plane, so that the SIGINT
    # lands part-way through the stack.
    import re

    sample = blurred_photo(256, 5)
    plane = np.tile(sample.blurry, (4, 4)).astype(np.float32)  # 1024 x 1024
    stack = np.stack([plane * (1 + 0.1 * i) for i in range(12)])
    source, kernel = tmp_path / "stack.tif", tmp_path / "psf.npy"
    tifffile.imwrite(source, stack)
    np.save(kernel, sample.kernel)
    out = tmp_path / "restored.tif"
    status, text = _interrupted_run([str(source), "--kernel", str(kernel), "-o", str(out)],
                                    ready="restoring plane 2/12", settle=0)
    assert status == 130, text
    done = re.search(r"interrupted; wrote .*\((\d+) of 12 planes restored, the others are "
                     r"the input\)", text)
    assert done is not None, text
    n = int(done.group(1))
    assert 2 <= n < 12
    restored = tifffile.imread(out)
    assert restored.shape == stack.shape
    for i in range(12):  # the first n restored, the rest the input
        assert np.array_equal(restored[i], stack[i]) is (i >= n), i
    np.testing.assert_array_equal(tifffile.imread(source), stack)


@pytest.mark.slow  # a subprocess interrupted for real: end to end
def test_ctrl_c_during_a_colour_estimate_deconvolves_with_the_kernel_so_far(tmp_path):
    sample = blurred_photo(48, 5)
    photo = np.rint(np.stack([sample.blurry, 0.8 * sample.blurry, 0.5 * sample.blurry], -1)
                    * 255).astype(np.uint8)
    source, out = tmp_path / "photo.png", tmp_path / "restored.png"
    iio.imwrite(source, photo)
    status, text = _interrupted_run(
        [str(source), "-k", "5", "-o", str(out), "--iterations", "1000000", "--starts", "1",
         "--device", "cpu"], ready="estimating", settle=2)
    assert status == 130, text
    # Written where the kernel so far could be deconvolved with; early on it is still near
    # its flat start, and then nothing is written. Either way, the message says which.
    if out.exists():
        assert "(the image restored with the kernel found so far)" in text, text
        restored = iio.imread(out)
        assert restored.shape == photo.shape and not np.array_equal(restored, photo)
    else:
        assert "still too near its start); nothing written" in text, text
    np.testing.assert_array_equal(iio.imread(source), photo)


@pytest.mark.slow  # a subprocess interrupted for real: end to end
def test_ctrl_c_in_the_demo_exits_130_without_a_traceback(tmp_path):
    status, text = _interrupted_run(["demo", "--out", str(tmp_path / "demo")],
                                    ready="loss=", settle=0.5)
    assert status == 130, text
    assert "dip-deblur: interrupted; nothing written" in text
    assert "Traceback" not in text
    assert not (tmp_path / "demo").exists()
