"""dip-deblur on files that cannot be read or written: one line on stderr, exit status 2,
nothing half-written, no existing output replaced without --overwrite (real files)."""

import os
import stat

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_dip_deblur._io import atomic_write, read_image, write_image
from napari_dip_deblur.cli import main
from napari_dip_deblur.samples import blurred_photo

RUN = ["-k", "3", "--iterations", "1", "--starts", "1", "--device", "cpu", "-q"]
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def blurry_png(tmp_path):
    path = tmp_path / "blurry.png"
    iio.imwrite(path, np.rint(blurred_photo(32, 3).blurry * 255).astype(np.uint8))
    return path


def refused(capsys, code, *words):
    """The run exited 2 with one line on stderr naming ``words``, and no traceback."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dip-deblur"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _truncated(path, tmp_path):
    data = path.read_bytes()
    cut = tmp_path / "truncated.png"
    cut.write_bytes(data[:len(data) // 2])
    return cut


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda png, tmp: _truncated(png, tmp), ["truncated.png", "cannot be read as PNG"]),
        (lambda png, tmp: (tmp / "empty.png", (tmp / "empty.png").write_bytes(b""))[0],
         ["empty.png", "is empty (0 bytes)"]),
        (lambda png, tmp: (tmp / "notes.png", (tmp / "notes.png").write_text("hello\n"))[0],
         ["notes.png", "is not a PNG file"]),
        (lambda png, tmp: (tmp / "photo.tif", (tmp / "photo.tif").write_bytes(
            png.read_bytes()))[0], ["photo.tif", "is not a TIFF file"]),
        (lambda png, tmp: (tmp / "folder.png", (tmp / "folder.png").mkdir())[0],
         ["folder.png", "is a folder"]),
        (lambda png, tmp: (tmp / "image.bmp", iio.imwrite(tmp / "image.bmp",
                                                          iio.imread(png)))[0],
         ["image.bmp", "unsupported image format '.bmp'"]),
        (lambda png, tmp: tmp / "missing.png", ["no such image file"]),
    ],
    ids=["truncated-png", "0-byte", "text-named-png", "png-named-tif", "directory",
         "unsupported-bmp", "missing"],
)
def test_an_unreadable_input_exits_2_with_one_line(blurry_png, tmp_path, capsys, make, words):
    source = make(blurry_png, tmp_path)
    out = tmp_path / "out" / "restored.png"
    refused(capsys, main([str(source), "-o", str(out), *RUN]), *words)
    assert not out.exists()


def test_read_image_names_the_file_in_a_value_error(tmp_path):
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.tif is empty"):
        read_image(empty)


def test_a_5d_tiff_is_restored_plane_by_plane(tmp_path, capsys):
    blurry = blurred_photo(32, 3).blurry.astype(np.float32)
    stack = np.stack([blurry, blurry.T, blurry[::-1], blurry[:, ::-1]]).reshape(2, 1, 2, 32, 32)
    source, out = tmp_path / "five.tif", tmp_path / "restored.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    assert main([str(source), "-o", str(out), *RUN]) == 0
    restored = tifffile.imread(out)
    assert restored.shape == (2, 1, 2, 32, 32) and restored.dtype == np.float32
    assert np.isfinite(restored).all()
    # a 5-D stack written as PNG is refused before the run
    refused(capsys, main([str(source), "-o", str(tmp_path / "r.png"), *RUN]), "needs a .tif")


def test_an_existing_output_is_refused_before_the_run_unless_overwrite(blurry_png, tmp_path,
                                                                        capsys):
    out, kernel = tmp_path / "restored.png", tmp_path / "kernel.npy"
    kernel.write_bytes(b"keep me")
    # the kernel file exists: nothing is written, not even the image (checked before the run)
    refused(capsys, main([str(blurry_png), "-o", str(out), "--kernel-out", str(kernel), *RUN]),
            "--kernel-out", "already exists", "--overwrite")
    assert not out.exists() and kernel.read_bytes() == b"keep me"

    out.write_bytes(b"old")
    refused(capsys, main([str(blurry_png), "-o", str(out), *RUN]), "-o/--output",
            "already exists")
    assert out.read_bytes() == b"old"

    assert main([str(blurry_png), "-o", str(out), "--kernel-out", str(kernel), "--overwrite",
                 *RUN]) == 0
    assert iio.imread(out).shape == (32, 32) and np.load(kernel).shape == (3, 3)


def test_a_missing_output_folder_is_created(blurry_png, tmp_path):
    out = tmp_path / "new" / "deeper" / "restored.tif"
    kernel = tmp_path / "kernels" / "k.png"
    assert main([str(blurry_png), "-o", str(out), "--kernel-out", str(kernel), *RUN]) == 0
    assert tifffile.imread(out).shape == (32, 32) and iio.imread(kernel).shape == (3, 3)
    # whole files only: nothing but the outputs is left in the folders
    assert sorted(p.name for p in out.parent.iterdir()) == ["restored.tif"]
    assert sorted(p.name for p in kernel.parent.iterdir()) == ["k.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # as any new file


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("a_file/restored.png", ["-o/--output", "cannot write in"]),
        ("a_folder.png", ["-o/--output", "is a folder"]),
        ("restored.bmp", ["-o/--output must end in .png"]),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_run(blurry_png, tmp_path,
                                                                     capsys, output, words):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "a_folder.png").mkdir()
    kernel = tmp_path / "kernel.npy"
    refused(capsys, main([str(blurry_png), "-o", str(tmp_path / output), "--kernel-out",
                          str(kernel), *RUN]), *words)
    assert not kernel.exists()


def test_the_same_file_for_image_and_kernel_is_refused(blurry_png, tmp_path, capsys):
    out = tmp_path / "both.tif"
    refused(capsys, main([str(blurry_png), "-o", str(out), "--kernel-out", str(out), *RUN]),
            "--kernel-out", "also the -o/--output file")


@pytest.mark.skipif(ROOT, reason="running as root: a folder's permissions do not stop root "
                                 "from writing in it (the file-in-place-of-a-folder case "
                                 "covers a real refused write)")
def test_a_read_only_output_folder_is_refused_before_the_run(blurry_png, tmp_path, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        refused(capsys, main([str(blurry_png), "-o", str(folder / "r.png"), *RUN]),
                "cannot write in", "ermission denied")
        refused(capsys, main(["demo", "--out", str(folder), "--iterations", "1", "-q"]),
                "--out", "cannot write in")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_demo_refuses_an_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "demo"
    target.write_text("a file")
    refused(capsys, main(["demo", "--out", str(target), "--iterations", "1", "-q"]),
            "--out", "is a file, not a folder")
    refused(capsys, main(["demo", "--out", str(target / "sub"), "--iterations", "1", "-q"]),
            "--out", "cannot write in")
    assert target.read_text() == "a file"


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "result.npy"
    np.save(path, np.arange(3))
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_write(path) as partial:
        partial.write_bytes(b"half of a fi")
        raise RuntimeError("disk on fire")
    np.testing.assert_array_equal(np.load(path), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["result.npy"]
    with atomic_write(path) as partial:
        np.save(partial, np.arange(5))
    np.testing.assert_array_equal(np.load(path), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["result.npy"]


def test_a_real_writer_failing_mid_write_leaves_nothing(tmp_path, capsys):
    # JPEG holds no alpha: Pillow fails after the file was opened (a 0-byte file is left
    # where it writes directly)
    path = tmp_path / "rgba.jpg"
    rgba = np.zeros((8, 8, 4), np.uint8)
    with pytest.raises(OSError, match="RGBA"):
        write_image(path, rgba, rgba)
    assert list(tmp_path.iterdir()) == []
    # the same failure at the end of a CLI run: one line, exit 2, no file
    source = tmp_path / "rgba.png"
    blurry = np.rint(blurred_photo(32, 3).blurry * 255).astype(np.uint8)
    iio.imwrite(source, np.stack([blurry, blurry, blurry, np.full_like(blurry, 200)], -1))
    refused(capsys, main([str(source), "-o", str(path), *RUN]), "RGBA")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgba.png"]
