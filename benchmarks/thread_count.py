"""How a run's result depends on torch's thread count and the generator's memory layout.

A thread count changes the order in which the CPU kernels sum (a channels-last BatchNorm,
for one, sums each channel in one running total per thread), so the same seed gives
another trajectory. This runs the test suite's end-to-end case (``test96``: a 96 px photo,
a 7.8 px motion blur in a 13 px kernel; 500 iterations, 32 channels, 4 levels, one start
of ``fast``; ``tests/test_api.py::test_end_to_end_deblurring_sharpens_and_finds_the_kernel``)
for every thread count, layout and seed given, and prints the PSNR of each run (the Levin
protocol's, on the 8-bit scale) and the mean per thread count and layout.

    python benchmarks/thread_count.py --threads 1 2 4 8 --layouts channels_last contiguous \\
        --seeds 0 1 2 3 4 --out benchmarks/results/experiments/thread-count.jsonl

Thread counts above the cores oversubscribe them: slower, but the arithmetic is that of the
thread count. Run it alone: the times are recorded too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch

    from napari_dip_deblur import deblur
    from napari_dip_deblur.metrics import levin_score
    from napari_dip_deblur.samples import blurred_photo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--layouts", nargs="+", default=["channels_last"],
                        choices=["channels_last", "contiguous"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=None, help="append a JSON line per run")
    args = parser.parse_args(argv)
    if min(args.threads) < 1:
        parser.error("--threads must be >= 1")

    sample = blurred_photo(96, 13, blur_length=7.8)
    before = levin_score(sample.blurry * 255, sample.sharp * 255).psnr
    settings = {"preset": "fast", "iterations": 500, "channels": 32, "levels": 4,
                "starts": 1, "device": "cpu"}
    print(f"test96: blurry input {before:.2f} dB")
    previous = torch.get_num_threads()
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for layout in args.layouts:
                scores = []
                for seed in args.seeds:
                    started = time.perf_counter()
                    result = deblur(sample.blurry, 13, seed=seed, memory_format=layout,
                                    **settings)
                    seconds = time.perf_counter() - started
                    psnr = levin_score(np.clip(result.image, 0, 1) * 255,
                                       sample.sharp * 255).psnr
                    scores.append(psnr)
                    row = {"case": "test96", "threads": threads, "memory_format": layout,
                           "seed": seed, "psnr_blurry": before, "psnr": psnr,
                           "seconds": seconds, "torch_version": torch.__version__}
                    if args.out is not None:
                        args.out.parent.mkdir(parents=True, exist_ok=True)
                        with args.out.open("a") as handle:
                            handle.write(json.dumps(row) + "\n")
                print(f"{threads} thread(s), {layout}: "
                      + " ".join(f"{s:.2f}" for s in scores)
                      + f"  mean {np.mean(scores):.2f} dB", flush=True)
    finally:
        torch.set_num_threads(previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
