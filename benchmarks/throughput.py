"""Seconds per iteration of one run, and total throughput of several concurrent runs.

Usage: python benchmarks/throughput.py [--preset selfdeblur] [--iterations 100]
       [--kernel 27] [--size 255] [--processes 1 4 8] [--device auto]

On a GPU, one SelfDeblur run leaves most of the device idle (small convolutions, launch
overhead), so the Levin benchmark runs several images at once; this measures how many.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import numpy as np


def _one_run(args: tuple) -> float:
    preset, iterations, kernel, size, device, overrides, seed = args
    from napari_dip_deblur import deblur

    image = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    start = time.perf_counter()
    deblur(image, kernel, preset=preset, iterations=iterations, device=device, seed=seed,
           **overrides)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="selfdeblur")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--kernel", type=int, default=27)
    parser.add_argument("--size", type=int, default=255)
    parser.add_argument("--processes", type=int, nargs="+", default=[1])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], help="overrides key=value")
    args = parser.parse_args()
    import ast

    overrides = {k: ast.literal_eval(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    ctx = mp.get_context("spawn")
    for n in args.processes:
        jobs = [(args.preset, args.iterations, args.kernel, args.size, args.device, overrides, i)
                for i in range(n)]
        start = time.perf_counter()
        with ctx.Pool(n) as pool:
            per_run = pool.map(_one_run, jobs)
        wall = time.perf_counter() - start
        print(json.dumps({
            "preset": args.preset, "overrides": overrides, "processes": n,
            "iterations": args.iterations, "size": args.size, "kernel": args.kernel,
            "wall_s": round(wall, 2), "per_run_s": [round(t, 2) for t in per_run],
            "s_per_iteration_per_run": round(float(np.mean(per_run)) / args.iterations, 4),
            "iterations_per_s_total": round(n * args.iterations / wall, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
