"""Files of a batch: listing the inputs, naming the outputs, writing them whole or not at all.

Used by :mod:`napari_dip_deblur.batch` (reading a file item on a worker) and by the
``dip-deblur batch`` command (writing each result as it arrives, resuming, the summary).
An output is written under a temporary name in its folder and renamed into place
(``os.replace``, atomic on one file system), so a file under its final name is always
complete: its existence is what a re-run checks to skip an item. No napari, no torch.
"""

from __future__ import annotations

import csv
import glob
import io
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write, write_image

__all__ = [
    "IMAGE_SUFFIXES",
    "SUMMARY_FIELDS",
    "colour_axis",
    "expand_inputs",
    "kernel_path",
    "output_path",
    "read_summary",
    "write_atomically",
    "write_kernel",
    "write_result",
    "write_summary",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_TIFF = (".tif", ".tiff")

SUMMARY_FIELDS = ("item", "input", "output", "status", "kernel_size", "seconds", "error")
"""Columns of ``summary.csv``: the item's number, its input, its output file, ``done`` /
``failed`` / ``skipped`` (complete from an earlier run), the kernel's size (``HxW``), the
seconds its task took on its worker, and the error of a failed item."""


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The image files named by ``inputs``: paths, glob patterns and folders (their image
    files, not recursive), in the order given, each pattern's or folder's files sorted.

    Raises
    ------
    ValueError
        A pattern that matches nothing, a path that does not exist, a folder without image
        files, a file named twice, or no inputs at all.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for entry in inputs:
        text = os.fspath(entry)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"inputs: the folder {text!r} holds no image files "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not found:
                raise ValueError(f"inputs: the pattern {text!r} matches no file")
            files.extend(found)
        else:
            raise ValueError(f"inputs: no such file or folder: {text!r}")
    if not files:
        raise ValueError("inputs: give at least one image file, folder or pattern")
    resolved = [p.resolve() for p in files]
    if len(set(resolved)) != len(resolved):
        twice = next(p for p in resolved if resolved.count(p) > 1)
        raise ValueError(f"inputs: {twice} is named more than once")
    return files


def colour_axis(path: Path | str, array: np.ndarray, colour: str = "auto") -> int | None:
    """-1 where a file's array is colour (as the single-image command reads it), else None.

    ``"auto"``: a last axis of 3 or 4 values is colour (also 2 in PNG/JPEG: grey + alpha);
    ``"rgb"``: it must be; ``"grey"``: never (planes of a stack).
    """
    if colour not in ("auto", "rgb", "grey"):
        raise ValueError(f"colour must be 'auto', 'rgb' or 'grey', got {colour!r}")
    if colour == "grey":
        return None
    channels = (3, 4) if Path(path).suffix.lower() in _TIFF else (2, 3, 4)
    if colour == "rgb":
        if array.ndim < 3 or array.shape[-1] not in (2, 3, 4):
            raise ValueError(f"colour='rgb': the last axis must hold 3 or 4 channels, got "
                             f"shape {array.shape}")
        return -1
    return -1 if array.ndim >= 3 and array.shape[-1] in channels else None


def output_path(input_path: Path, out_dir: Path) -> Path:
    """Where an input's result goes: ``out_dir`` / the input's name (same format)."""
    return Path(out_dir) / Path(input_path).name


def kernel_path(input_path: Path, out_dir: Path) -> Path:
    """Where an input's kernel goes: ``out_dir`` / ``<stem>.kernel.npy``."""
    return Path(out_dir) / f"{Path(input_path).stem}.kernel.npy"


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``
    (:func:`napari_dip_deblur._io.atomic_write`); ``path``'s folder is created if missing.
    If ``write`` fails, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as partial:
        write(partial)
    return path


def write_result(path: Path, image: np.ndarray, reference: np.ndarray | None,
                 colour: bool) -> Path:
    """Write a restored image atomically in ``path``'s format.

    A TIFF keeps float32 values (a grey stack as ``minisblack`` pages, never read back as
    RGB); PNG/JPEG are scaled as :func:`napari_dip_deblur._io.write_image` does, on
    ``reference``'s dtype and range (the input, or any array with its dtype, min and max).
    """
    if Path(path).suffix.lower() not in _TIFF:
        return write_image(path, image, reference)  # atomic itself
    import tifffile

    photometric = "rgb" if colour and image.shape[-1] in (3, 4) else "minisblack"

    def write(target: Path) -> None:
        tifffile.imwrite(target, np.asarray(image, dtype=np.float32), photometric=photometric)

    return write_atomically(path, write)


def write_kernel(path: Path, kernel: np.ndarray) -> Path:
    """Write a kernel (or per-plane kernels) atomically as ``.npy``."""
    def write(target: Path) -> None:
        with open(target, "wb") as handle:
            np.save(handle, np.asarray(kernel, dtype=np.float32))

    return write_atomically(path, write)


def write_summary(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts keyed by :data:`SUMMARY_FIELDS`) as a CSV file, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({field: row.get(field, "") for field in SUMMARY_FIELDS})
    text = buffer.getvalue()
    return write_atomically(path, lambda target: target.write_text(text, encoding="utf-8"))


def read_summary(path: Path) -> list[dict[str, str]]:
    """The rows of a ``summary.csv`` written earlier (empty if there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
