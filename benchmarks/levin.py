"""Run blind deblurring on the Levin et al. (2009) benchmark and score every result.

For each (image, seed) one JSON file is written as soon as that run finishes, with the
restored image (8-bit PNG, the form the published numbers were scored on) and the estimated
kernel (float32 NPY, plus a max-normalised PNG to look at) beside it. Cases whose JSON already
exists are skipped, so an interrupted run resumes where it stopped.

Scores follow `napari_dip_deblur.metrics.levin_score` (crop 15 px, +-5 px sub-pixel alignment,
PSNR peak 255, SSIM 11x11 Gaussian). The headline ``psnr``/``ssim`` are those of the restored
image rounded and clipped to 8 bits, as saved; ``psnr_float``/``ssim_float`` score the float
output as returned.

Examples
--------
All 32 images, one seed, the SelfDeblur preset::

    python benchmarks/levin.py --preset selfdeblur

Two images, a tiny smoke run::

    python benchmarks/levin.py --images im1_kernel1 im2_kernel4 --iterations 20 \\
        --set channels=16 --tag smoke

Kernels 4 and 5 of image 1, three seeds, a convergence record every 100 iterations::

    python benchmarks/levin.py --preset staged --kernels 4 5 --imgs 1 --seeds 0 1 2 \\
        --record-every 100

With ``--scores FILE`` each run also adds its compact line (scores and provenance, no
arrays; ``benchmarks/levin_scores.py``) to a JSON lines file: the record that is committed
(``docs/benchmarks/levin-scores/``) and from which ``benchmarks/levin_report.py`` writes the
report. The result folder itself (images, kernels, loss histories) is not committed.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from skimage import io

from levin_scores import add_line, compact
from napari_dip_deblur.levin import IMAGES, KERNELS, LevinCase, load_levin
from napari_dip_deblur.metrics import kernel_error, levin_score
from provenance import jsonable, provenance

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
HISTORY_POINTS = 200  # loss-history samples kept per term in each JSON


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Deblur the Levin et al. (2009) images and score them (one JSON per run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="selfdeblur", help="a name in PRESETS")
    parser.add_argument("--iterations", type=int, default=None,
                        help="override the preset's number of iterations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a Settings override, VALUE read as a Python literal "
                             "(e.g. channels=64, image_lr=1e-4); repeatable")
    parser.add_argument("--images", nargs="+", default=None, metavar="NAME",
                        help="cases by name, e.g. im1_kernel1 im3_kernel8")
    parser.add_argument("--imgs", type=int, nargs="+", default=None, choices=IMAGES,
                        help="sharp-image indices to run (with --kernels: their product)")
    parser.add_argument("--kernels", type=int, nargs="+", default=None, choices=KERNELS,
                        help="kernel indices to run")
    parser.add_argument("--tag", default=None, help="name of the run (default: the preset)")
    parser.add_argument("--out", type=Path, default=None,
                        help="result folder (default: benchmarks/results/<tag>)")
    parser.add_argument("--scores", type=Path, default=None, metavar="FILE",
                        help="also add each run's compact line (scores, provenance) to this "
                             "JSON lines file, e.g. docs/benchmarks/levin-scores/NAME.jsonl")
    parser.add_argument("--record-every", type=int, default=0, metavar="N",
                        help="score a snapshot every N iterations (convergence record); 0: off")
    parser.add_argument("--save-float", action="store_true",
                        help="also save the float restored image as NPY")
    parser.add_argument("--data", type=Path, default=None,
                        help="Levin data folder (default: $DIP_DEBLUR_LEVIN or ../shared/...)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads (torch.set_num_threads); default: torch's own, the "
                             "physical cores. Results depend on it (docs/decisions.md)")
    parser.add_argument("--list", action="store_true", help="print the selected runs and exit")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.images and (args.imgs or args.kernels):
        parser.error("give either --images or --imgs/--kernels, not both")
    if args.record_every < 0:
        parser.error("--record-every must be >= 0")
    try:
        args.overrides = parse_overrides(args.overrides)
    except ValueError as error:
        parser.error(str(error))
    args.tag = args.tag or args.preset
    args.out = args.out or RESULTS / args.tag
    return args


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["channels=64", "upsample=nearest"]`` -> ``{"channels": 64, "upsample": "nearest"}``.

    Values are Python literals; a value that is not one is kept as a string.
    """
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


def select_cases(cases: list[LevinCase], args: argparse.Namespace) -> list[LevinCase]:
    """The cases named by ``--images``, or the product of ``--imgs`` and ``--kernels``."""
    if args.images:
        by_name = {case.name: case for case in cases}
        unknown = [name for name in args.images if name not in by_name]
        if unknown:
            raise SystemExit(f"unknown case name(s) {unknown}; names look like im1_kernel1 "
                             f"(im1..im4, kernel1..kernel8)")
        return [by_name[name] for name in dict.fromkeys(args.images)]
    return [case for case in cases
            if (not args.imgs or case.image_index in args.imgs)
            and (not args.kernels or case.kernel_index in args.kernels)]


# --------------------------------------------------------------------------- one run


