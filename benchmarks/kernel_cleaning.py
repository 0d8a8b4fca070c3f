"""Experiment (issue 6): which estimated kernels should be cleaned before deconvolving?

`restore` removes a blind estimate's noise floor and centres it before the non-blind step;
plain `deblur` deconvolves with the raw estimate. The raw one ruins a run with an oversized
kernel (a floor spread over many empty pixels); cleaning costs a little at the right size.
This script replays the final deconvolution of finished runs with each variant of the
kernel, without running a network (seconds per image):

- ``raw``: the estimate as it is (what `deblur` did; reproduces the saved PSNR);
- ``centred``: moved so its centre of mass is on the middle pixel, same array size
  (:func:`napari_dip_deblur.kernel_size.deconvolution_kernel` with ``clean=False``);
- ``cleaned``: noise floor removed, then centred (``clean=True``; what `restore` did);
- ``gated``: centred, and cleaned only where
  :func:`napari_dip_deblur.kernel_size.needs_cleaning` finds the estimate oversized
  (``clean="auto"``: what `deblur` and `restore` do now).

Inputs: result folders of ``benchmarks/levin.py`` (``<case>_seed0_kernel.npy``) and
``benchmarks/results/experiments/oversize-kernels``: the raw estimates of the oversize study's
runs (``benchmarks/real_inputs.py --study oversize``, 4 images at their true size and 14 px
larger), saved at commit c98caae, before `deblur` returned the prepared kernel.

    python benchmarks/kernel_cleaning.py --levin benchmarks/results/cpu-fast \\
        --oversize benchmarks/results/experiments/oversize-kernels \\
        --out benchmarks/results/experiments/kernel_cleaning.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from napari_dip_deblur.kernel_size import deconvolution_kernel, kernel_support, needs_cleaning
from napari_dip_deblur.levin import load_levin
from napari_dip_deblur.metrics import levin_score
from napari_dip_deblur.nonblind import deconvolve


def _score(blurry: np.ndarray, kernel: np.ndarray, sharp: np.ndarray) -> float:
    # As the runs did it: `deconvolve` reads the input's range from the array it was given.
    restored = deconvolve(blurry, kernel, weight=1e-4)
    return levin_score(np.clip(np.round(restored), 0, 255), sharp).psnr


def _row(source: str, case, kernel: np.ndarray, blurry: np.ndarray) -> dict:
    support = kernel_support(kernel)
    gate = needs_cleaning(kernel)
    raw_psnr = _score(blurry, kernel, case.sharp)
    centred_psnr = _score(blurry, deconvolution_kernel(kernel, clean=False), case.sharp)
    cleaned_psnr = _score(blurry, deconvolution_kernel(kernel, clean=True), case.sharp)
    return {"source": source, "case": case.name, "true_size": case.kernel_size,
            "kernel_size": kernel.shape[0], "support": list(support.shape),
            "touches_border": support.touches_border, "cleaned_by_gate": gate,
            "raw": raw_psnr, "centred": centred_psnr, "cleaned": cleaned_psnr,
            "gated": cleaned_psnr if gate else centred_psnr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levin", type=Path, nargs="*", default=[])
    parser.add_argument("--oversize", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cases = {c.name: c for c in load_levin()}
    rows = []
    for folder in args.levin:
        for path in sorted(folder.glob("*_seed0_kernel.npy")):
            case = cases[path.name.removesuffix("_seed0_kernel.npy")]
            # benchmarks/levin.py passes 8-bit data, the oversize study floats
            rows.append(_row(folder.name, case, np.load(path), case.blurry.astype(np.uint8)))
            print(json.dumps(rows[-1]), flush=True)
    if args.oversize:
        for path in sorted(args.oversize.glob("oversize_*_kernel.npy")):
            match = re.match(r"oversize_(im\d_kernel\d)_k(\d+)", path.name)
            case = cases[match.group(1)]
            rows.append(_row("oversize", case, np.load(path), case.blurry))
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for source in dict.fromkeys(r["source"] for r in rows):
        group = [r for r in rows if r["source"] == source]
        summary[source] = {"n": len(group), "cleaned_by_gate": sum(r["cleaned_by_gate"]
                                                                   for r in group),
                           **{v: float(np.mean([r[v] for r in group]))
                              for v in ("raw", "centred", "cleaned", "gated")}}
        print(source, summary[source])
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
