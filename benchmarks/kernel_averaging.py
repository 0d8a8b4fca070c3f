"""Experiment (issue 5): deconvolve with the kernel averaged over the last iterations.

At 300 iterations the kernel estimate still moves from one iteration to the next (Adam's
steps, the perturbed generator input). Averaging the kernels of the last part of the run is
free (no extra network work) and might give the final non-blind deconvolution a steadier
kernel. One blind run per image serves every variant, so the comparison is paired (same
seed, same run): *last* is what `deblur` does (the last estimate, prepared by
`kernel_size.deconvolution_kernel`); *mean F* averages the estimates of the last fraction F
of the iterations, then prepares it the same way.

    python benchmarks/kernel_averaging.py --images im1_kernel4 im2_kernel5 \\
        --out benchmarks/results/experiments/kernel_averaging.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from napari_dip_deblur import deblur_iter
from napari_dip_deblur.kernel_size import deconvolution_kernel
from napari_dip_deblur.levin import load_levin
from napari_dip_deblur.metrics import levin_score
from napari_dip_deblur.nonblind import deconvolve

FRACTIONS = (0.05, 0.1, 0.2, 0.4)


def _psnr(blurry: np.ndarray, kernel: np.ndarray, sharp: np.ndarray) -> float:
    prepared = deconvolution_kernel(kernel, max_shape=blurry.shape)
    restored = deconvolve(blurry, prepared, weight=1e-4)  # the `fast` preset's final step
    return levin_score(np.clip(np.round(restored), 0, 255), sharp).psnr


def run_case(case, seed: int) -> dict:
    blurry = case.blurry.astype(np.uint8)  # as benchmarks/levin.py passes it
    start = time.perf_counter()
    sums = {f: None for f in FRACTIONS}
    last = None
    for snap in deblur_iter(blurry, case.kernel_size, preset="fast", seed=seed, device="cpu",
                            yield_every=1, final_deconvolution="none"):
        last = snap
        for f in FRACTIONS:
            if snap.step > (1 - f) * snap.total:
                sums[f] = snap.kernel.astype(np.float64) + (0 if sums[f] is None else sums[f])
    seconds = time.perf_counter() - start
    row = {"case": case.name, "seed": seed, "seconds": seconds,
           "last": _psnr(blurry, last.kernel, case.sharp)}
    for f in FRACTIONS:
        row[f"mean {f:g}"] = _psnr(blurry, sums[f], case.sharp)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cases = {c.name: c for c in load_levin()}
    record = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    done = {(r["case"], r["seed"]) for r in record["rows"]}
    record.update(command="python benchmarks/kernel_averaging.py " + " ".join(
        ["--images", *args.images, "--seed", str(args.seed), "--out", str(args.out)]),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        platform=platform.platform(), torch=torch.__version__,
        threads=torch.get_num_threads())
    for name in args.images:
        if (name, args.seed) in done:
            continue
        row = run_case(cases[name], args.seed)
        record["rows"].append(row)
        print(json.dumps(row), flush=True)
        keys = ["last"] + [f"mean {f:g}" for f in FRACTIONS]
        record["mean"] = {k: float(np.mean([r[k] for r in record["rows"]])) for k in keys}
        args.out.write_text(json.dumps(record, indent=1) + "\n")  # after every image
    print(json.dumps(record.get("mean")))


if __name__ == "__main__":
    main()
