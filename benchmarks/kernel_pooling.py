"""Offline, on stored Levin runs: pool two finished candidates by averaging their kernels.

For each pair of the stored runs of ``candidate_pooling.RUNS`` and each Levin image, the
two saved kernels (cropped to the kernel size, as ``levin.py`` saves them) are aligned by
their cross-correlation (integer shifts up to 4 px), averaged, and the blurry input is
deconvolved with the average as ``fast``'s final step does (``deconvolution_kernel``, then
the hyper-Laplacian at weight 1e-4). Compared with each kernel alone, deconvolved the same
way, and with the sparser of the two results (what ``Settings.starts`` keeps); the cropped
kernels score below the runs' own results, so compare within this table only.

    python benchmarks/kernel_pooling.py \
        --out benchmarks/results/experiments/start-choice/kernel-pooling.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from candidate_pooling import RESULTS, RUNS


def _padded(kernel: np.ndarray, side: int) -> np.ndarray:
    out = np.zeros((side, side))
    h, w = kernel.shape
    out[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = kernel
    return out / out.sum()


def aligned_to(reference: np.ndarray, kernel: np.ndarray, reach: int = 4) -> np.ndarray:
    """``kernel`` rolled by the integer shift (up to ``reach``) that best matches
    ``reference`` (same shape; both padded so that nothing wraps)."""
    shifts = itertools.product(range(-reach, reach + 1), repeat=2)
    return max((np.roll(kernel, s, (0, 1)) for s in shifts),
               key=lambda moved: float((reference * moved).sum()))


def main(argv: list[str] | None = None) -> int:
    from napari_dip_deblur.kernel_size import deconvolution_kernel
    from napari_dip_deblur.levin import load_levin
    from napari_dip_deblur.metrics import levin_score
    from napari_dip_deblur.nonblind import deconvolve
    from napari_dip_deblur.sharpness import gradient_sparsity

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    rows = {"alone, pair mean": [], "sparser": [], "kernel average": [], "oracle": []}
    for case in load_levin():
        blurry = case.blurry.astype(np.uint8)  # as levin.py hands it to deblur_iter
        margin = (case.kernel.shape[0] - 1) // 2

        def scored(kernel: np.ndarray, case=case, blurry=blurry, margin=margin
                   ) -> tuple[float, float]:
            image = deconvolve(blurry, deconvolution_kernel(kernel, max_shape=blurry.shape),
                               weight=1e-4)
            image = np.clip(np.rint(image), 0, 255)
            return (levin_score(image.astype(np.uint8), case.sharp).psnr,
                    gradient_sparsity(image, margin=margin))

        kernels = {label: np.load(RESULTS / folder / f"{case.name}_seed{seed}_kernel.npy")
                   for label, (folder, seed) in RUNS.items()}
        alone = {label: scored(k) for label, k in kernels.items()}
        for a, b in itertools.combinations(RUNS, 2):
            side = max(kernels[a].shape + kernels[b].shape) + 8
            first = _padded(kernels[a], side)
            average = (first + aligned_to(first, _padded(kernels[b], side))) / 2
            rows["alone, pair mean"].append((alone[a][0] + alone[b][0]) / 2)
            rows["sparser"].append(min(alone[a], alone[b], key=lambda e: e[1])[0])
            rows["kernel average"].append(scored(average)[0])
            rows["oracle"].append(max(alone[a][0], alone[b][0]))
        print(case.name, flush=True)
    means = {k: float(np.mean(v)) for k, v in rows.items()}
    print("over the pairs and images: " + ", ".join(f"{k} {v:.2f}" for k, v in means.items()))
    if args.out:
        args.out.write_text(json.dumps({"runs": RUNS, "means": means}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
