"""Run a preset on the camera-shake development set and score every case (JSON lines).

The development set (:mod:`napari_dip_deblur.devsets.camera_shake`: 40 scikit-image photos,
grey and colour, blurred by random-trajectory kernels of 11-75 px) is where hyperparameters,
rules and thresholds are chosen; the Levin set is only reported (``benchmarks/levin.py``).

Each case runs the way a user's 8-bit photo would: the blurry image rounded to ``uint8`` goes
to :func:`napari_dip_deblur.restore` (grey, or ``channel_axis=-1`` for colour: the kernel is
estimated on the luminance and applied to every channel) with the kernel size a user would
give (the true support rounded up to odd). The same non-blind step is also run with the
TRUE kernel (``restore(..., kernel=true_kernel)``, the preset's final weight), so the blind
result can be read as a fraction of what a perfect kernel would gain.

Scores, on the 8-bit scale (colour: on the rec601 luminance of the 8-bit result):

- ``psnr``/``ssim``: the protocol of :func:`napari_dip_deblur.metrics.levin_score` (crop 15 px,
  best sub-pixel shift within +-5 px, PSNR peak 255, SSIM 11x11 Gaussian), as on Levin;
- ``psnr_noshift``: the same crop, no shift search (the set is aligned by construction: the
  kernel is centred on its centre of mass);
- ``psnr_blurry``, ``psnr_nonblind``: the input and the true-kernel restoration, scored alike;
  ``gain_fraction = (psnr - psnr_blurry) / (psnr_nonblind - psnr_blurry)``;
- ``kernel_ncc``: :func:`napari_dip_deblur.metrics.kernel_error` of the kernel applied.

One JSON line per (case, seed) is appended to ``<out>/scores.jsonl`` as soon as that case is
done; cases already there are skipped, so a run resumes where it stopped. ``<out>/run.json``
holds the command, commit and machine. Images and arrays are not kept.

The script takes the shared CPU lock (``fcntl.flock`` on ``/tmp/cpu.lock``) around each case,
so other jobs can interleave between cases: do NOT wrap it in ``flock /tmp/cpu.lock`` (it would
wait for itself). ``--lock ''`` turns the lock off (a machine of one's own).

Examples
--------
The baseline of ``fast``, seed 0, in the background::

    nohup .venv/bin/python benchmarks/devset.py --preset fast --tag fast-baseline \\
        > /tmp/devset.log 2>&1 &

A smoke run of two cases::

    python benchmarks/devset.py --cases camera_k21 coffee_k13 --iterations 5 --tag smoke

The large kernels only, three seeds, with an override::

    python benchmarks/devset.py --classes large --seeds 0 1 2 --set starts=3 --tag starts3

Then ``python benchmarks/devset_report.py benchmarks/results/devset/<tag> ...``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from napari_dip_deblur.colour import luminance
from napari_dip_deblur.devsets.camera_shake import (
    SIZE_CLASSES,
    CameraShakeCase,
    camera_shake_case,
    camera_shake_case_names,
)
from napari_dip_deblur.metrics import kernel_error, levin_score
from provenance import jsonable, provenance

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "devset"
SCORES = "scores.jsonl"


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Run a preset on the camera-shake development set (one JSON line a case).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="fast", help="a name in PRESETS")
    parser.add_argument("--iterations", type=int, default=None,
                        help="override the preset's number of iterations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a Settings override, VALUE read as a Python literal "
                             "(e.g. starts=3, channels=64); repeatable")
    parser.add_argument("--cases", nargs="+", default=None, metavar="NAME",
                        help="cases by name, e.g. camera_k21 coffee_k13 (see --list)")
    parser.add_argument("--classes", nargs="+", default=None, choices=list(SIZE_CLASSES),
                        help="kernel-size classes to run")
    parser.add_argument("--tag", default=None, help="name of the run (default: the preset)")
    parser.add_argument("--out", type=Path, default=None,
                        help="result folder (default: benchmarks/results/devset/<tag>)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', ...")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads; default: torch's own (the physical cores)")
    parser.add_argument("--lock", default="/tmp/cpu.lock",
                        help="file to flock around each case ('' : no lock)")
    parser.add_argument("--list", action="store_true", help="print the selected runs and exit")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.iterations is not None and args.iterations < 1:
        parser.error(f"--iterations must be >= 1, got {args.iterations}")
    if args.cases and args.classes:
        parser.error("give either --cases or --classes, not both")
    if args.cases:
        unknown = sorted(set(args.cases) - set(camera_shake_case_names()))
        if unknown:
            parser.error(f"unknown case name(s) {unknown}; --list shows them")
    try:
        args.overrides = parse_overrides(args.overrides)
    except ValueError as error:
        parser.error(str(error))
    args.tag = args.tag or args.preset
    args.out = args.out or RESULTS / args.tag
    return args


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["starts=3", "upsample=nearest"]`` -> ``{"starts": 3, "upsample": "nearest"}``."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--set expects KEY=VALUE with KEY a name, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            overrides[key] = text.strip()
    return overrides


def selected_names(args: argparse.Namespace) -> list[str]:
    """The case names to run, in the set's order (size classes interleaved)."""
    names = camera_shake_case_names()
    if args.cases:
        wanted = set(args.cases)
        return [name for name in names if name in wanted]
    if args.classes:
        from napari_dip_deblur.devsets.camera_shake import size_class

        return [name for name in names
                if size_class(int(name.split("_k")[1].split("_")[0])) in args.classes]
    return names


# --------------------------------------------------------------------------- one case


