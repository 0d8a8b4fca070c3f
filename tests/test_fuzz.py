"""Fuzzed inputs (hypothesis) for deblur, deblur_iter, restore and the dip-deblur CLI.

Every example gives either a correct result or a ValueError/TypeError raised by this
package whose message names the argument; never an exception from inside numpy or torch,
never a hang (an alarm stops an example after HANG_SECONDS), and the input is never
modified. Images run from 1 x 1 to very thin and very large (strided views of a few MB that
the memory check must refuse from their shape), 1-D to 5-D, every kind of numpy dtype,
with NaN, inf, constant, negative, 1e30, 1e300 and denormal values. The ``fuzz-ci``
profile is derandomized: CI runs the same examples every time.
"""

import json
import os
import signal
import tempfile
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_dip_deblur.api import deblur, deblur_iter
from napari_dip_deblur.cli import main
from napari_dip_deblur.memory import InsufficientMemoryError
from napari_dip_deblur.restore import restore

settings.register_profile(
    "fuzz-ci", derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])
PROFILE = settings.get_profile("fuzz-ci")
#: Examples per test (at least 300 in all, as issue 27 asks).
EXAMPLES = {"deblur": 200, "deblur_iter": 100, "restore": 200, "cli": 120}

# A tiny network and one iteration: each run that gets past the checks takes milliseconds.
TINY = {"channels": 4, "levels": 1, "skip_channels": 2, "non_local_levels": (), "starts": 1,
        "final_deconvolution": "none", "iterations": 1, "device": "cpu"}
HANG_SECONDS = 30
FLOAT32_MAX = float(np.finfo(np.float32).max)

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128", "object", "<U4",
          "datetime64[s]", "timedelta64[s]"]
VALUES = ["random", "random", "constant", "nan", "inf", "negative", "1e30", "extreme",
          "denormal"]


#: Outcomes per test ("ok", "refused", "memory"; the CLI: its exit status): written as JSON
#: to $FUZZ_TALLY, where set, for docs/reliability.md.
TALLY: dict[str, Counter] = {}


@pytest.fixture(autouse=True, scope="module")
def _memory_check_on():
    """The memory check must run (it refuses the very large images)."""
    saved = os.environ.pop("DIP_DEBLUR_SKIP_MEMORY_CHECK", None)
    yield
    if saved is not None:
        os.environ["DIP_DEBLUR_SKIP_MEMORY_CHECK"] = saved
    if os.environ.get("FUZZ_TALLY"):
        Path(os.environ["FUZZ_TALLY"]).write_text(json.dumps(TALLY, indent=1, sort_keys=True))


def _count(test: str, outcome: str) -> None:
    TALLY.setdefault(test, Counter())[outcome] += 1


class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    def alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- inputs


@dataclass
class Image:
    array: np.ndarray
    base: np.ndarray  # what to compare after the call (the array, or a huge view's base)
    values: str
    huge: bool
    well_formed: bool = False  # drawn to be valid: a real dtype, finite values, planes >= 16

    def __repr__(self) -> str:  # hypothesis prints failing examples
        return (f"Image(shape={self.array.shape}, dtype={self.array.dtype}, "
                f"values={self.values!r}, huge={self.huge})")


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, values: str
            ) -> np.ndarray:
    real = rng.normal(100.0, 30.0, shape)
    if values == "negative":
        real -= 1000.0
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.random(shape) > 0.5
    if kind in "iu":
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        if values == "constant":
            array[...] = info.max // 3
        return array
    if kind == "c":
        return (real + 1j * rng.normal(size=shape)).astype(dtype)
    if kind == "O":
        return real.astype(object)
    if kind in "UMm":
        return rng.integers(0, 1000, shape).astype(dtype)
    finfo = np.finfo(dtype)
    if values == "constant":
        real[...] = 7.25
    elif values == "1e30":
        real *= 1e30
    elif values == "extreme":
        real = np.where(rng.random(shape) > 0.5, 1, -1) * float(finfo.max) * 0.9
    elif values == "denormal":
        real = rng.random(shape) * float(finfo.smallest_subnormal) * 64
    with np.errstate(over="ignore"):  # 1e30 in float16 is inf: one more bad input
        array = real.astype(dtype)
    if values in ("nan", "inf") and array.size:
        index = tuple(int(rng.integers(0, side)) for side in shape)
        array[index] = np.nan if values == "nan" else -np.inf
    return array


