"""``dip-deblur batch``: deblur many image files on a Dask cluster, resumably.

    dip-deblur batch INPUTS... -k SIZE -o OUTDIR [--mode per-plane|shared] [--reference N]
               [--kernel FILE] [--workers N] [--threads-per-worker T] [--scheduler ADDR]
               [--retries N] [--preset NAME] [--iterations N] [--seed S] [--starts N]
               [--device DEV] [--noise-aware [WEIGHT]] [--colour auto|rgb|grey] [-q]

INPUTS are files, folders (their image files) or quoted glob patterns. Each input is one
item (a TIFF stack file is one item, its planes restored in one task); each result is
written to OUTDIR under the input's name, in its format, with its kernel as
``<stem>.kernel.npy``, atomically, as soon as it is done. ``OUTDIR/summary.csv`` lists every
item (:data:`~napari_dip_deblur.batch_io.SUMMARY_FIELDS`). Running the same command again
skips the items whose output exists (resume after Ctrl-C, a crash, a killed job); in shared
mode the kernel is kept in ``OUTDIR/batch-shared-kernel.npy`` and reused.

Exit status: 0 when every item is done, 1 when some failed (see the summary), 2 for a bad
command line or input list, 130 after Ctrl-C (what was written stays; pending tasks are
cancelled).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SHARED_KERNEL", "batch_main"]

SHARED_KERNEL = "batch-shared-kernel.npy"
"""Shared mode: the kernel every item is restored with, in OUTDIR (its non-blind weight and
reference beside it in ``batch-shared-kernel.json``)."""

_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    from .cli import _int_at_least, _kernel_size, _positive_float
    from .noise import DEFAULT_TV_WEIGHT
    from .presets import DEFAULT_PRESET, PRESETS

    parser = argparse.ArgumentParser(
        prog="dip-deblur batch",
        description="Deblur many images on a Dask cluster (a local one by default): one "
                    "output per input in OUTDIR, a summary.csv, resumable.")
    parser.add_argument("inputs", nargs="+",
                        help="image files (PNG, JPEG, TIFF), folders, or quoted glob patterns")
    parser.add_argument("-k", "--kernel-size", type=_kernel_size, default=None,
                        help="odd kernel size N or HxW of the blind estimates")
    parser.add_argument("-o", "--output-dir", type=Path, required=True,
                        help="folder for the results (created; not an input folder)")
    parser.add_argument("--mode", default="per-plane", choices=["per-plane", "shared"],
                        help="a blind estimate per input (default), or one kernel "
                             "estimated on one input and applied to all")
    parser.add_argument("--reference", type=int, default=None, metavar="N",
                        help="--mode shared: the input (its number, from 0) to estimate on "
                             "(default: the best-textured)")
    parser.add_argument("--kernel", type=Path, default=None, metavar="FILE",
                        help="a known kernel (.npy, .tif, .png): every input restored with "
                             "it, no blind estimate")
    where = parser.add_argument_group("where it runs")
    where.add_argument("--workers", type=_int_at_least(1), default=None, metavar="N",
                       help="local worker processes (default: one per core)")
    where.add_argument("--threads-per-worker", type=_int_at_least(1), default=None,
                       metavar="T", help="torch threads per worker (default: cores / workers)")
    where.add_argument("--scheduler", default=None, metavar="ADDR",
                       help="run on an existing Dask cluster, e.g. tcp://host:8786")
    where.add_argument("--retries", type=_int_at_least(0), default=2, metavar="N",
                       help="retries of a task that fails unexpectedly (default 2)")
    run = parser.add_argument_group("run options (as for a single image)")
    run.add_argument("--preset", default=DEFAULT_PRESET, choices=["auto", *sorted(PRESETS)])
    run.add_argument("--iterations", type=_int_at_least(1), default=None)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--starts", type=_int_at_least(1), default=None, metavar="N")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--noise-aware", type=_positive_float, nargs="?", default=None,
                     const=DEFAULT_TV_WEIGHT, metavar="WEIGHT")
    run.add_argument("--colour", default="auto", choices=["auto", "rgb", "grey"])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def batch_main(argv: Sequence[str]) -> int:
    """Run ``dip-deblur batch`` with the arguments after ``batch``; the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.kernel is None and args.kernel_size is None:
        parser.error("the following arguments are required: -k/--kernel-size (or --kernel)")
    if args.kernel_size == "auto":
        parser.error("argument -k/--kernel-size: 'auto' is for a single image; give a size")
    if args.kernel is not None and (args.mode != "shared" or args.iterations is not None
                                    or args.starts is not None):
        parser.error("argument --kernel: use it with --mode shared, without --iterations "
                     "and --starts (no blind estimate)")
    if args.reference is not None and args.mode != "shared":
        parser.error("argument --reference: applies to --mode shared only")
    if args.scheduler is not None and (args.workers or args.threads_per_worker):
        parser.error("argument --scheduler: --workers and --threads-per-worker size a local "
                     "cluster; leave them out")

    from .batch_io import expand_inputs, kernel_path, output_path

    try:
        inputs = expand_inputs(args.inputs)
        _check_names(inputs, args.output_dir)
        known = _read_kernel(args.kernel) if args.kernel is not None else None
    except ValueError as error:
        print(f"dip-deblur batch: error: {error}", file=sys.stderr)
        return 2
    done = {i for i, path in enumerate(inputs)
            if output_path(path, args.output_dir).is_file()
            and kernel_path(path, args.output_dir).is_file()}
    rows = _rows(inputs, args.output_dir, done)
    from .batch_io import write_summary

    summary = args.output_dir / "summary.csv"
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if len(done) == len(inputs):
        write_summary(summary, rows)
        if not args.quiet:
            print(f"all {len(inputs)} outputs are in {args.output_dir} already; nothing to do")
        return 0
    return _run(args, inputs, done, rows, known, summary)


