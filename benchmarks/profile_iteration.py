"""Where the time of one iteration goes: torch's profiler over a few iterations of a preset.

Runs the preset on one Levin image (``fast`` fits its crop), skips the first iterations
(warm-up), profiles the next ones and prints the operators by their own CPU time.

    python benchmarks/profile_iteration.py --case im2_kernel3 --preset fast --skip 10 --steps 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="im2_kernel3", help="Levin case, e.g. im2_kernel3")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--skip", type=int, default=10, help="warm-up iterations, not profiled")
    parser.add_argument("--steps", type=int, default=20, help="iterations profiled")
    parser.add_argument("--rows", type=int, default=15, help="operators listed")
    parser.add_argument("--data", default=None, help="the Levin data folder")
    args = parser.parse_args()

    from torch.profiler import ProfilerActivity, profile

    from napari_dip_deblur import deblur_iter
    from napari_dip_deblur.levin import load_levin

    cases = {c.name: c for c in load_levin(args.data)}
    if args.case not in cases:
        parser.error(f"--case {args.case!r} is not a Levin case (im1_kernel1 .. im4_kernel8)")
    case = cases[args.case]
    # One start, so that every iteration profiled is one of the same run.
    snapshots = deblur_iter(case.blurry.astype(np.uint8), case.kernel_size, preset=args.preset,
                            seed=0, device="cpu", yield_every=1, starts=1)
    for _ in range(args.skip):
        next(snapshots)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            last = next(snapshots)
    seconds = (time.perf_counter() - started) / args.steps
    snapshots.close()
    print(f"{args.preset} on {args.case}, fitted {last.generator_image.shape}: "
          f"{seconds:.3f} s per iteration under the profiler")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
