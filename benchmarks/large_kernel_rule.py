"""Experiment (issue 5): a faster kernel learning rate for large kernels only, from two runs.

The `fast` preset (kernel lr 3e-4) and the same preset with kernel lr 1e-3 were both run on
all 32 Levin images with seed 0 (``benchmarks/results/cpu-fast`` and
``benchmarks/results/experiments/fast-klr1e-3``). Runs are deterministic, so the rule "1e-3
when the kernel's larger side is at least S px" gives, image by image, the run of one or
the other folder. This script scores that rule for several S from the replay of the final
deconvolution as `deblur` now does it (the *gated* column of ``benchmarks/kernel_cleaning.py``):

    python benchmarks/kernel_cleaning.py --levin benchmarks/results/cpu-fast \\
        benchmarks/results/experiments/fast-klr1e-3 \\
        --out benchmarks/results/experiments/kernel_cleaning_cpu-fast_klr1e-3.json
    python benchmarks/large_kernel_rule.py \\
        benchmarks/results/experiments/kernel_cleaning_cpu-fast_klr1e-3.json

S was chosen on these same images (there is no other set with true kernels here): the
figures are in-sample.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("replay", type=Path)
    parser.add_argument("--slow", default="cpu-fast")
    parser.add_argument("--faster", default="fast-klr1e-3")
    args = parser.parse_args()
    rows = json.loads(args.replay.read_text())["rows"]
    slow = {r["case"]: r for r in rows if r["source"] == args.slow}
    faster = {r["case"]: r for r in rows if r["source"] == args.faster}
    print("| rule | mean PSNR (dB) | lowest image (dB) |")
    print("|---|---|---|")
    for label, pick in [(f"always {args.slow}", lambda r: False),
                        *[(f"faster from {s} px", lambda r, s=s: r["kernel_size"] >= s)
                          for s in (15, 17, 19, 21, 23, 27)],
                        (f"always {args.faster}", lambda r: True)]:
        scores = [(faster[c] if pick(slow[c]) else slow[c])["gated"] for c in slow]
        print(f"| {label} | {np.mean(scores):.2f} | {min(scores):.2f} |")
    print("\nPer kernel size, mean PSNR (dB): slow / faster")
    for size in sorted({r["kernel_size"] for r in slow.values()}):
        cases = [c for c in slow if slow[c]["kernel_size"] == size]
        print(f"{size} px ({len(cases)} images): "
              f"{np.mean([slow[c]['gated'] for c in cases]):.2f} / "
              f"{np.mean([faster[c]['gated'] for c in cases]):.2f}")


if __name__ == "__main__":
    main()