def _check_names(inputs: list[Path], out_dir: Path) -> None:
    from .batch_io import output_path

    names: dict[str, Path] = {}
    for path in inputs:
        if path.name in names:
            raise ValueError(f"two inputs have the name {path.name!r} ({names[path.name]} and "
                             f"{path}); their outputs would collide in {out_dir}")
        names[path.name] = path
        if output_path(path, out_dir).resolve() == path.resolve():
            raise ValueError(f"-o/--output-dir {out_dir} holds the input {path.name}: choose "
                             f"another folder, the outputs take the inputs' names")


def _read_kernel(path: Path) -> np.ndarray:
    from ._io import read_image

    if not path.is_file():
        raise ValueError(f"--kernel: no such kernel file: {path}")
    try:
        return np.load(path, allow_pickle=False) if path.suffix.lower() == ".npy" \
            else read_image(path)
    except Exception as error:  # each reader has its own errors
        raise ValueError(f"--kernel: cannot read {path} as a kernel: {error}") from None


def _rows(inputs: list[Path], out_dir: Path, done: set[int]) -> list[dict[str, Any]]:
    """A summary row per input: skipped ones keep what an earlier run recorded."""
    from .batch_io import output_path, read_summary

    earlier = {row.get("input"): row for row in read_summary(out_dir / "summary.csv")}
    rows = []
    for i, path in enumerate(inputs):
        row: dict[str, Any] = {"item": i, "input": str(path),
                               "output": str(output_path(path, out_dir)), "status": "pending"}
        if i in done:
            before = earlier.get(str(path), {})
            row.update(status="skipped", kernel_size=before.get("kernel_size", ""),
                       seconds=before.get("seconds", ""))
        rows.append(row)
    return rows


def _shared_kernel(args: argparse.Namespace, inputs: list[Path], client: Any,
                   known: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any]]:
    """The kernel of a shared run: given, kept from an earlier run, or estimated now (and
    kept, so that a resumed run restores every item with the same kernel)."""
    from .batch import estimate_shared_kernel
    from .batch_io import write_atomically, write_kernel

    if known is not None:
        return known, {}
    path = args.output_dir / SHARED_KERNEL
    notes = path.with_suffix(".json")
    if path.is_file() and notes.is_file():
        note = json.loads(notes.read_text(encoding="utf-8"))
        return np.load(path), note
    if not args.quiet:
        print("estimating the shared kernel...", file=sys.stderr)
    shared = estimate_shared_kernel(
        [str(p) for p in inputs], args.kernel_size, reference=args.reference,
        colour=args.colour, client=client, retries=args.retries, **_run_options(args))
    note = {"weight": shared.weight, "reference": str(inputs[shared.reference]),
            "seconds": round(shared.seconds, 2)}
    write_kernel(path, shared.kernel)
    text = json.dumps(note, indent=1)
    write_atomically(notes, lambda target: target.write_text(text, encoding="utf-8"))
    return shared.kernel, note


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"preset": args.preset, "iterations": args.iterations,
                               "seed": args.seed, "device": args.device,
                               "noise_aware": args.noise_aware}
    if args.starts is not None:
        options["starts"] = args.starts
    return options


