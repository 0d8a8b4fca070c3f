"""Reading and writing images for the command line (PNG via imageio, TIFF via tifffile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_image", "write_image"]

_TIFF = (".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG, JPEG or TIFF file as an array (its own dtype, untouched)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    if path.suffix.lower() in _TIFF:
        import tifffile

        return tifffile.imread(path)
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))


def write_image(path: str | Path, image: np.ndarray, reference: np.ndarray | None = None) -> Path:
    """Write ``image`` (on ``reference``'s intensity scale) to PNG, JPEG or TIFF.

    TIFF keeps float32 values as they are. PNG/JPEG hold integers: an integer ``reference``
    gives its dtype (uint8, or uint16 for PNG), values rounded and clipped to its range; a
    float ``reference`` within [0, 1] is scaled by 255; any other float range is mapped
    linearly from the reference's [min, max] to [0, 255] (use TIFF to keep the values).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*_TIFF, ".png", ".jpg", ".jpeg"):
        raise ValueError(f"output must end in .png, .jpg or .tif/.tiff, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in _TIFF:
        import tifffile

        tifffile.imwrite(path, np.asarray(image, dtype=np.float32))
        return path
    data = np.asarray(image, dtype=np.float64)
    ref = np.asarray(reference) if reference is not None else None
    if ref is not None and ref.dtype == np.uint16 and suffix == ".png":
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

    iio.imwrite(path, np.clip(np.rint(data), info.min, info.max).astype(dtype))
    return path
