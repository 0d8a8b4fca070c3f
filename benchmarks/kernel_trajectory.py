"""How a blind fit unfolds: the kernel's spread and the generator's PSNR every N iterations.

Made to see why the ``fast`` preset at 48 channels loses an oversized kernel (a Levin image
asked at a larger kernel size than its own), and whether a centred start
(``kernel_start_sigma``) prevents it. One run per call; rows are appended to a JSON-lines
file. Example (one Levin image, 17 px kernel, asked at 31 px)::

    python benchmarks/kernel_trajectory.py im4_kernel1 31 --seed 0 \
        --set channels=48 --set iterations=440 --set kernel_start_sigma=0.25

``KERNEL_SIZE`` may be ``levin``: the size the Levin protocol gives for that image.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np

from napari_dip_deblur import deblur_iter
from napari_dip_deblur.levin import load_levin
from napari_dip_deblur.metrics import levin_score
from real_inputs import _command, _machine  # the same provenance fields as its records

DEFAULT_OUT = Path(__file__).parent / "results" / "experiments" / "kernel-trajectories.jsonl"


def support(kernel: np.ndarray, fraction: float = 0.95) -> int:
    """Fewest pixels holding ``fraction`` of the kernel's mass."""
    values = np.sort(kernel.ravel())[::-1] / kernel.sum()
    return int(np.searchsorted(np.cumsum(values), fraction) + 1)


def extent(kernel: np.ndarray) -> tuple[int, int]:
    """Rows and columns whose sum exceeds 1 % of the largest row or column sum."""
    rows, cols = kernel.sum(1), kernel.sum(0)
    threshold = 0.01 * max(rows.max(), cols.max())
    return int((rows > threshold).sum()), int((cols > threshold).sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", help="a Levin case name, e.g. im4_kernel1")
    parser.add_argument("kernel_size", help="kernel size asked for, or 'levin'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--every", type=int, default=40)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    overrides = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    case = {c.name: c for c in load_levin()}[args.image]
    size = case.kernel_size if args.kernel_size == "levin" else int(args.kernel_size)
    start = time.perf_counter()
    rows = []
    for snap in deblur_iter(case.blurry, size, preset=args.preset, seed=args.seed,
                            device="cpu", yield_every=args.every, **overrides):
        generator = levin_score(np.clip(np.round(snap.generator_image), 0, 255), case.sharp)
        row = {"step": snap.step, "generator_psnr": round(generator.psnr, 2),
               "support95": support(snap.kernel), "extent": extent(snap.kernel),
               "kernel_max": round(float(snap.kernel.max()), 4),
               "mae": round(snap.terms.get("mae", float("nan")), 5)}
        if snap.done:
            final = levin_score(np.clip(np.round(snap.image), 0, 255), case.sharp)
            row["final_psnr"] = round(final.psnr, 2)
        rows.append(row)
        print(row, flush=True)
    true = case.kernel / case.kernel.sum()
    record = {"case": args.image, "kernel_size": size, "true_kernel_size": case.kernel.shape[0],
              "true_support95": support(true), "true_extent": extent(true),
              "seed": args.seed, "preset": args.preset, "overrides": overrides, "rows": rows,
              "seconds": round(time.perf_counter() - start, 1),
              "command": _command("benchmarks/kernel_trajectory.py"), **_machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
