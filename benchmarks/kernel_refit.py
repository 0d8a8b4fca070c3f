"""Experiment (issue 5): re-estimate the kernel from a finished run's restored image.

Classic alternating blind deconvolution refits the kernel to the current sharp estimate by
least squares. This script tries it as a cheap last step after a Levin benchmark run: for
each case of a result folder of ``benchmarks/levin.py`` it fits a non-negative kernel to
the saved restored image in the gradient domain (Tikhonov weight ``gamma`` relative to the
mean diagonal of the normal matrix, support grown by ``--grow`` px per side), deconvolves
the blurry input again with it (``nonblind.deconvolve``, weight 1e-4) and scores both by
the Levin protocol. Seconds per image; no network is run.

    python benchmarks/kernel_refit.py benchmarks/results/cpu-fast --gamma 1e-2 --grow 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.io import imread

from napari_dip_deblur.levin import load_levin
from napari_dip_deblur.metrics import kernel_error, levin_score
from napari_dip_deblur.nonblind import deconvolve


def _gradients(a: np.ndarray) -> list[np.ndarray]:
    return [a[:, 1:] - a[:, :-1], a[1:, :] - a[:-1, :]]


def refit_kernel(sharp: np.ndarray, blurry: np.ndarray, size: int, gamma: float,
                 steps: int = 300) -> np.ndarray:
    """Non-negative least-squares kernel with ``conv(sharp, k, 'valid') ~ blurry`` (centred)."""
    rows, rhs = [], []
    c = (size - 1) // 2
    for gx, gy in zip(_gradients(sharp), _gradients(blurry), strict=True):
        patches = F.unfold(torch.from_numpy(gx)[None, None], size)[0]
        hh, ww = gx.shape[0] - size + 1, gx.shape[1] - size + 1
        rows.append(patches)
        rhs.append(torch.from_numpy(np.ascontiguousarray(gy[c:c + hh, c:c + ww])).reshape(-1))
    x, b = torch.cat(rows, 1), torch.cat(rhs)
    normal, right = x @ x.T, x @ b
    n = normal.shape[0]
    normal = normal + gamma * torch.trace(normal) / n * torch.eye(n, dtype=normal.dtype)
    f = torch.linalg.solve(normal, right).clamp_min(0)
    step = 1 / torch.linalg.eigvalsh(normal)[-1]
    for _ in range(steps):  # projected gradient: k >= 0
        f = (f - step * (normal @ f - right)).clamp_min(0)
    k = f.reshape(size, size).flip(0, 1).numpy()  # correlation -> convolution orientation
    return k / k.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--gamma", type=float, default=1e-2)
    parser.add_argument("--grow", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="JSON summary to write")
    args = parser.parse_args()
    rows = []
    for case in load_levin():
        record = args.results / f"{case.name}_seed0.json"
        if not record.exists():
            continue
        start = np.load(args.results / f"{case.name}_seed0_kernel.npy")
        restored = imread(args.results / f"{case.name}_seed0_image.png").astype(np.float64) / 255
        blurry = case.blurry / 255
        kernel = refit_kernel(restored, blurry, start.shape[0] + 2 * args.grow, args.gamma)
        again = np.clip(deconvolve(blurry, kernel, weight=1e-4), 0, 1)
        row = {"case": case.name, "psnr_before": json.loads(record.read_text())["psnr"],
               "psnr_after": levin_score(np.round(again * 255), case.sharp).psnr,
               "ncc_before": kernel_error(start, case.kernel).ncc,
               "ncc_after": kernel_error(kernel, case.kernel).ncc}
        rows.append(row)
        print(f"{case.name}: {row['psnr_before']:.2f} -> {row['psnr_after']:.2f} dB, kernel NCC "
              f"{row['ncc_before']:.3f} -> {row['ncc_after']:.3f}", flush=True)
    before = float(np.mean([r["psnr_before"] for r in rows]))
    after = float(np.mean([r["psnr_after"] for r in rows]))
    print(f"mean over {len(rows)}: {before:.3f} -> {after:.3f} dB")
    if args.out:
        args.out.write_text(json.dumps({"results": str(args.results), "gamma": args.gamma,
                                        "grow": args.grow, "mean_before": before,
                                        "mean_after": after, "cases": rows}, indent=1))


if __name__ == "__main__":
    main()