def run_case(case: LevinCase, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Deblur one case with one seed and score it.

    Returns a dict with the JSON record (``"record"``), the restored float image and kernel.
    """
    from napari_dip_deblur import DeblurDivergedError, deblur_iter

    yield_every = args.record_every or 10**9
    # uint8 input: the engine reads it as [0, 255] and divides by 255, as SelfDeblur does.
    snapshots = deblur_iter(case.blurry.astype(np.uint8), case.kernel_size,
                            preset=args.preset, iterations=args.iterations, seed=seed,
                            device=args.device, yield_every=yield_every, **args.overrides)
    convergence: list[dict[str, Any]] = []
    overhead = 0.0  # seconds spent scoring snapshots, taken out of the timings
    last, status = None, "ok"
    try:
        for snap in snapshots:
            last = snap
            if args.record_every:
                started = time.perf_counter()
                score = levin_score(to_uint8(snap.image), case.sharp)
                convergence.append({"step": snap.step, "seconds": snap.elapsed - overhead,
                                    "psnr": score.psnr, "ssim": score.ssim, "loss": snap.loss})
                overhead += time.perf_counter() - started
    except DeblurDivergedError as error:
        last, status = error.snapshot, "diverged"
        print(f"  diverged: {error}", flush=True)
    if last is None:
        raise RuntimeError(f"{case.name} seed {seed}: diverged before the first snapshot")
    record = score_record(case, last.image, last.kernel)
    record.update({
        "case": case.name, "image_index": case.image_index, "kernel_index": case.kernel_index,
        "seed": seed, "status": status, "preset": args.preset, "tag": args.tag,
        "overrides": args.overrides, "kernel_size": case.kernel_size,
        "true_kernel_size": int(case.kernel.shape[0]), "iterations": last.step,
        "iterations_planned": last.total, "wall_time": last.elapsed - overhead,
        "scoring_overhead_s": overhead, "device": last.settings.get("device"),
        "settings": last.settings, "final_terms": last.terms,
        "history": subsample_history(last.history, HISTORY_POINTS),
        "convergence": convergence or None,
    })
    return {"record": record, "image": last.image, "kernel": last.kernel,
            "generator_kernel": last.generator_kernel}


def score_record(case: LevinCase, image: np.ndarray, kernel: np.ndarray) -> dict[str, Any]:
    """Levin scores of the 8-bit and float image, and the kernel error."""
    saved = levin_score(to_uint8(image), case.sharp)
    raw = levin_score(np.asarray(image, dtype=np.float64), case.sharp)
    k_err = kernel_error(kernel, case.kernel)
    rotated = kernel_error(np.rot90(kernel, 2), case.kernel)
    return {
        "psnr": saved.psnr, "ssim": saved.ssim, "shift": list(saved.shift),
        "psnr_float": raw.psnr, "ssim_float": raw.ssim,
        "kernel_ncc": k_err.ncc, "kernel_l2": k_err.l2, "kernel_shift": list(k_err.shift),
        # diagnostic: a kernel returned in the wrong orientation scores higher here
        "kernel_ncc_rot180": rotated.ncc,
    }


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip to 8 bits, as when saving a PNG."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)


def subsample_history(history: dict[str, np.ndarray], points: int) -> dict[str, Any]:
    """At most ``points`` evenly spaced samples (the last included) of each loss curve."""
    if not history:
        return {}
    length = len(next(iter(history.values())))
    stride = max(1, math.ceil(length / points))
    steps = list(range(stride - 1, length, stride))
    if steps and steps[-1] != length - 1:
        steps.append(length - 1)
    out: dict[str, Any] = {"step": [s + 1 for s in steps]}
    for name, values in history.items():
        out[name] = [float(values[s]) for s in steps]
    return out


# --------------------------------------------------------------------------- output


def write_outputs(out: Path, stem: str, result: dict[str, Any], *, save_float: bool) -> Path:
    """Write the PNG/NPY files, then the JSON last (atomically): its presence marks done."""
    out.mkdir(parents=True, exist_ok=True)
    kernel = np.asarray(result["kernel"], dtype=np.float32)
    io.imsave(out / f"{stem}_image.png", to_uint8(result["image"]), check_contrast=False)
    np.save(out / f"{stem}_kernel.npy", kernel)
    peak = float(kernel.max()) or 1.0
    io.imsave(out / f"{stem}_kernel.png", to_uint8(255 * kernel / peak), check_contrast=False)
    if result.get("generator_kernel") is not None:
        # the estimate before the final deconvolution centred and cropped it: that step
        # can be redone from it exactly, with other options
        np.save(out / f"{stem}_generator_kernel.npy",
                np.asarray(result["generator_kernel"], dtype=np.float32))
    if save_float:
        np.save(out / f"{stem}_image.npy", np.asarray(result["image"], dtype=np.float32))
    path = out / f"{stem}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(jsonable(result["record"]), indent=1) + "\n")
    os.replace(temporary, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases and seeds; return 1 if any run failed."""
    args = parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    cases = select_cases(load_levin(args.data), args)
    runs = [(case, seed) for case in cases for seed in args.seeds]
    if args.list:
        for case, seed in runs:
            print(f"{case.name}_seed{seed}  kernel_size={case.kernel_size}")
        return 0
    info = provenance("levin.py", argv)
    failures = 0
    print(f"{len(runs)} run(s) -> {args.out}", flush=True)
    for number, (case, seed) in enumerate(runs, 1):
        stem = f"{case.name}_seed{seed}"
        if (args.out / f"{stem}.json").exists():
            print(f"[{number}/{len(runs)}] {stem}: done already, skipped", flush=True)
            continue
        try:
            result = run_case(case, seed, args)
        except Exception:  # keep going: one broken run must not lose the others
            failures += 1
            print(f"[{number}/{len(runs)}] {stem}: FAILED\n{traceback.format_exc()}", flush=True)
            continue
        result["record"].update(info)
        result["record"]["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_outputs(args.out, stem, result, save_float=args.save_float)
        if args.scores is not None:
            add_line(args.scores, compact(result["record"]))
        r = result["record"]
        print(f"[{number}/{len(runs)}] {stem}: PSNR {r['psnr']:.3f} SSIM {r['ssim']:.4f} "
              f"kernel NCC {r['kernel_ncc']:.3f}  {r['wall_time']:.1f} s on {r['device']}",
              flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
