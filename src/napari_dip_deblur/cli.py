"""The ``dip-deblur`` command line: deblur image files, or run the bundled demo.

    dip-deblur INPUT -k SIZE -o OUTPUT [--preset NAME] [--iterations N] [--seed S]
               [--device DEV] [--kernel-out FILE] [--overwrite]
               [--mode shared|per-plane] [--reference N] [--region auto|Y0,X0,H,W]
               [--region-size N] [--noise-aware [WEIGHT]] [--colour auto|rgb|grey]
    dip-deblur INPUT --suggest-size [MAX]          (print a kernel size and exit)
    dip-deblur INPUT -k auto [--suggest-size MAX] -o OUTPUT
    dip-deblur INPUT --kernel FILE -o OUTPUT [--noise-aware [WEIGHT]] [--colour ...]
    dip-deblur demo [--out DIR]
    dip-deblur batch INPUTS... -k SIZE -o OUTDIR [...]   (many files on Dask: cli_batch)

A 2-D grey image without ``--region`` is deblurred blindly as a whole (``deblur_iter``).
Colour images, TIFF stacks and ``--region`` runs estimate the kernel on one 2-D image (the
luminance, one plane, a crop) and restore every channel of every plane with it
(:func:`napari_dip_deblur.restore.restore_iter`). With ``--kernel`` (a known kernel: a
measured PSF, an earlier estimate) there is no blind step: every channel of every plane is
restored with that kernel.

Ctrl-C stops a run and writes what it has; exit status 130. A 2-D grey image: the whole
input deconvolved with the kernel found so far (``fast``), or the last iterate. Colour
images, stacks and regions: the plane in hand is finished (with the kernel found so far, if
it was still being estimated) and the planes not restored keep the input; a second Ctrl-C
stops at once and writes nothing.

Files: an input that cannot be read (missing, a folder, empty, not the format its suffix
says, truncated) and an output that cannot be written (an existing file without
``--overwrite``, a folder that cannot be written in) are refused before the run, with a
one-line message and exit status 2. A missing output folder is created. Every file is
written whole or not at all (:func:`napari_dip_deblur._io.atomic_write`).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ._run_notes import run_notes

__all__ = ["main"]

MICROSCOPY = "microscopy"
"""The --preset that runs :func:`napari_dip_deblur.microscopy.deconvolve_microscopy`
(``napari_dip_deblur.microscopy.PRESET``; named here so that the parser does not import it)."""

# The demo's settings: a 32-channel, 4-level generator is enough for a 128 x 128 image
# and finishes in about 35 s on a 2-core CPU (measured 2026-11-25, README); one start, so
# that a first try stays that short.
DEMO_SETTINGS = {"preset": "fast", "iterations": 600, "channels": 32, "levels": 4,
                 "starts": 1}
DEMO_SIZE, DEMO_KERNEL = 128, 15
DEMO_FILES = ("blurry.png", "restored.png", "sharp.png", "kernel_estimated.png",
              "kernel_true.png")

#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130

#: Iterations of the short blind run behind ``--suggest-size`` and ``-k auto``.
SUGGEST_ITERATIONS = 300

_TIFF = (".tif", ".tiff")
_KERNEL_FILES = (".npy", *_TIFF, ".png")


def _kernel_size(text: str) -> int | tuple[int, int] | str:
    if text.strip().lower() == "auto":
        return "auto"
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"kernel size must be N, HxW or 'auto', got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"kernel size must be N, HxW or 'auto', got {text!r}")


def _suggest_max(text: str) -> int | tuple[int, int]:
    size = _kernel_size(text)
    sides = (size,) if isinstance(size, int) else size
    if size == "auto" or any(side < 3 or side % 2 == 0 for side in sides):
        raise argparse.ArgumentTypeError(f"MAX must be an odd N or HxW >= 3, got {text!r}")
    return size


def _region(text: str) -> str | Any:
    if text.strip().lower() == "auto":
        return "auto"
    from .regions import region_from_text

    try:
        return region_from_text(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}, or 'auto'") from None


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _run_with_progress(image: np.ndarray, kernel_size, quiet: bool, **kwargs):
    """Run ``deblur_iter`` with a progress bar; return the last snapshot.

    Ctrl-C ends the run, not the program: the last snapshot is finished as the run would
    have finished it (:func:`~napari_dip_deblur.api.finish_early`) and returned, so that
    the caller writes it. It is None where no iteration was reached.
    """
    from tqdm import tqdm

    from .api import deblur_iter, finish_early

    snapshots = deblur_iter(image, kernel_size, yield_every=10, **kwargs)
    final = None
    with tqdm(total=None, unit="it", disable=quiet, dynamic_ncols=True) as bar:
        try:
            for final in snapshots:
                bar.total = final.total
                bar.update(final.step - bar.n)
                bar.set_postfix(loss=f"{final.loss:.4f}")
        except KeyboardInterrupt:
            snapshots.close()
            if final is not None and final.settings.get("final_deconvolution",
                                                        "none") != "none":
                final = finish_early(image, final)
            raise _Interrupted(final) from None
    return final


class _Interrupted(Exception):
    """Ctrl-C during a run; ``snapshot`` is its last result (None before the first)."""

    def __init__(self, snapshot: Any) -> None:
        super().__init__("interrupted")
        self.snapshot = snapshot


def _parser() -> argparse.ArgumentParser:
    from .noise import DEFAULT_TV_WEIGHT
    from .presets import DEFAULT_PRESET, PRESETS

    parser = argparse.ArgumentParser(
        prog="dip-deblur",
        description="Blind deblurring with a deep image prior. Run 'dip-deblur demo' to try "
                    "it on a bundled sample.",
    )
    parser.add_argument("input", type=Path,
                        help="blurry image (PNG, JPEG or TIFF): 2-D grey, colour (RGB or "
                             "RGBA: one kernel, estimated on the luminance, restores every "
                             "channel; alpha is copied) or a TIFF stack (planes along the "
                             "leading axes)")
    parser.add_argument("-k", "--kernel-size", type=_kernel_size, default=None,
                        help="odd kernel size N or HxW, a bit larger than the blur streaks; "
                             "'auto': suggest one first from a short run (see --suggest-size)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="restored image (.png, .jpg, or .tif to keep float values; "
                             "stacks: .tif)")
    parser.add_argument("--preset", default=DEFAULT_PRESET,
                        choices=["auto", *sorted(PRESETS), MICROSCOPY],
                        help="'auto' (default): selfdeblur on CUDA, fast elsewhere; "
                             "'microscopy': a 2-D fluorescence image in photon counts, its PSF "
                             "fitted to the image (or --kernel) and Richardson-Lucy "
                             "(docs/microscopy.md); -k is not needed, --iterations sets the "
                             "Richardson-Lucy iterations")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--starts", type=int, default=None, metavar="N",
                        help="run N starts from their own seeds and keep the sharpest "
                             "(default: the preset's; fast runs 2, each to the end, so 1 "
                             "halves its time); insurance against a collapse to a smeared "
                             "kernel")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--kernel", type=Path, default=None, metavar="FILE",
                        help="a known blur kernel (a measured PSF, an earlier estimate): "
                             ".npy, .tif or .png, 2-D, odd sides, centred on the middle "
                             "pixel, non-negative; it is divided by its sum. No blind "
                             "estimate: every channel of every plane is restored with it by "
                             "non-blind deconvolution, so -k is not needed (if given it must "
                             "match the kernel's shape) and --preset, --seed and --device are "
                             "not used")
    parser.add_argument("--kernel-out", type=Path, default=None,
                        help="also save the estimated kernel (.npy, .tif, or .png scaled "
                             "to its maximum; per-plane kernels: .npy or .tif)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace -o and --kernel-out files that already exist (without "
                             "it they are refused before the run); missing folders are "
                             "created either way")
    real = parser.add_argument_group("colour images, stacks and large images")
    real.add_argument("--colour", default="auto", choices=["auto", "rgb", "grey"],
                      help="'auto' (default): a last axis of 3 or 4 (2 in PNG/JPEG: grey + "
                           "alpha) is colour; 'grey': treat it as planes of a stack")
    real.add_argument("--mode", default="shared", choices=["shared", "per-plane"],
                      help="stacks: one kernel for all planes (default), or a kernel each")
    real.add_argument("--reference", type=int, default=None, metavar="N",
                      help="--mode shared: the plane (flat index) to estimate the kernel on "
                           "(default: the best-textured plane)")
    real.add_argument("--region", type=_region, default=None, metavar="auto|Y0,X0,H,W",
                      help="estimate the kernel on a crop of the plane: 'auto' (the "
                           "best-textured --region-size crop) or a rectangle (top row, left "
                           "column, height, width); the whole image is then restored")
    real.add_argument("--region-size", type=_int_at_least(16), default=256, metavar="N",
                      help="side of the automatic region (default 256)")
    real.add_argument("--noise-aware", type=_positive_float, nargs="?", default=None,
                      const=DEFAULT_TV_WEIGHT, metavar="WEIGHT",
                      help=f"keep a total-variation prior in the last interval of the "
                           f"schedule, for noisy data (default weight {DEFAULT_TV_WEIGHT})")
    size = parser.add_argument_group("kernel size suggestion")
    size.add_argument("--suggest-size", type=_suggest_max, nargs="?", default=None,
                      const=0, metavar="MAX",
                      help="print a suggested kernel size from a short run with a generous "
                           "kernel (MAX, default 41 or a third of the image) and exit; with "
                           "-k auto, the MAX of the suggestion")
    size.add_argument("--suggest-iterations", type=_int_at_least(1),
                      default=SUGGEST_ITERATIONS, metavar="N",
                      help=f"iterations of the suggestion's run (default {SUGGEST_ITERATIONS})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _deblur_files(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.preset == MICROSCOPY:
        return _deblur_microscopy(parser, args)
    if args.kernel is not None:
        _check_known_kernel_options(parser, args)
    suggest_only = args.suggest_size is not None and args.kernel_size != "auto"
    if suggest_only and args.kernel_size is not None:
        parser.error("argument --suggest-size: use it alone (print a size and exit) or with "
                     "-k auto, not with a kernel size")
    if args.kernel_size is None and not suggest_only and args.kernel is None:
        parser.error("the following arguments are required: -k/--kernel-size (or "
                     "--suggest-size, or --kernel FILE)")
    if args.output is None and not suggest_only:
        parser.error("the following arguments are required: -o/--output")
    if args.reference is not None and args.mode != "shared":
        parser.error("argument --reference: applies to --mode shared only")

    from ._io import read_image, write_image

    try:
        image = read_image(args.input)
        layout = _layout(image, args)
        if not args.quiet:
            _hint_microscopy(image)
        if suggest_only:
            return _print_suggestion(image, layout, args)
        _check_outputs(layout, args)
        known = _read_kernel(args, layout) if args.kernel is not None else None
        kernel_size = args.kernel_size
        if kernel_size == "auto":
            suggestion = _suggest(image, layout, args)
            kernel_size = suggestion.size
            if not args.quiet:
                print(f"kernel size {kernel_size[0]}x{kernel_size[1]} (suggested)")
        if layout["plain"] and known is None:
            try:
                final = _run_plain(image, kernel_size, args)
            except _Interrupted as stop:
                return _write_interrupted(stop.snapshot, image, args)
            write_image(args.output, final.image, image)
            if args.kernel_out is not None:
                _write_kernel(args.kernel_out, final.kernel)
            summary = ", ".join([f"{final.step} iterations", *run_notes(final.settings),
                                 f"{final.elapsed:.1f} s on {final.settings['device']}"])
        else:
            try:
                result = _run_restore(image, kernel_size, layout, args, known)
            except KeyboardInterrupt:
                print("dip-deblur: interrupted twice; nothing written", file=sys.stderr)
                return INTERRUPTED
            stopped = result.settings.get("stopped", False)
            if stopped and not result.settings["planes_restored"]:
                print("dip-deblur: interrupted before its kernel could be deconvolved with "
                      "(still too near its start); nothing written", file=sys.stderr)
                return INTERRUPTED
            if layout["stack_shape"] and not layout["colour"]:
                _write_stack(args.output, result.image)
            else:
                write_image(args.output, result.image, image)
            if args.kernel_out is not None:
                kernel = result.kernel if result.kernel is not None else result.kernels
                _write_kernel(args.kernel_out, kernel)
            if stopped:
                n = math.prod(layout["stack_shape"])
                kept = (f"{result.settings['planes_restored']} of {n} planes restored, the "
                        f"others are the input" if n > 1 else "the image restored")
                how = (" with the kernel found so far"
                       if result.settings.get("finished_early") else "")
                print(f"dip-deblur: interrupted; wrote {args.output} ({kept}{how})",
                      file=sys.stderr)
                return INTERRUPTED
            summary = _describe(result, layout)
    except (ValueError, OSError) as error:  # incl. InsufficientMemoryError, ImageFileError
        print(f"dip-deblur: error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"wrote {args.output} ({summary})")
    return 0


def _hint_microscopy(image: np.ndarray) -> None:
    """Suggest --preset microscopy for what looks like photon counts."""
    from .microscopy import looks_like_counts

    if looks_like_counts(image):
        print(f"dip-deblur: the image looks like photon counts (integers with shot noise): "
              f"--preset {MICROSCOPY} may suit it better", file=sys.stderr)


def _deblur_microscopy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """--preset microscopy: one 2-D count image, a fitted (or given) PSF, Richardson-Lucy."""
    if args.output is None:
        parser.error("the following arguments are required: -o/--output")
    unused = [option for option, given in (
        ("-k/--kernel-size", args.kernel_size is not None),
        ("--suggest-size", args.suggest_size is not None), ("--starts", args.starts is not None),
        ("--mode per-plane", args.mode != "shared"), ("--reference", args.reference is not None),
        ("--region", args.region is not None), ("--noise-aware", args.noise_aware is not None),
    ) if given]
    if unused:
        parser.error(f"argument --preset {MICROSCOPY}: {', '.join(unused)} not used (the PSF "
                     f"is fitted to the image, or given with --kernel)")
    if args.iterations is not None and args.iterations < 1:
        parser.error("argument --iterations: must be at least 1")
    from ._io import read_image, write_image
    from .microscopy import deconvolve_microscopy, psf_width

    try:
        for path in (args.output, args.kernel_out):
            if path is not None and path.exists() and not args.overwrite:
                raise ValueError(f"{path} exists (add --overwrite to replace it)")
        image = read_image(args.input)
        if image.ndim != 2:
            raise ValueError(f"--preset {MICROSCOPY} takes a 2-D grey image, got shape "
                             f"{image.shape}")
        psf = None if args.kernel is None else read_image(args.kernel).astype(float)
        start = time.perf_counter()
        result = deconvolve_microscopy(image, psf=psf, iterations=args.iterations,
                                       seed=args.seed)
        write_image(args.output, result.image, image)
        if args.kernel_out is not None:
            _write_kernel(args.kernel_out, result.psf)
    except (ValueError, OSError) as error:
        print(f"dip-deblur: error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        fitted = ("given PSF" if result.model is None else
                  f"{result.model.family} PSF fitted, FWHM {psf_width(result.psf):.2f} px")
        print(f"wrote {args.output} (microscopy: {fitted}, background {result.background:.1f}, "
              f"{result.iterations} Richardson-Lucy iterations, "
              f"{time.perf_counter() - start:.1f} s)")
    return 0


def _write_interrupted(snapshot: Any, image: np.ndarray, args: argparse.Namespace) -> int:
    """Write what a run stopped by Ctrl-C has (see ``_run_with_progress``)."""
    from ._io import write_image

    if snapshot is None:
        print("dip-deblur: interrupted before the first iteration; nothing written",
              file=sys.stderr)
        return INTERRUPTED
    write_image(args.output, snapshot.image, image)
    if args.kernel_out is not None:
        _write_kernel(args.kernel_out, snapshot.kernel)
    how = ("the whole image deconvolved with the kernel it had"
           if snapshot.settings.get("finished_early") else "its last iterate")
    print(f"dip-deblur: interrupted at iteration {snapshot.step} of {snapshot.total}; "
          f"wrote {args.output} ({how})", file=sys.stderr)
    return INTERRUPTED


def _check_known_kernel_options(parser: argparse.ArgumentParser,
                                args: argparse.Namespace) -> None:
    """With --kernel: no options of the blind estimate, which it replaces."""
    if args.kernel_size == "auto" or args.suggest_size is not None:
        parser.error("argument --kernel: a kernel size suggestion (-k auto, --suggest-size) "
                     "is for a blind estimate; with a known kernel leave it out")
    blind_only = [option for option, given in (
        ("--mode per-plane", args.mode != "shared"), ("--reference", args.reference is not None),
        ("--region", args.region is not None), ("--iterations", args.iterations is not None),
        ("--starts", args.starts is not None))
        if given]
    if blind_only:
        parser.error(f"argument --kernel: {', '.join(blind_only)} only steer the blind "
                     f"estimate, which --kernel replaces; leave "
                     f"{'it' if len(blind_only) == 1 else 'them'} out")


def _read_kernel(args: argparse.Namespace, layout: dict[str, Any]) -> np.ndarray:
    """The --kernel file as a checked kernel (float32, sum 1)."""
    from ._io import read_image
    from .api import normalise_kernel_size
    from .restore import _check_kernel

    path: Path = args.kernel
    suffix = path.suffix.lower()
    if suffix not in _KERNEL_FILES:
        raise ValueError(f"--kernel: the kernel file must end in {', '.join(_KERNEL_FILES)}, "
                         f"got {path.name!r}")
    if not path.is_file():
        raise ValueError(f"--kernel: no such kernel file: {path}")
    try:
        array = np.load(path, allow_pickle=False) if suffix == ".npy" else read_image(path)
    except Exception as error:  # each reader (numpy, tifffile, imageio) has its own errors
        raise ValueError(f"--kernel: cannot read {path} as a kernel: {error}") from None
    try:
        kernel = _check_kernel(array, layout["plane_shape"])
    except ValueError as error:
        raise ValueError(f"--kernel: {path.name}: {error}") from None
    if args.kernel_size is not None:
        size = normalise_kernel_size(args.kernel_size, layout["plane_shape"])
        if size != kernel.shape:
            raise ValueError(f"-k/--kernel-size {size[0]}x{size[1]} does not match the "
                             f"{kernel.shape[0]}x{kernel.shape[1]} kernel of --kernel "
                             f"{path.name}: leave -k out")
    return kernel


def _layout(image: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """How the file's array is read: colour or not, the stack's shape, the plane's shape."""
    tiff = args.input.suffix.lower() in _TIFF
    channels = (3, 4) if tiff else (2, 3, 4)
    if args.colour == "rgb":
        if image.ndim < 3 or image.shape[-1] not in (2, 3, 4):
            raise ValueError(f"--colour rgb: the last axis must hold 3 or 4 channels (RGB, "
                             f"RGBA), got shape {image.shape}")
        colour = True
    else:
        colour = args.colour == "auto" and image.ndim >= 3 and image.shape[-1] in channels
    spatial = 3 if colour else 2
    if image.ndim < spatial:
        raise ValueError(f"the image must have at least two axes, got shape {image.shape}")
    stack_shape = tuple(image.shape[:image.ndim - spatial])
    plane_shape = tuple(image.shape[len(stack_shape):len(stack_shape) + 2])
    plain = not colour and not stack_shape and args.region is None
    return {"colour": colour, "stack_shape": stack_shape, "plane_shape": plane_shape,
            "plain": plain}