def _run(args: argparse.Namespace, inputs: list[Path], done: set[int],
         rows: list[dict[str, Any]], known: np.ndarray | None, summary: Path) -> int:
    from tqdm import tqdm

    from .batch import deblur_batch, open_client
    from .batch_io import kernel_path, write_kernel, write_result, write_summary

    sizing = {} if args.scheduler else {"workers": args.workers,
                                        "threads_per_worker": args.threads_per_worker,
                                        "device": args.device}
    failed = 0
    items = None
    try:
        with open_client(args.scheduler, **sizing) as client:
            if args.mode == "shared":
                kernel, note = _shared_kernel(args, inputs, client, known)
                options: dict[str, Any] = {"noise_aware": args.noise_aware}
                if note.get("weight") is not None:
                    options["nonblind_options"] = {"weight": note["weight"]}
                items = deblur_batch([str(p) for p in inputs], kernel=kernel, mode="shared",
                                     colour=args.colour, skip=done, client=client,
                                     retries=args.retries, **options)
            else:
                items = deblur_batch([str(p) for p in inputs], args.kernel_size,
                                     mode="per_plane", colour=args.colour, skip=done,
                                     client=client, retries=args.retries,
                                     **_run_options(args))
            try:
                with tqdm(total=len(inputs) - len(done), unit="image", disable=args.quiet,
                          dynamic_ncols=True) as bar:
                    for item in items:
                        row = rows[item.index]
                        row.update(seconds=f"{item.seconds:.2f}")
                        if item.status == "done":
                            path = inputs[item.index]
                            # the kernel first: an output image under its name means both exist
                            write_kernel(kernel_path(path, args.output_dir), item.kernel)
                            write_result(Path(row["output"]), item.image, item.value_range,
                                         item.colour)
                            row.update(status="done", kernel_size="x".join(
                                str(s) for s in item.kernel.shape[-2:]), error="")
                        else:
                            failed += 1
                            row.update(status="failed", error=item.error)
                        write_summary(summary, rows)
                        bar.update(1)
                        bar.set_postfix(failed=failed)
            finally:
                if items is not None:
                    items.close()  # cancels the tasks not finished, before the client goes
    except KeyboardInterrupt:
        _reconcile(rows, inputs, args.output_dir)
        write_summary(summary, rows)
        written = sum(row["status"] == "done" for row in rows)
        print(f"dip-deblur batch: interrupted; {written} new outputs written in "
              f"{args.output_dir}; run the same command again to do the rest",
              file=sys.stderr)
        return _INTERRUPTED
    except (ValueError, OSError) as error:  # a bad option, an unusable shared reference
        write_summary(summary, rows)
        print(f"dip-deblur batch: error: {error}", file=sys.stderr)
        return 2
    write_summary(summary, rows)
    if not args.quiet:
        total = len(inputs) - len(done)
        print(f"{total - failed} of {total} images restored in {args.output_dir}"
              f"{f', {len(done)} done earlier' if done else ''}"
              f"{f'; {failed} failed (see summary.csv)' if failed else ''}")
    return 1 if failed else 0


def _reconcile(rows: list[dict[str, Any]], inputs: list[Path], out_dir: Path) -> None:
    """After Ctrl-C, which may fall between writing an output and recording it: an item
    whose output and kernel are on disk is done, whatever its row says."""
    from .batch_io import kernel_path, output_path

    for row, path in zip(rows, inputs, strict=True):
        kernel = kernel_path(path, out_dir)
        if row["status"] == "pending" and output_path(path, out_dir).is_file() \
                and kernel.is_file():
            shape = np.load(kernel, mmap_mode="r").shape
            row.update(status="done", kernel_size=f"{shape[-2]}x{shape[-1]}")
