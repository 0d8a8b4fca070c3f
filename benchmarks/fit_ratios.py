"""Experiment (issue 5): the fit check's measure on stored Levin runs.

The fit check (``Settings.retry_mae_ratio``) compares a run's final data misfit (its last
``mae`` term) with the input's noise level
(:func:`napari_dip_deblur.noise.estimate_noise_level`, floored at ``NOISE_LEVEL_FLOOR``),
as :func:`napari_dip_deblur.api.fit_ratio` does. This script computes that ratio for every
record of ``benchmarks/levin.py`` in the folders given (runs made before the check existed
included: the final ``mae`` is in each record), with the input read as ``levin.py`` reads it
(8-bit, divided by 255)::

    python benchmarks/fit_ratios.py benchmarks/results/experiments/fast-ch48-440 \\
        benchmarks/results/cpu-fast --threshold 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_dip_deblur.api import fit_ratio
from napari_dip_deblur.levin import load_levin
from napari_dip_deblur.noise import estimate_noise_level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--threshold", type=float, default=3.0,
                        help="count the records whose ratio is above this")
    args = parser.parse_args()
    noise = {c.name: estimate_noise_level(c.blurry.astype(np.float64) / 255)
             for c in load_levin()}
    for folder in args.folders:
        rows = []
        for path in sorted(folder.glob("*.json")):
            record = json.loads(path.read_text())
            if "final_terms" not in record or "mae" not in record["final_terms"]:
                continue
            ratio = fit_ratio(record["final_terms"]["mae"], noise[record["case"]])
            rows.append((ratio, record["case"], record["psnr"]))
        if not rows:
            print(f"{folder}: no records with a final mae")
            continue
        ratios = np.array([r[0] for r in rows])
        low, high = min(rows), max(rows)
        print(f"{folder}: {len(rows)} runs, fit ratio {low[0]:.2f} ({low[1]}) to "
              f"{high[0]:.2f} ({high[1]}), median {np.median(ratios):.2f}; "
              f"{int((ratios > args.threshold).sum())} above {args.threshold:g}")
        for ratio, case, psnr in sorted(rows, reverse=True)[:3]:
            print(f"  {case}: {ratio:.2f} ({psnr:.2f} dB)")


if __name__ == "__main__":
    main()