REAL = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
        "float32", "float64"]


@st.composite
def images(draw, max_dims: int = 5) -> Image:
    """Half well-formed images (so that runs do happen), half anything."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        dtype = draw(st.sampled_from(REAL))
        values = draw(st.sampled_from(["random", "negative"] + (["1e30"] if dtype in (
            "float32", "float64") else [])))
        if draw(st.integers(0, 4)) == 0:
            short, long = draw(st.integers(16, 20)), draw(st.integers(200, 2000))
            shape = (short, long) if draw(st.booleans()) else (long, short)
        else:
            shape = tuple(draw(st.sampled_from([16, 17, 24, 31, 40])) for _ in range(2))
            if max_dims > 2 and draw(st.booleans()):
                shape = (draw(st.integers(1, 3)), *shape)
        array = _values(rng, shape, dtype, values)
        return Image(array, array, values, False, True)
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.sampled_from(VALUES))
    size = draw(st.sampled_from(["small", "small", "small", "small", "thin", "huge"]))
    if size == "huge":  # a strided view: 300000 x 300000 (or 16 x 1e8) over a few MB
        rows, cols = draw(st.sampled_from([(300_000, 300_000), (16, 100_000_000)]))
        base = _values(rng, (min(cols, 300_000),), dtype, values)
        array = np.lib.stride_tricks.as_strided(base, shape=(rows, cols),
                                                strides=(0, base.strides[0]))
        if cols > base.size:
            array = np.lib.stride_tricks.as_strided(base, shape=(rows, cols), strides=(0, 0))
        return Image(array, base, values, True)
    if size == "thin":
        short, long = draw(st.integers(1, 20)), draw(st.integers(200, 3000))
        shape = (short, long) if draw(st.booleans()) else (long, short)
    else:
        ndim = draw(st.integers(1, max_dims))
        lead = [draw(st.integers(0, 3)) for _ in range(max(0, ndim - 2))]
        plane = [draw(st.sampled_from([0, 1, 2, 3, 15, 16, 17, 24, 31, 40])) for _ in
                 range(min(ndim, 2))]
        shape = tuple(lead + plane)
    array = _values(rng, shape, dtype, values)
    return Image(array, array, values, False)


#: Kernel sizes: good (a third), even, 0, negative, float, NaN, strings, bool, None, too
#: large, tuples and lists of the wrong length, numpy scalars.
kernel_sizes = st.one_of(
    st.sampled_from([3, 5, 7, (3, 5), [5, 3], np.int64(3), np.uint8(5), 15]),
    st.integers(-5, 45),
    st.sampled_from([0, 2, 4, 10**6, 10**30, True, None, 3.0, 5.5, float("nan"), float("inf"),
                     "5", "55", "auto", "", b"5", np.int64(5), np.float64(5.0), np.uint8(3),
                     [3, 5], (), (3,), (5, 5, 5), (3, 4), (-3, 3), (3.0, 3), ("a", "b"),
                     (float("nan"), 3), (True, 3), np.array([3, 5]), np.array([[3]])]),
    st.tuples(st.integers(-3, 41), st.integers(-3, 41)),
)


def _named(error: BaseException, names: tuple[str, ...]) -> None:
    """A ValueError/TypeError raised in this package, naming one of ``names``."""
    frames = traceback.extract_tb(error.__traceback__)
    origin = frames[-1].filename if frames else "?"
    assert "napari_dip_deblur" in origin, f"{error!r} raised in {origin}"
    message = str(error)
    assert any(name in message for name in names), f"{message!r} names none of {names}"


def _same(array: np.ndarray, before: np.ndarray) -> bool:
    """Equal, bit for bit in effect: dtype, shape and values (NaN equal to NaN)."""
    return (array.dtype == before.dtype and array.shape == before.shape
            and np.array_equal(array, before, equal_nan=before.dtype.kind in "fc"))


def _unchanged(image: Image, before: np.ndarray) -> None:
    assert _same(image.base, before)


def _outcome(test: str, call, image: Image, names: tuple[str, ...]):
    """``("ok", result)``, ``("memory", error)`` or ``("refused", error)``."""
    before = image.base.copy()
    try:
        with no_hang():
            kind, value = "ok", call()
    except InsufficientMemoryError as error:
        _named(error, ("not enough RAM", "not enough GPU memory"))
        kind, value = "memory", error
    except (ValueError, TypeError) as error:
        _named(error, names)
        kind, value = "refused", error
    finally:
        _unchanged(image, before)
    _count(test, kind)
    return kind, value


def _side(value) -> int | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return None


def _expected_kernel(kernel_size, plane: tuple[int, int]) -> tuple[int, int] | None:
    """The kernel shape a valid ``kernel_size`` asks for on ``plane``, else None."""
    if _side(kernel_size) is not None:
        pair = (_side(kernel_size),) * 2
    elif isinstance(kernel_size, (tuple, list, np.ndarray)) and np.ndim(kernel_size) == 1 \
            and len(kernel_size) == 2:
        pair = tuple(_side(v) for v in kernel_size)
    else:
        return None
    if None in pair or any(k < 3 or k % 2 == 0 or k > s for k, s in zip(pair, plane,
                                                                          strict=True)):
        return None
    return pair


def _valid_plane(array: np.ndarray) -> bool:
    """Values deblur must accept: real, finite, within 1e36, varying at float32 precision."""
    if array.dtype.kind not in "iuf" or array.size == 0:
        return False
    lo, hi = float(array.min()), float(array.max())
    return (np.isfinite(lo) and np.isfinite(hi) and max(-lo, hi) <= 1e36
            and np.float32(lo) != np.float32(hi) and hi - lo >= np.finfo(np.float32).tiny)


def _check_run(image: np.ndarray, restored: np.ndarray, kernel: np.ndarray,
               kernel_shape: tuple[int, ...]) -> None:
    assert restored.shape == image.shape and restored.dtype == np.float32
    assert np.isfinite(restored).all()
    assert kernel.shape == kernel_shape and kernel.dtype == np.float32
    assert kernel.min() >= 0 and abs(float(kernel.sum()) - 1) < 1e-4


# --------------------------------------------------------------------------- the API


@settings(PROFILE, max_examples=EXAMPLES["deblur"])
@given(image=images(), kernel_size=kernel_sizes)
def test_deblur_gives_a_result_or_names_the_argument(image, kernel_size):
    kind, value = _outcome("deblur", lambda: deblur(image.array, kernel_size, **TINY), image,
                           ("image", "kernel_size"))
    array = image.array
    plain = array.ndim == 2 and min(array.shape) >= 16 and array.dtype.kind in "iuf"
    shape = _expected_kernel(kernel_size, array.shape) if plain else None
    if image.huge and shape is not None:
        assert kind == "memory", value  # refused from its shape, never allocated
    elif shape is not None and _valid_plane(array):
        assert kind == "ok", value  # a valid input is never refused
        _check_run(array, value.image, value.kernel, shape)
    else:
        assert kind != "ok", f"accepted: {image!r}, kernel_size={kernel_size!r}"


@st.composite
def initial_kernels(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = draw(st.sampled_from([(3, 3), (3, 3), (5, 5), (3,), (3, 3, 1), (4, 4), (0, 3)]))
    dtype = draw(st.sampled_from(["float32", "float64", "int64", "bool", "complex64",
                                  "object", "float16"]))
    values = draw(st.sampled_from(["random", "random", "zero", "negative", "nan", "inf"]))
    kernel = rng.random(shape)
    if values == "zero":
        kernel[...] = 0
    elif values == "negative":
        kernel -= 2
    elif values in ("nan", "inf") and kernel.size:
        kernel.flat[0] = np.nan if values == "nan" else np.inf
    with np.errstate(invalid="ignore"):  # NaN or inf cast to an integer: any value
        return kernel.astype(dtype)


@settings(PROFILE, max_examples=EXAMPLES["deblur_iter"])
@given(image=images(max_dims=3), kernel_size=kernel_sizes,
       initial_kernel=st.one_of(st.none(), st.none(), initial_kernels()),
       yield_every=st.one_of(st.sampled_from([1, 3, np.int64(1)]),
                             st.sampled_from([0, -1, 2.0, "1", None, True])),
       seed=st.one_of(st.sampled_from([0, 7, 2**63 - 1, np.uint64(5)]),
                      st.sampled_from([-1, 2**63, 2**64, 1.5, "0", None, False])))
def test_deblur_iter_gives_snapshots_or_names_the_argument(image, kernel_size, initial_kernel,
                                                          yield_every, seed):
    kernel_copy = None if initial_kernel is None else initial_kernel.copy()

    def run():
        return list(deblur_iter(image.array, kernel_size, yield_every=yield_every, seed=seed,
                                initial_kernel=initial_kernel, **TINY))

    kind, value = _outcome("deblur_iter", run, image, ("image", "kernel_size", "initial_kernel",
                                        "yield_every", "seed"))
    if initial_kernel is not None:
        assert _same(initial_kernel, kernel_copy)
    if kind == "ok":
        last = value[-1]
        assert last.done and last.step == 1
        _check_run(image.array, last.image, last.kernel,
                   _expected_kernel(kernel_size, image.array.shape))


@st.composite
def known_kernels(draw):
    if draw(st.booleans()):
        return None
    if draw(st.booleans()):  # a valid kernel
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        return rng.random(draw(st.sampled_from([(3, 3), (5, 3), (7, 7)])))
    return draw(initial_kernels())


@settings(PROFILE, max_examples=EXAMPLES["restore"])
@given(image=images(), kernel_size=st.one_of(st.none(), kernel_sizes), kernel=known_kernels(),
       channel_axis=st.one_of(st.none(), st.sampled_from([-1, 0, 2, 7, -9, 1.0, "x", True])))
def test_restore_gives_a_result_or_names_the_argument(image, kernel_size, kernel,
                                                      channel_axis):
    kernel_copy = None if kernel is None else kernel.copy()
    kind, value = _outcome(
        "restore",
        lambda: restore(image.array, kernel_size, kernel=kernel, channel_axis=channel_axis,
                        **({} if kernel is not None else TINY)),
        image, ("image", "kernel_size", "kernel", "channel_axis", "alpha", "iterations",
                "channels", "starts", "levels", "final_deconvolution", "non_local_levels",
                "skip_channels", "device"))
    if kernel is not None:
        assert _same(kernel, kernel_copy)
    if kind == "ok":
        restored = value.image
        assert restored.shape == image.array.shape and restored.dtype == np.float32
        assert np.isfinite(restored).all()
        kernels = value.kernel if value.kernel is not None else value.kernels
        assert kernels.min() >= 0
        np.testing.assert_allclose(kernels.sum(axis=(-2, -1)), 1, atol=1e-4)
    if image.huge:
        assert kind != "ok"  # refused (from its shape where nothing else is wrong)
    plane = image.array.shape[-2:]
    if image.well_formed and channel_axis is None and _valid_plane(image.array) and (
            _expected_kernel(kernel_size, plane) if kernel is None else (
                kernel_size is None and kernel.dtype.kind == "f" and kernel.ndim == 2
                and _valid_plane(kernel) and kernel.min() >= 0
                and _expected_kernel(kernel.shape, plane))):
        assert kind == "ok", value  # a valid input is never refused


# --------------------------------------------------------------------------- the CLI


@st.composite
def image_files(draw):
    """(file name, bytes or an array to write, how): PNG, TIFF or damaged files; half
    well-formed (``how`` "good-tif", "good-png")."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        if draw(st.booleans()):
            dtype = draw(st.sampled_from(["uint8", "uint16", "float32", "float64"]))
            shape = draw(st.sampled_from([(32, 32), (33, 31), (2, 32, 32), (32, 32, 3)]))
            return "in.tif", _values(rng, shape, dtype, "random"), "good-tif"
        shape = draw(st.sampled_from([(32, 32), (32, 32, 3), (32, 32, 4), (40, 33)]))
        return "in.png", _values(rng, shape, "uint8", "random"), "good-png"
    how = draw(st.sampled_from(["tif", "tif", "png", "png", "truncated", "empty", "text"]))
    if how == "png":
        shape = draw(st.sampled_from([(1, 1), (32, 32), (40, 33), (2, 300), (32, 32, 3),
                                      (32, 32, 4), (32, 32, 2), (16, 16)]))
        # Pillow writes 16-bit PNGs in grey only
        dtype = draw(st.sampled_from(["uint8", "uint16"])) if len(shape) == 2 else "uint8"
        values = draw(st.sampled_from(["random", "constant"]))
        return "in.png", _values(rng, shape, dtype, values), how
    if how == "tif":
        dtype = draw(st.sampled_from(["uint8", "uint16", "int32", "float16", "float32",
                                      "float64", "complex64", "bool"]))
        shape = draw(st.sampled_from([(7,), (1, 1), (32, 32), (2, 32, 32), (1, 2, 2, 32, 32),
                                      (32, 32, 3), (3, 2000), (33, 31)]))
        values = draw(st.sampled_from(VALUES))
        return "in.tif", _values(rng, shape, dtype, values), how
    if how == "truncated":
        data = np.rint(rng.random((32, 32)) * 255).astype(np.uint8)
        return "in.png", data, how
    if how == "empty":
        return draw(st.sampled_from(["in.png", "in.tif"])), b"", how
    return draw(st.sampled_from(["in.png", "in.tif", "in.jpg"])), b"not an image\n", how