@contextlib.contextmanager
def cpu_lock(path: str) -> Iterator[float]:
    """Hold an exclusive ``flock`` on ``path`` (none if empty); yields the seconds waited."""
    if not path:
        yield 0.0
        return
    started = time.perf_counter()
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield time.perf_counter() - started
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip to 8 bits, as when saving a PNG."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)


def grey(image: np.ndarray) -> np.ndarray:
    """The image scored: itself, or the rec601 luminance of an RGB image (float64)."""
    array = np.asarray(image, dtype=np.float64)
    return luminance(array) if array.ndim == 3 else array


def image_scores(image: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Levin-protocol PSNR/SSIM of an 8-bit-scale image and the no-shift PSNR."""
    shifted = levin_score(grey(to_uint8(image)), truth)
    still = levin_score(grey(to_uint8(image)), truth, max_shift=0.0)
    return {"psnr": shifted.psnr, "ssim": shifted.ssim, "shift": list(shifted.shift),
            "psnr_noshift": still.psnr}


def final_weight(args: argparse.Namespace) -> float:
    """The weight of the preset's final non-blind step (with the overrides)."""
    from napari_dip_deblur.presets import resolve_settings

    settings = resolve_settings(args.preset, args.iterations, **args.overrides)
    return float(settings.final_deconvolution_weight)


def run_case(case: CameraShakeCase, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Blind and true-kernel restorations of one case, scored; the JSON record."""
    from napari_dip_deblur.restore import restore

    blurry = case.blurry_uint8
    channel_axis = -1 if case.colour else None
    truth = grey(case.sharp * 255.0)
    weight = final_weight(args)
    started = time.perf_counter()
    blind = restore(blurry, case.kernel_size, channel_axis=channel_axis, preset=args.preset,
                    iterations=args.iterations, seed=seed, device=args.device,
                    **args.overrides)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    nonblind = restore(blurry, kernel=case.kernel, channel_axis=channel_axis,
                       nonblind_options={"weight": weight})
    nonblind_seconds = time.perf_counter() - started

    scores = image_scores(blind.image, truth)
    reference = image_scores(nonblind.image, truth)
    inputs = image_scores(blurry, truth)
    k_err = kernel_error(blind.kernel, case.kernel)
    blind_gain = scores["psnr"] - inputs["psnr"]
    possible = reference["psnr"] - inputs["psnr"]
    estimate = blind.estimate.settings if blind.estimate is not None else {}
    return {
        "case": case.name, "image": case.image, "colour": case.colour,
        "kernel_size": case.kernel_size, "kernel_side": int(case.kernel.shape[0]),
        "size_class": case.size_class, "noise_std": case.noise_std, "seed": seed,
        "preset": args.preset, "tag": args.tag, "overrides": args.overrides,
        "iterations": args.iterations,
        **scores,
        "psnr_blurry": inputs["psnr"], "ssim_blurry": inputs["ssim"],
        "psnr_nonblind": reference["psnr"], "ssim_nonblind": reference["ssim"],
        "psnr_noshift_nonblind": reference["psnr_noshift"],
        "gain": blind_gain, "gain_nonblind": possible,
        "gain_fraction": blind_gain / possible if possible > 0 else None,
        "kernel_ncc": k_err.ncc, "kernel_l2": k_err.l2,
        "nonblind_weight": weight,
        "fit_ratio": _number(estimate.get("fit_ratio")),
        "attempts": len(estimate.get("attempt_fit_ratios") or [None]),
        "kept_attempt": estimate.get("kept_attempt", estimate.get("attempt")),
        "seconds": seconds, "nonblind_seconds": nonblind_seconds,
    }


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------- output


def done_already(out: Path) -> set[tuple[str, int]]:
    """The (case, seed) pairs recorded in ``out``'s scores."""
    path = out / SCORES
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash: that case runs again
                continue
            done.add((record["case"], int(record["seed"])))
    return done


def append_record(out: Path, record: dict[str, Any]) -> None:
    """Append one line, whole, and flush it to disk."""
    line = json.dumps(jsonable(record), separators=(",", ":")) + "\n"
    with open(out / SCORES, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def write_run_info(out: Path, info: dict[str, Any]) -> None:
    """``run.json``: the provenance of every invocation that added to this folder."""
    path = out / "run.json"
    runs = json.loads(path.read_text())["invocations"] if path.exists() else []
    runs.append(info)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"invocations": jsonable(runs)}, indent=1) + "\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases and seeds; return 1 if any run failed."""
    args = parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    names = selected_names(args)
    runs = [(name, seed) for seed in args.seeds for name in names]  # seed by seed
    if args.list:
        for name, seed in runs:
            print(f"{name}  seed {seed}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    write_run_info(args.out, provenance("devset.py", argv))
    done = done_already(args.out)
    failures = 0
    print(f"{len(runs)} run(s) -> {args.out}", flush=True)
    for number, (name, seed) in enumerate(runs, 1):
        label = f"[{number}/{len(runs)}] {name} seed {seed}"
        if (name, seed) in done:
            print(f"{label}: done already, skipped", flush=True)
            continue
        try:
            case = camera_shake_case(name)
            with cpu_lock(args.lock) as waited:
                record = run_case(case, seed, args)
        except Exception:  # keep going: one broken run must not lose the others
            failures += 1
            print(f"{label}: FAILED\n{traceback.format_exc()}", flush=True)
            continue
        record["lock_wait_s"] = waited
        record["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        append_record(args.out, record)
        print(f"{label}: PSNR {record['psnr']:.2f} (input {record['psnr_blurry']:.2f}, "
              f"true kernel {record['psnr_nonblind']:.2f}) kernel NCC "
              f"{record['kernel_ncc']:.3f}  {record['seconds']:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