def _check_outputs(layout: dict[str, Any], args: argparse.Namespace) -> None:
    """Refuse, before any work, outputs that cannot hold the result or cannot be written."""
    from ._io import IMAGE_SUFFIXES, check_writable

    stack = layout["stack_shape"]
    if args.output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"-o/--output must end in .png, .jpg or .tif/.tiff, got "
                         f"{args.output.name!r}")
    if stack and args.output.suffix.lower() not in _TIFF:
        raise ValueError(f"-o/--output: a stack of {math.prod(stack)} planes needs a .tif or "
                         f".tiff output, got {args.output.name!r}")
    if args.kernel_out is not None:
        per_plane = stack and args.mode == "per-plane"
        allowed = (".npy", *_TIFF) if per_plane else (".npy", ".png", *_TIFF)
        if args.kernel_out.suffix.lower() not in allowed:
            what = "per-plane kernels need" if per_plane else "must end in"
            raise ValueError(f"--kernel-out: {what} {', '.join(allowed)}, got "
                             f"{args.kernel_out.name!r}")
    if args.reference is not None:
        n = math.prod(stack)
        if not stack:
            raise ValueError("--reference: this image has a single plane (it applies to "
                             "stacks)")
        if not -n <= args.reference < n:
            raise ValueError(f"--reference: plane {args.reference} is out of range for {n} "
                             f"planes")
    if args.region is not None and args.region != "auto":
        from .regions import as_region

        try:
            as_region(args.region, layout["plane_shape"])
        except ValueError as error:
            raise ValueError(f"--region: {error}") from None
    if args.kernel_out is not None and args.kernel_out.resolve() == args.output.resolve():
        raise ValueError(f"--kernel-out: {args.kernel_out} is also the -o/--output file")
    check_writable(args.output, overwrite=args.overwrite, option="-o/--output")
    if args.kernel_out is not None:
        check_writable(args.kernel_out, overwrite=args.overwrite, option="--kernel-out")


