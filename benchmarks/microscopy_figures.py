"""Pictures for docs/microscopy.md: what the microscopy mode does on dev-set cases.

1. ``docs/images/microscopy_examples.png``: for three cases of the synthetic fluorescence
   dev set, the recorded counts, ours (blind), RL with the true PSF (our stopping rule) and
   the sharp truth, each with its PSNR after the best affine intensity match.
2. ``docs/images/microscopy_psfs.png``: the true PSF against the fitted one (profiles
   through the centre) on the same cases plus a strongly defocused one.

Example (about 30 s on a 2-core CPU)::

    python benchmarks/microscopy_figures.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from napari_dip_deblur.devsets.fluorescence import affine_psnr, make_case
from napari_dip_deblur.microscopy import deconvolve_microscopy, psf_width

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
CASES = [("filaments", "gaussian-2.2", 200, 1), ("beads", "airy-3.2", 1000, 100),
         ("cells", "defocus-0.6", 1000, 204)]
DEFOCUSED = ("beads", "defocus-0.9", 1000, 105)


def examples() -> list[tuple]:
    rows = []
    for scene, psf, peak, seed in CASES:
        case = make_case(scene, psf, peak, seed=seed)
        ours = deconvolve_microscopy(case.blurry)
        known = deconvolve_microscopy(case.blurry, psf=case.psf)
        rows.append((case, ours, known))
    return rows


def plot_examples(rows: list[tuple], path: Path) -> None:
    fig, axes = plt.subplots(len(rows), 4, figsize=(8.4, 2.3 * len(rows)), dpi=80)
    for row, (case, ours, known) in zip(axes, rows, strict=True):
        lo, hi = np.percentile(case.sharp, [0.5, 99.8])
        panels = [("recorded counts", case.blurry), ("ours, blind", ours.image),
                  ("RL, true PSF", known.image), ("truth", case.sharp)]
        for ax, (title, image) in zip(row, panels, strict=True):
            score = "" if title == "truth" else f"\n{affine_psnr(image, case.sharp):.1f} dB"
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{title}{score}", fontsize=8)
            ax.set_axis_off()
        row[0].text(-8, 64, case.name, rotation=90, va="center", ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_psfs(rows: list[tuple], path: Path) -> None:
    fig, axes = plt.subplots(1, len(rows), figsize=(2.4 * len(rows), 2.2), dpi=80)
    for ax, (case, ours, _) in zip(axes, rows, strict=True):
        true = case.psf[case.psf.shape[0] // 2]
        fitted = ours.model.render(case.psf.shape[0])
        fitted = fitted[fitted.shape[0] // 2]
        x = np.arange(len(true)) - len(true) // 2
        ax.plot(x, true / true.max(), "k-", label="true")
        ax.plot(x, fitted / fitted.max(), "C1--", label=f"fitted ({ours.model.family})")
        error = 100 * (psf_width(ours.model.render(31)) / psf_width(case.psf) - 1)
        ax.set_title(f"{case.metadata['psf']}\nFWHM error {error:+.0f} %", fontsize=8)
        ax.set_xlim(-12, 12)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    rows = examples()
    plot_examples(rows, IMAGES / "microscopy_examples.png")
    scene, psf, peak, seed = DEFOCUSED
    case = make_case(scene, psf, peak, seed=seed)
    plot_psfs([*rows, (case, deconvolve_microscopy(case.blurry), None)],
              IMAGES / "microscopy_psfs.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