GOOD_SIZES = ["3", "5", "3x5"]
cli_sizes = st.one_of(st.sampled_from(GOOD_SIZES),
                      st.sampled_from(["4", "0", "-3", "5.5", "abc", "5x5x5", "3x", "99999",
                                       "nan", "", "1e3"]))


@settings(PROFILE, max_examples=EXAMPLES["cli"])
@given(source=image_files(), size=cli_sizes,
       output=st.one_of(st.sampled_from(["out.tif", "sub/out.tif"]),
                        st.sampled_from(["out.png", "out.bmp", "out.tif"])))
def test_cli_exits_0_with_an_output_or_2_with_one_line(source, size, output, capsys):
    name, content, how = source
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif how == "tif":
            colour = content.ndim == 3 and content.shape[-1] in (3, 4)
            tifffile.imwrite(path, content, photometric="rgb" if colour else
                             "minisblack" if content.ndim > 1 else None)
        else:
            iio.imwrite(path, content)
            if how == "truncated":
                path.write_bytes(path.read_bytes()[:60])
        written = path.read_bytes()
        target = Path(folder) / output
        capsys.readouterr()
        try:
            with no_hang():
                code = main([str(path), "-k", size, "-o", str(target), "--iterations", "1",
                             "--starts", "1", "--device", "cpu", "-q"])
        except SystemExit as exit_:  # argparse refuses an option's value
            code = exit_.code
        err = capsys.readouterr().err
        _count("cli", f"exit {code}")
        assert path.read_bytes() == written  # the input file is untouched
        assert "Traceback" not in err
        stack = isinstance(content, np.ndarray) and content.ndim == 3 \
            and content.shape[-1] not in (3, 4)
        if how.startswith("good") and size in GOOD_SIZES and (
                target.suffix == ".tif" or (target.suffix == ".png" and not stack)):
            assert code == 0, err  # a valid input is never refused
        if code == 0:
            back = tifffile.imread(target) if target.suffix == ".tif" else iio.imread(target)
            assert back.shape == (content.shape if isinstance(content, np.ndarray) else None)
            assert np.isfinite(back).all()
        else:
            assert code == 2, err
            last = err.strip().splitlines()[-1]
            assert last.startswith("dip-deblur"), err
            assert not target.exists()
        left = [p.name for p in Path(folder).rglob(".*partial*")]
        assert left == []  # no temporary file is left behind