def _estimation_plane(image: np.ndarray, layout: dict[str, Any],
                      args: argparse.Namespace) -> np.ndarray:
    """The 2-D grey image a size is suggested on: the reference (or best-textured) plane,
    or its luminance."""
    from .colour import luminance
    from .regions import gradient_energy

    stack = layout["stack_shape"]
    planes = image.reshape(-1, *image.shape[len(stack):]) if stack else image[None]

    def grey(plane: np.ndarray) -> np.ndarray:
        return luminance(plane, channel_axis=-1) if layout["colour"] else plane

    if args.reference is not None:
        n = len(planes)
        if not -n <= args.reference < n:
            raise ValueError(f"--reference: plane {args.reference} is out of range for "
                             f"{n} planes")
        return grey(planes[args.reference])
    if len(planes) == 1:
        return grey(planes[0])
    scores = [float(gradient_energy(grey(p)).mean()) for p in planes]
    return grey(planes[int(np.argmax(scores))])


def _suggest(image: np.ndarray, layout: dict[str, Any], args: argparse.Namespace):
    from .kernel_size import suggest_kernel_size

    plane = _estimation_plane(image, layout, args)
    if args.region is not None and args.region != "auto":
        from .regions import as_region

        try:
            as_region(args.region, plane.shape)
        except ValueError as error:
            raise ValueError(f"--region: {error}") from None
    max_size = args.suggest_size or None  # 0: the option without a value
    if not args.quiet:
        print(f"suggesting a kernel size ({args.suggest_iterations} iterations)...",
              file=sys.stderr)
    try:
        suggestion = suggest_kernel_size(
            plane, max_size, region=args.region if args.region is not None else "auto",
            region_size=args.region_size, preset=args.preset,
            iterations=args.suggest_iterations, seed=args.seed, device=args.device)
    except ValueError as error:
        where = "--suggest-size: " if max_size is not None else ""
        raise ValueError(f"{where}{error}") from None
    if not suggestion.reliable:
        kh, kw = suggestion.max_size
        print(f"dip-deblur: warning: the blur reaches the edge of the {kh}x{kw} estimate; "
              f"it may be larger: try a larger --suggest-size MAX", file=sys.stderr)
    return suggestion


