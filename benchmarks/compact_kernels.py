"""A loss schedule on two compact kernels, where a kernel spreading prior can do harm.

The Levin kernels are spread out (energy ``sum(k^2)`` 0.030-0.051), so a prior that spreads
the kernel can gain there and still ruin a compact blur, such as a microscope's PSF or a
short shake. This runs ``fast`` with a kernel energy prior of the given weight (in its
second phase, from 20 % of the run to ``--prior-end``, then MAE + (1 - SSIM) alone) on
the two synthetic cases the project checks by hand, and prints the PSNR gain, the kernel's
normalised cross-correlation with the truth and its energy against the true kernel's:

- ``test96``: the test suite's end-to-end case (96 px photo, a 7.8 px motion blur in a
  13 px kernel, energy 0.19; 500 iterations, 32 channels, 4 levels, ``fast``'s two
  starts: the settings of
  ``tests/test_api.py::test_end_to_end_deblurring_sharpens_and_finds_the_kernel``);
- ``demo128``: the README's demo (128 px photo, 15 px kernel, energy 0.11; the settings of
  ``dip-deblur demo``).

Both are seeded, so a rerun gives the same figures on the same machine.

    python benchmarks/compact_kernels.py --kernel-energy 0.03 --prior-end 0.6 \\
        --out benchmarks/results/experiments/compact-kernels.jsonl

Without ``--kernel-energy``, ``fast``'s own phases run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _phases(weight: float, prior_end: float) -> list[dict]:
    """MAE, then MAE + (1 - SSIM) + the prior from 20 %, the prior dropped at ``prior_end``."""
    with_prior = {"start": 0.2, "terms": {"mae": 1.0, "ssim": 1.0, "kernel_energy": weight}}
    phases = [{"start": 0.0, "terms": {"mae": 1.0}}, with_prior]
    if prior_end < 1:
        phases.append({"start": prior_end, "terms": {"mae": 1.0, "ssim": 1.0}})
    return phases


def main(argv: list[str] | None = None) -> int:
    from napari_dip_deblur import deblur
    from napari_dip_deblur.cli import DEMO_KERNEL, DEMO_SETTINGS, DEMO_SIZE
    from napari_dip_deblur.metrics import kernel_error, levin_score
    from napari_dip_deblur.samples import blurred_photo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel-energy", type=float, default=None, metavar="W",
                        help="the prior's weight (default: fast's own phases)")
    parser.add_argument("--prior-end", type=float, default=1.0, metavar="F",
                        help="run fraction where the prior ends (default 1: never)")
    parser.add_argument("--out", type=Path, default=None, help="append a JSON line per case")
    args = parser.parse_args(argv)
    phases = None if args.kernel_energy is None else _phases(args.kernel_energy, args.prior_end)
    extra = {"phases": phases} if phases else {}

    cases = [
        ("test96", blurred_photo(96, 13, blur_length=7.8), 13,
         {"preset": "fast", "iterations": 500, "channels": 32, "levels": 4, "seed": 0}),
        ("demo128", blurred_photo(DEMO_SIZE, DEMO_KERNEL), DEMO_KERNEL,
         {**DEMO_SETTINGS, "seed": 0}),
    ]
    for name, sample, size, settings in cases:
        started = time.perf_counter()
        result = deblur(sample.blurry, size, **settings, **extra)
        seconds = time.perf_counter() - started
        before = levin_score(sample.blurry * 255, sample.sharp * 255).psnr
        after = levin_score(np.clip(result.image, 0, 1) * 255, sample.sharp * 255).psnr
        row = {"case": name, "phases": phases, "psnr_blurry": before, "psnr": after,
               "kernel_ncc": kernel_error(result.kernel, sample.kernel).ncc,
               "kernel_energy": float((result.kernel ** 2).sum()),
               "true_kernel_energy": float((sample.kernel ** 2).sum()), "seconds": seconds}
        print(f"{name}: {before:.2f} -> {after:.2f} dB, kernel NCC {row['kernel_ncc']:.3f}, "
              f"energy {row['kernel_energy']:.3f} (true {row['true_kernel_energy']:.3f}), "
              f"{seconds:.0f} s", flush=True)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
