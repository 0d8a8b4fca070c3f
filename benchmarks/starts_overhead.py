"""Does racing starts cost more than its extra iterations? (Settings.starts)

Times, on one Levin image and alternating to share the machine's drift, ``fast`` with one
start for N iterations against ``fast`` with ``--starts`` starts whose iterations plus trials
add up to N, and prints seconds per iteration of each. Usage::

    python benchmarks/starts_overhead.py --case im2_kernel1 --iterations 165 --repeats 2 \\
        --out benchmarks/results/experiments/start-choice/overhead.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from napari_dip_deblur import deblur
    from napari_dip_deblur.levin import load_levin
    from napari_dip_deblur.presets import resolve_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="im2_kernel1")
    parser.add_argument("--iterations", type=int, default=165,
                        help="iterations of the two-start run (its trial comes on top)")
    parser.add_argument("--starts", type=int, default=2)
    parser.add_argument("--start-trial", type=float, default=0.36)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default=None)
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    case = next(c for c in load_levin(args.data) if c.name == args.case)
    raced = resolve_settings("fast", args.iterations, starts=args.starts,
                             start_trial=args.start_trial)
    total = raced.run_iterations()  # as the api counts it
    runs = {"one start": {"starts": 1, "iterations": total, "retry_mae_ratio": None},
            "two starts": {"starts": args.starts, "start_trial": args.start_trial,
                           "iterations": args.iterations, "retry_mae_ratio": None}}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, overrides in runs.items():
            started = time.perf_counter()
            result = deblur(case.blurry.astype(np.uint8), case.kernel_size, preset="fast",
                            device="cpu", **overrides)
            seconds = time.perf_counter() - started
            assert result.iterations == total
            times[name].append(seconds / total)
            print(f"{name}: {seconds:.1f} s for {total} iterations "
                  f"({seconds / total:.4f} s each)", flush=True)
    ratio = np.median(times["two starts"]) / np.median(times["one start"])
    print(f"two starts / one start, per iteration (medians): {ratio:.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "command": "python benchmarks/starts_overhead.py " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": platform.platform(), "case": args.case, "iterations_in_all": total,
            "seconds_per_iteration": times, "ratio": float(ratio)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
