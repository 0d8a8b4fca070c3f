"""Reading and writing images for the command line (PNG/JPEG via imageio, TIFF via tifffile).

Files are written whole or not at all (:func:`atomic_write`), and a file that cannot be read
as an image is reported in one line (:class:`ImageFileError`), never with the reader's
traceback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["ImageFileError", "atomic_write", "check_writable", "read_image", "write_image"]

_TIFF = (".tif", ".tiff")
_JPEG = (".jpg", ".jpeg")
#: Suffixes read and written: PNG, JPEG, TIFF.
IMAGE_SUFFIXES = (".png", *_JPEG, *_TIFF)
# The first bytes of each format (TIFF: little- and big-endian, classic and BigTIFF).
_SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
}


class ImageFileError(ValueError):
    """A file that is not a readable image: missing, a folder, empty, of an unsupported
    format, or truncated or corrupt. A ``ValueError``, reported like other bad input."""


def _format_of(suffix: str) -> str:
    return "TIFF" if suffix in _TIFF else "JPEG" if suffix in _JPEG else "PNG"


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG, JPEG or TIFF file as an array (its own dtype, untouched).

    Raises
    ------
    ImageFileError
        (a ``ValueError``) The path is missing or a folder, its suffix is not one of
        .png, .jpg, .jpeg, .tif, .tiff, the file is empty, does not start as its suffix
        says, or its reader fails on it (truncated, corrupt); the message is one line.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f"{path} is a folder, not an image file")
    if not path.is_file():
        raise ImageFileError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageFileError(f"{path.name}: unsupported image format {path.suffix or '(none)'!r}"
                             f"; use PNG, JPEG or TIFF ({', '.join(IMAGE_SUFFIXES)})")
    kind = _format_of(suffix)
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as error:
        raise ImageFileError(f"cannot read {path}: {error.strerror or error}") from None
    if not head:
        raise ImageFileError(f"{path} is empty (0 bytes)")
    if not head.startswith(_SIGNATURES[kind]):
        raise ImageFileError(f"{path} is not a {kind} file (its first bytes are "
                             f"{head[:8]!r}); is it named after the wrong format?")
    try:
        if kind == "TIFF":
            import tifffile

            return np.asarray(tifffile.imread(path))
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception as error:  # each reader has its own errors; any of them means the same
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise ImageFileError(f"{path}: cannot be read as {kind} (truncated or corrupt?): "
                             f"{reason}") from None


def check_writable(path: str | Path, *, overwrite: bool = False, option: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written: raise ``ValueError`` if not.

    Nothing is left behind: a missing folder is not created here (the writer creates it),
    but the nearest folder that exists must be a folder in which a file can be created: one
    is created and removed, so a read-only folder (or disk) is found now, not after the run.
    An existing ``path`` is refused unless ``overwrite``; a folder at ``path`` always is.

    Parameters
    ----------
    path : str or Path
        The file to be written.
    overwrite : bool
        Whether an existing file may be replaced.
    option : str
        How the message names the file (e.g. ``"-o/--output"``).

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option}: {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ValueError(f"{option}: {path} already exists; pass --overwrite to replace it")
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{option}: cannot write in {path.parent}: {folder} is a file, not a "
                         f"folder")
    try:
        fd, probe = _reserve(folder, ".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"{option}: cannot write in {folder}: "
                         f"{error.strerror or error}") from None
    return path


def _reserve(folder: Path, suffix: str) -> tuple[int, Path]:
    """Create a new hidden file in ``folder`` (mode 0o666 less the umask, as any new file)."""
    while True:
        candidate = folder / f".dip-deblur-{secrets.token_hex(6)}.partial{suffix}"
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), candidate
        except FileExistsError:
            continue


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Write a file whole or not at all: yield a temporary path to write to, then rename.

    The temporary file is in the same folder (so the rename is atomic) and has the same
    suffix (so writers that go by it choose the same format). When the block ends
    normally the file is flushed to disk and ``os.replace``\\ d onto ``path`` (replacing a
    file there); when it raises (including ``KeyboardInterrupt``) the temporary file is
    removed and ``path`` is left as it was. The folder must exist.

    Examples
    --------
    >>> with atomic_write(folder / "kernel.npy") as partial:     # doctest: +SKIP
    ...     np.save(partial, kernel)
    """
    path = Path(path)
    fd, partial = _reserve(path.parent, path.suffix)
    os.close(fd)
    try:
        yield partial
        with partial.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_image(path: str | Path, image: np.ndarray, reference: np.ndarray | None = None) -> Path:
    """Write ``image`` (on ``reference``'s intensity scale) to PNG, JPEG or TIFF, atomically.

    TIFF keeps float32 values as they are. PNG/JPEG hold integers: a uint8 ``reference``
    (or uint16, for a grey PNG) gives its dtype, values rounded and clipped to its range; a
    float ``reference`` within [0, 1] is scaled by 255; any other float range is mapped
    linearly from the reference's [min, max] to [0, 255] (use TIFF to keep the values).
    The folder is created if missing; the file is written whole or not at all
    (:func:`atomic_write`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"output must end in .png, .jpg or .tif/.tiff, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in _TIFF:
        import tifffile

        data = np.asarray(image, dtype=np.float32)
        colour = data.ndim == 3 and data.shape[-1] in (3, 4)  # as it always was written
        with atomic_write(path) as partial:
            tifffile.imwrite(partial, data, photometric="rgb" if colour else "minisblack")
        return path
    data = np.asarray(image, dtype=np.float64)
    ref = np.asarray(reference) if reference is not None else None
    # 16-bit PNG for grey images only (Pillow writes no 16-bit colour PNG)
    if ref is not None and ref.dtype == np.uint16 and suffix == ".png" and data.ndim == 2:
        dtype = np.dtype(np.uint16)
    else:
        dtype = np.dtype(np.uint8)
        if ref is not None and np.issubdtype(ref.dtype, np.floating):
            lo, hi = float(ref.min()), float(ref.max())
            if lo >= 0 and hi <= 1:
                data = data * 255
            else:
                data = (data - lo) / (hi - lo) * 255
        elif ref is not None and ref.dtype not in (np.uint8,):
            lo, hi = float(ref.min()), float(ref.max())
            data = (data - lo) / (hi - lo) * 255
    info = np.iinfo(dtype)
    import imageio.v3 as iio

    with atomic_write(path) as partial:
        iio.imwrite(partial, np.clip(np.rint(data), info.min, info.max).astype(dtype))
    return path
