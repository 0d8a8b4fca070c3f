"""Variants of the microscopy stopping rule, measured on the fluorescence development set.

For each of the 18 cases of :func:`napari_dip_deblur.devsets.fluorescence.fluorescence_cases`
it records, once, the PSNR of Richardson-Lucy after each of 400 iterations (with the true PSF
and with the PSF that the blind fit finds) and the held-out score curves of Poisson thinning
(fraction 0.5 with three coins, fraction 0.75 with one; Poisson deviance and squared error).
Each variant of the rule is then a mapping from those curves to an iteration count, read off
the PSNR curves. Prints, per variant, the mean PSNR with the true PSF and blind, and the
smallest gain over the input. Results and choice: ``docs/decisions.md`` (Microscopy).

Example (about 6 minutes on a 2-core CPU)::

    python benchmarks/microscopy_stopping.py
"""

from __future__ import annotations

import numpy as np

from napari_dip_deblur.devsets.fluorescence import affine_psnr, fluorescence_cases
from napari_dip_deblur.microscopy.background import estimate_background
from napari_dip_deblur.microscopy.blind import estimate_psf_model
from napari_dip_deblur.microscopy.noise_model import estimate_noise_model
from napari_dip_deblur.microscopy.richardson_lucy import rl_iterates
from napari_dip_deblur.microscopy.stopping import to_photons

ITERATIONS = 400
COINS = ((0.5, 0), (0.5, 1), (0.5, 2), (0.75, 0))


def psnr_curve(counts, psf, background, truth) -> np.ndarray:
    scores = []
    for i, (obj, _) in enumerate(rl_iterates(counts, psf, background)):
        scores.append(affine_psnr(obj + background, truth))
        if i + 1 >= ITERATIONS:
            break
    return np.array(scores)


def held_out_curves(counts, psf, background, noise, fraction, seed) -> list[np.ndarray]:
    """For (train on ``fraction``, test on the rest) and the reverse: (deviance, sq) curves."""
    photons, gain, offset = to_photons(counts, noise)
    background = max((background - offset) / gain, 1e-3)
    first = np.random.default_rng(seed).binomial(photons, fraction)
    curves = []
    for train, test, p in ((first, photons - first, fraction),
                           (photons - first, first, 1 - fraction)):
        deviance, squared = [], []
        for i, (_, model) in enumerate(rl_iterates(train, psf, background * p)):
            predicted = model * (1 - p) / p
            deviance.append(float(np.sum(predicted - test * np.log(predicted))))
            squared.append(float(np.sum((predicted - test) ** 2)))
            if i + 1 >= ITERATIONS:
                break
        curves.append(np.array([deviance, squared]))
    return curves


def best(curve: np.ndarray, most: int, tolerance: float) -> int:
    """The last iteration (1-based) after the minimum whose score is within ``tolerance``."""
    curve = curve[:most]
    i = int(np.argmin(curve))
    while i + 1 < len(curve) and curve[i + 1] <= curve.min() + tolerance:
        i += 1
    return i + 1


def iterations(row, psf, *, fraction=0.5, seeds=(0,), factor=2.0, score=0, most=200,
               tolerance=0.0, sides=(0, 1)) -> int:
    counts = [best(row["cv", psf, fraction, s][side][score], most, tolerance)
              for s in seeds for side in sides]
    return max(1, min(ITERATIONS, round(factor * float(np.mean(counts)))))


def measure() -> list[dict]:
    rows = []
    for case in fluorescence_cases():
        counts, truth = case.blurry, case.sharp
        background = estimate_background(counts)
        noise = estimate_noise_model(counts)
        fitted = estimate_psf_model(counts - background).model.render()
        row = {"name": case.name, "input": affine_psnr(counts, truth)}
        for psf, kernel in (("true", case.psf), ("blind", fitted)):
            row["psnr", psf] = psnr_curve(counts, kernel, background, truth)
            for fraction, seed in COINS:
                row["cv", psf, fraction, seed] = held_out_curves(counts, kernel, background,
                                                                 noise, fraction, seed)
        rows.append(row)
        print(case.name, flush=True)
    return rows


VARIANTS = {
    **{f"halves, factor {f}": {"factor": f} for f in (1.5, 2.0, 2.5, 3.0, 4.0, 6.0)},
    **{f"halves, 3 coins, factor {f}": {"factor": f, "seeds": (0, 1, 2)} for f in (2.0, 3.0)},
    **{f"halves, squared error, factor {f}": {"factor": f, "score": 1} for f in (2.0, 3.0)},
    **{f"halves, tolerance {t}, factor 2": {"tolerance": t, "most": ITERATIONS}
       for t in (1.0, 5.0)},
    **{f"train 0.75, factor {f:.2f}": {"fraction": 0.75, "sides": (0,), "factor": f,
                                        "most": ITERATIONS} for f in (4 / 3, 1.5, 2.0)},
    **{f"train 0.25, factor {f}": {"fraction": 0.75, "sides": (1,), "factor": f,
                                    "most": ITERATIONS} for f in (4.0, 6.0)},
}


def main() -> None:
    rows = measure()
    print(f"input {np.mean([r['input'] for r in rows]):.2f}; oracle (true PSF) "
          f"{np.mean([r['psnr', 'true'].max() for r in rows]):.2f}; oracle (blind PSF) "
          f"{np.mean([r['psnr', 'blind'].max() for r in rows]):.2f}")
    print("| variant | true PSF | blind | min gain blind / true |")
    for name, options in VARIANTS.items():
        mean, low = {}, {}
        for psf in ("true", "blind"):
            scores = [r["psnr", psf][iterations(r, psf, **options) - 1] for r in rows]
            mean[psf] = np.mean(scores)
            low[psf] = min(s - r["input"] for s, r in zip(scores, rows, strict=True))
        print(f"| {name} | {mean['true']:.2f} | {mean['blind']:.2f} | "
              f"{low['blind']:+.2f} / {low['true']:+.2f} |")
    print("| case | oracle its (true PSF) | halves' best (3 coins x 2 halves) |")
    for r in rows:
        halves = [best(r["cv", "true", 0.5, s][side][0], ITERATIONS, 0.0)
                  for s in (0, 1, 2) for side in (0, 1)]
        print(f"| {r['name']} | {int(np.argmax(r['psnr', 'true'])) + 1} | {halves} |")


if __name__ == "__main__":
    main()