def _print_suggestion(image: np.ndarray, layout: dict[str, Any],
                      args: argparse.Namespace) -> int:
    suggestion = _suggest(image, layout, args)
    (h, w), (sh, sw), (mh, mw) = suggestion.size, suggestion.support.shape, suggestion.max_size
    where = f" on the region {suggestion.region}" if suggestion.region is not None else ""
    option = f"{h}" if h == w else f"{h}x{w}"
    print(f"suggested kernel size: {h}x{w} (blur support {sh}x{sw} in a {mh}x{mw} "
          f"estimate{where}); use -k {option}")
    return 0


def _run_plain(image: np.ndarray, kernel_size: Any, args: argparse.Namespace):
    """A 2-D grey image, deblurred blindly as a whole (the original path)."""
    overrides: dict[str, Any] = {}
    preset: Any = args.preset
    if args.noise_aware is not None:
        from .api import resolve_device
        from .noise import noise_aware_overrides
        from .presets import preset_for_device

        preset = preset_for_device(preset, resolve_device(args.device).type)
        overrides = noise_aware_overrides(preset, args.noise_aware)
    if args.starts is not None:
        overrides["starts"] = args.starts
    return _run_with_progress(image, kernel_size, args.quiet, preset=preset,
                              iterations=args.iterations, seed=args.seed,
                              device=args.device, **overrides)


