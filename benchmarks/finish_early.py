"""When can a cancelled run be finished with the kernel it has? (``api.finish_early``)

Runs ``fast`` with one start on a bundled sample (scikit-image's camera, 255 x 255, blurred
by a 13 px motion kernel) and, every ``--every`` iterations, finishes the snapshot early:
does ``finish_early`` deconvolve (or keep the iterate, the kernel being too near its flat
start), and how far is each image from the sharp one (mean absolute error inside a 20 px
border, on the [0, 1] scale)?

    python benchmarks/finish_early.py --out benchmarks/results/experiments/finish-early.json
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch

    from napari_dip_deblur import deblur_iter, finish_early
    from napari_dip_deblur.samples import blurred_photo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    sample = blurred_photo(255, 13)
    inner = (slice(20, -20), slice(20, -20))

    def error(image: np.ndarray) -> float:
        return float(np.abs(image[inner] - sample.sharp[inner]).mean())

    rows = []
    print(f"blurry input: error {error(sample.blurry):.4f}")
    for snap in deblur_iter(sample.blurry, 15, preset="fast", starts=1, seed=args.seed,
                            device="cpu", yield_every=args.every):
        finished = finish_early(sample.blurry, snap)
        row = {"step": snap.step, "total": snap.total,
               "finished": finished.settings.get("finished_early", snap.done),
               "iterate_error": error(snap.image), "finished_error": error(finished.image),
               "kernel_peak_over_flat": float(snap.generator_kernel.max()
                                              * snap.generator_kernel.size)}
        rows.append(row)
        print(f"{row['step']:4d}/{row['total']}: finished {row['finished']!s:5}  error: "
              f"iterate {row['iterate_error']:.4f}, kept {row['finished_error']:.4f}  "
              f"(kernel peak {row['kernel_peak_over_flat']:.1f} x flat)", flush=True)
    if args.out:
        args.out.write_text(json.dumps({
            "command": "python benchmarks/finish_early.py"
                       + (f" --every {args.every}" if args.every != 20 else ""),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(), "torch": torch.__version__,
            "blurry_error": error(sample.blurry), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
