"""Offline, on stored Levin runs: ways to pool two finished candidates (issue 5).

For each pair of stored runs of ``benchmarks/levin.py`` (the 32 images each), per image:

- ``mean``: the pair's mean PSNR (what one run gives on average);
- ``sparsity``: the result with the lower gradient sparsity (what ``Settings.starts`` keeps);
- ``average``: the average of the two restored images (their 8-bit PNGs), scored anew;
- ``likelihood``: the result whose kernel has the higher Gaussian marginal likelihood
  ``p(y | k)`` (``--likelihood``; slower): gradients of the sharp image taken as white
  Gaussian with a variance profiled out, the input's noise level from
  ``noise.estimate_noise_level``, in the Fourier domain on a tapered window (the MAP-k
  criterion of Levin et al., CVPR 2009, with the simplest prior). The kernels are the
  saved ones, cropped to the kernel size as ``levin.py`` saves them;
- ``oracle``: the better of the two, known from the truth.

    OUT=benchmarks/results/experiments/start-choice
    python benchmarks/candidate_pooling.py --out $OUT/pooling.json
    python benchmarks/candidate_pooling.py --likelihood --out $OUT/pooling-likelihood.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "experiments"
# label: (folder, seed). The crop preset (`fast` since 2026-11-26 evening, itself the
# sharper of two starts) at three seeds, and the whole-image 48-channel runs.
RUNS = {
    "crop seed 0": ("fast-crop176-starts2", 0),
    "crop seed 1": ("fast-crop176-starts2-seed1", 1),
    "crop seed 2": ("fast-crop176-starts2-seed2", 2),
    "whole contiguous seed 0": ("fast-ch48-440", 0),
    "whole contiguous seed 1": ("fast48-seed1", 1),
    "whole channels-last seed 0": ("fast-cl-440", 0),
    "whole channels-last 480 its seed 0": ("fast-cl-480", 0),
}


def _taper(shape: tuple[int, int], edge: int) -> np.ndarray:
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(edge) + 0.5) / edge)
    sides = []
    for n in shape:
        side = np.ones(n)
        side[:edge], side[-edge:] = ramp, ramp[::-1]
        sides.append(side)
    return np.outer(*sides)


def negative_log_likelihood(blurry: np.ndarray, kernel: np.ndarray, noise: float,
                            edge: int = 24) -> float:
    """``-log p(y | k)`` per frequency (up to a constant) under a white Gaussian prior on
    the sharp image's gradients, its variance profiled over a log grid."""
    shape = blurry.shape
    k2 = np.abs(np.fft.fft2(kernel / kernel.sum(), shape)) ** 2
    window = _taper(shape, edge)
    spectra = []
    for axis in (0, 1):
        step = np.zeros(shape)
        step[0, 0] = 1.0
        step[(-1, 0) if axis == 0 else (0, -1)] = -1.0
        d2 = np.abs(np.fft.fft2(step)) ** 2
        gradient = np.real(np.fft.ifft2(np.fft.fft2(blurry) * np.fft.fft2(step)))
        power = np.abs(np.fft.fft2((gradient - gradient.mean()) * window)) ** 2
        spectra.append((power / (window ** 2).sum(), d2))
    best = np.inf
    for variance in np.logspace(-6, -1, 61):
        total = 0.0
        for power, d2 in spectra:
            model = variance * k2 + noise ** 2 * d2 + 1e-12
            total += float(np.mean(power / model + np.log(model)))
        best = min(best, total)
    return best


def main(argv: list[str] | None = None) -> int:
    from skimage.io import imread

    from napari_dip_deblur.levin import load_levin
    from napari_dip_deblur.metrics import levin_score
    from napari_dip_deblur.noise import NOISE_LEVEL_FLOOR, estimate_noise_level
    from napari_dip_deblur.sharpness import gradient_sparsity

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--likelihood", action="store_true",
                        help="also pick by the Gaussian marginal likelihood of the kernel")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    cases = list(load_levin())
    table: dict[str, dict[str, dict]] = {label: {} for label in RUNS}
    for case in cases:
        margin = (case.kernel.shape[0] - 1) // 2
        noise = max(estimate_noise_level(case.blurry / 255.0), NOISE_LEVEL_FLOOR)
        for label, (folder, seed) in RUNS.items():
            stem = RESULTS / folder / f"{case.name}_seed{seed}"
            image = imread(f"{stem}_image.png").astype(np.float64)
            entry = {"psnr": json.loads(Path(f"{stem}.json").read_text())["psnr"],
                     "sparsity": gradient_sparsity(image, margin=margin), "image": image}
            if args.likelihood:
                entry["nll"] = negative_log_likelihood(case.blurry / 255.0,
                                                       np.load(f"{stem}_kernel.npy"), noise)
            table[label][case.name] = entry
    pairs = []
    for a, b in itertools.combinations(RUNS, 2):
        rows = {"mean": [], "sparsity": [], "average": [], "oracle": []}
        if args.likelihood:
            rows["likelihood"] = []
        for case in cases:
            x, y = table[a][case.name], table[b][case.name]
            rows["mean"].append((x["psnr"] + y["psnr"]) / 2)
            rows["sparsity"].append(min(x, y, key=lambda e: e["sparsity"])["psnr"])
            rows["average"].append(levin_score((x["image"] + y["image"]) / 2,
                                               case.sharp).psnr)
            rows["oracle"].append(max(x["psnr"], y["psnr"]))
            if args.likelihood:
                rows["likelihood"].append(min(x, y, key=lambda e: e["nll"])["psnr"])
        means = {k: float(np.mean(v)) for k, v in rows.items()}
        pairs.append({"runs": [a, b], **means})
        print(f"{a} | {b}: " + ", ".join(f"{k} {v:.2f}" for k, v in means.items()), flush=True)
    kinds = [k for k in pairs[0] if k != "runs"]
    overall = {k: float(np.mean([p[k] for p in pairs])) for k in kinds}
    print("over the pairs: " + ", ".join(f"{k} {v:.3f}" for k, v in overall.items()))
    if args.out:
        args.out.write_text(json.dumps({"runs": RUNS, "mean_over_pairs": overall,
                                        "pairs": pairs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