@contextmanager
def _first_ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """Within the block, the first Ctrl-C sets ``stop`` (the run ends gently, with a
    result); a second raises ``KeyboardInterrupt`` as usual. Outside the main thread,
    where no signal handler can be set, Ctrl-C keeps its usual effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def first(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_restore(image: np.ndarray, kernel_size: Any, layout: dict[str, Any],
                 args: argparse.Namespace, known: np.ndarray | None = None):
    """Colour, stacks and regions: estimate one kernel (or one per plane), apply it to all;
    or, with a ``known`` kernel, apply that one to all. A first Ctrl-C ends the run with
    what it has (``restore_iter``'s ``stop``)."""
    from tqdm import tqdm

    from .restore import restore_iter

    channel_axis = -1 if layout["colour"] else None
    stop = threading.Event()
    if known is not None:
        progresses = restore_iter(image, kernel=known, channel_axis=channel_axis,
                                  noise_aware=args.noise_aware, stop=stop)
    else:
        progresses = restore_iter(
            image, kernel_size, mode=args.mode.replace("-", "_"), channel_axis=channel_axis,
            reference=args.reference, region=args.region, region_size=args.region_size,
            noise_aware=args.noise_aware, preset=args.preset, iterations=args.iterations,
            seed=args.seed, device=args.device, stop=stop,
            **({} if args.starts is None else {"starts": args.starts}))
    n_planes = math.prod(layout["stack_shape"])
    final = None
    with _first_ctrl_c_sets(stop), tqdm(total=None, unit="step", disable=args.quiet,
                                         dynamic_ncols=True) as bar:
        for final in progresses:
            bar.total = final.total
            bar.update(final.step - bar.n)
            if final.stage == "estimate":
                where = "" if final.plane is None else f" plane {final.plane + 1}/{n_planes}"
                bar.set_postfix_str(f"estimating{where}, loss {final.snapshot.loss:.4f}")
            elif final.stage == "apply":
                bar.set_postfix_str(f"restoring plane {final.plane + 1}/{final.n_planes}")
    return final.result


def _describe(result: Any, layout: dict[str, Any]) -> str:
    parts = []
    if layout["colour"]:
        parts.append("colour")
    stack = layout["stack_shape"]
    if result.settings.get("kernel_source") == "given":
        if stack:
            parts.append(f"{math.prod(stack)} planes")
        kh, kw = result.kernel.shape
        parts.append(f"restored with the given {kh}x{kw} kernel")
    elif stack:
        n = math.prod(stack)
        if result.mode == "shared":
            reference = int(np.ravel_multi_index(result.reference, stack))
            parts.append(f"{n} planes, one kernel estimated on plane {reference}")
        else:
            parts.append(f"{n} planes, a kernel each")
    regions = [r for r in result.regions if r is not None]
    if len(regions) == 1:
        parts.append(f"kernel estimated on {regions[0]}")
    elif regions:
        parts.append(f"kernels estimated on regions of {regions[0].height}x"
                     f"{regions[0].width}")
    parts.extend(run_notes(result.settings))
    device = result.settings.get("device", "?")
    parts.append(f"{result.wall_time:.1f} s on {device}")
    return ", ".join(parts)


def _write_stack(path: Path, stack: np.ndarray) -> None:
    """A grey stack as float32 TIFF pages (never read back as RGB), written atomically."""
    import tifffile

    from ._io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as partial:
        tifffile.imwrite(partial, np.asarray(stack, dtype=np.float32), photometric="minisblack")


def _write_kernel(path: Path, kernel: np.ndarray) -> None:
    """A kernel (or per-plane kernels) as .npy, float32 .tif or max-scaled .png, atomically."""
    from ._io import atomic_write

    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        _write_stack(path, kernel)
        return
    if suffix not in (".npy", ".png"):
        raise ValueError(f"--kernel-out must end in .npy, .tif or .png, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as partial:
        if suffix == ".npy":
            np.save(partial, kernel)
        else:
            import imageio.v3 as iio

            iio.imwrite(partial, np.rint(kernel / kernel.max() * 255).astype(np.uint8))


def _demo(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dip-deblur demo",
        description="Deblur a bundled sample (scikit-image's camera photo blurred by a known "
                    "motion kernel) and report the gain.",
    )
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="folder for the images (default: ./demo-output; created if "
                             "missing; the demo's five files in it are replaced)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=DEMO_SETTINGS["iterations"])
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)

    from ._io import check_writable, write_image
    from .metrics import kernel_error, levin_score
    from .samples import blurred_photo

    try:  # before the run: a folder that cannot be written is found now
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out: {args.out} is a file, not a folder")
        for name in DEMO_FILES:
            check_writable(args.out / name, overwrite=True, option="--out")
    except ValueError as error:
        print(f"dip-deblur demo: error: {error}", file=sys.stderr)
        return 2
    sample = blurred_photo(DEMO_SIZE, DEMO_KERNEL)
    print(f"Demo: {sample.name} {DEMO_SIZE}x{DEMO_SIZE}, blurred by a {DEMO_KERNEL}x{DEMO_KERNEL} "
          f"motion kernel; estimating image and kernel ({args.iterations} iterations)...")
    started = time.perf_counter()
    settings = {**DEMO_SETTINGS, "iterations": args.iterations}
    final = _run_with_progress(sample.blurry, DEMO_KERNEL, args.quiet, device=args.device,
                               **settings)
    seconds = time.perf_counter() - started

    before = levin_score(sample.blurry * 255, sample.sharp * 255)
    after = levin_score(np.clip(final.image, 0, 1) * 255, sample.sharp * 255)
    kernel = kernel_error(final.kernel, sample.kernel)
    try:
        write_image(args.out / "blurry.png", sample.blurry, sample.sharp)
        write_image(args.out / "restored.png", final.image, sample.sharp)
        write_image(args.out / "sharp.png", sample.sharp, sample.sharp)
        _write_kernel(args.out / "kernel_estimated.png", final.kernel)
        _write_kernel(args.out / "kernel_true.png", sample.kernel)
    except OSError as error:  # e.g. the disk filled up during the run
        print(f"dip-deblur demo: error: cannot write in {args.out}: {error}", file=sys.stderr)
        return 2
    print(f"PSNR  blurry {before.psnr:6.2f} dB  ->  restored {after.psnr:6.2f} dB "
          f"({after.psnr - before.psnr:+.2f} dB)")
    print(f"SSIM  blurry {before.ssim:6.3f}     ->  restored {after.ssim:6.3f}")
    print(f"kernel: normalised cross-correlation with the true kernel {kernel.ncc:.3f}, "
          f"L2 error {kernel.l2:.4f}")
    print(f"{seconds:.0f} s on {final.settings['device']}; images written to {args.out}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dip-deblur``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "demo":
            return _demo(argv[1:])
        if argv and argv[0] == "batch":
            from .cli_batch import batch_main

            return batch_main(argv[1:])
        return _deblur_files(argv)
    except (KeyboardInterrupt, _Interrupted):  # where no result is kept: the demo, a suggestion
        print("dip-deblur: interrupted; nothing written", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
