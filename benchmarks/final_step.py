"""Redo the final deconvolution of stored Levin runs with other weights (issue 5).

A preset with ``final_deconvolution`` (``fast``) ends by deconvolving the input with the
kernel generator's estimate, made ready by ``kernel_size.deconvolution_kernel`` (centred,
its noise floor removed where it looks oversized). ``benchmarks/levin.py`` saves that
estimate as ``<case>_seed<s>_generator_kernel.npy`` (since 2026-11-26, night), so this step
can be redone exactly, for each weight of ``--weights``, and scored by the Levin protocol
(the 8-bit image, as ``levin.py`` scores it). No network is run: seconds per image. The
run's own weight must reproduce its stored PSNR; the script says where it does not.

``--kernels saved`` uses ``<case>_seed<s>_kernel.npy`` instead, for older runs: the kernel
as applied but cropped to the kernel size, which cuts the tails of an estimate that was
off centre (on `fast`'s seed-0 run it loses 0.6 dB at the same weight): an approximation,
for comparing weights only.

    python benchmarks/final_step.py benchmarks/results/experiments/fast-crop176-rawk \\
        --weights 1e-4 1.5e-4 2e-4 3e-4 --out benchmarks/results/experiments/final-step.json

``--write-weight W --write-to DIR`` also writes the runs of one folder as they are with
weight ``W`` into ``DIR``, as ``benchmarks/levin.py`` writes them (the record rescored, its
``settings.final_deconvolution_weight`` set to ``W`` and a ``final_step_replay`` entry
added; the restored PNG redone; the kernels copied): the runs a preset with that weight
gives, exactly, since the networks' part of each run does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from napari_dip_deblur.kernel_size import deconvolution_kernel
from napari_dip_deblur.levin import load_levin
from napari_dip_deblur.metrics import levin_score
from napari_dip_deblur.nonblind import deconvolve


def redo(blurry: np.ndarray, raw_kernel: np.ndarray, method: str, weight: float) -> np.ndarray:
    """The final step of ``deblur_iter`` with another weight (cleaned where
    ``needs_cleaning`` says so, as there: ``clean="auto"``)."""
    applied = deconvolution_kernel(raw_kernel, max_shape=blurry.shape)
    return deconvolve(blurry, applied, method=method, weight=weight)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+",
                        help="folders written by benchmarks/levin.py")
    parser.add_argument("--weights", type=float, nargs="+", required=True)
    parser.add_argument("--kernels", choices=("generator", "saved"), default="generator",
                        help="the generator's estimate (exact), or the saved, cropped kernel")
    parser.add_argument("--out", type=Path, default=None, help="JSON summary to write")
    parser.add_argument("--write-weight", type=float, default=None, metavar="W",
                        help="write the runs as they are with this weight (with --write-to)")
    parser.add_argument("--write-to", type=Path, default=None, metavar="DIR",
                        help="folder for --write-weight's runs (one results folder only)")
    args = parser.parse_args(argv)
    if (args.write_weight is None) != (args.write_to is None):
        parser.error("--write-weight and --write-to go together")
    if args.write_to is not None:
        if len(args.results) != 1 or args.kernels != "generator":
            parser.error("--write-to takes one results folder and the generator's kernels")
        args.weights = sorted({*args.weights, args.write_weight})
    if any(w <= 0 for w in args.weights):
        parser.error("--weights and --write-weight must be positive")
    cases = {case.name: case for case in load_levin()}
    rows = []
    for folder in args.results:
        records = sorted(folder.glob("*_seed*.json"))
        if not records:
            parser.error(f"{folder}: no records of benchmarks/levin.py")
        for path in records:
            record = json.loads(path.read_text())
            suffix = {"generator": "_generator_kernel.npy", "saved": "_kernel.npy"}
            raw_path = path.with_name(path.stem + suffix[args.kernels])
            if not raw_path.exists():
                print(f"{folder.name}/{path.stem}: no {raw_path.name}, skipped")
                continue
            case = cases[record["case"]]
            settings = record.get("settings", {})
            method = settings.get("final_deconvolution", "hyper_laplacian")
            own = float(settings.get("final_deconvolution_weight", 1e-4))
            blurry = case.blurry.astype(np.uint8)  # as levin.py hands it to deblur_iter
            raw = np.load(raw_path)
            psnr, images = {}, {}
            for weight in sorted({own, *args.weights}):
                images[weight] = redo(blurry, raw, method, weight)
                image = np.clip(np.rint(images[weight]), 0, 255)
                psnr[weight] = levin_score(image.astype(np.uint8), case.sharp).psnr
            if args.kernels == "generator" and abs(psnr[own] - record["psnr"]) > 1e-6:
                print(f"{folder.name}/{path.stem}: weight {own:g} gives {psnr[own]:.3f} dB, "
                      f"the run {record['psnr']:.3f}: not the run's final step", file=sys.stderr)
            if args.write_to is not None:
                _write_replay(args.write_to, path, record, case, raw,
                              images[args.write_weight], args.write_weight, argv)
            rows.append({"folder": str(folder), "case": record["case"], "own_weight": own,
                         "stored_psnr": record["psnr"],
                         "psnr": {f"{w:g}": v for w, v in psnr.items()}})
            print(f"{folder.name}/{record['case']}: "
                  + ", ".join(f"{w:g} {v:.2f}" for w, v in psnr.items()), flush=True)
    if not rows:
        parser.error("no generator kernels found")
    weights = list(rows[0]["psnr"])
    means = {w: float(np.mean([r["psnr"][w] for r in rows])) for w in weights}
    base = f"{rows[0]['own_weight']:g}"
    better = {w: sum(r["psnr"][w] > r["psnr"][base] for r in rows) for w in weights}
    print(f"mean over {len(rows)}: " + ", ".join(
        f"weight {w} {m:.3f} dB (better than {base} on {better[w]})" for w, m in means.items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"results": [str(f) for f in args.results],
                                        "kernels": args.kernels,
                                        "mean_psnr": means, "better_than_own": better,
                                        "cases": rows}, indent=1) + "\n")
    return 0


def _write_replay(out: Path, path: Path, record: dict, case, raw: np.ndarray,
                  image: np.ndarray, weight: float, argv: list[str] | None) -> None:
    """Write one run as ``benchmarks/levin.py`` would have with ``weight``."""
    import shlex

    from levin import score_record, write_outputs

    kernel = np.load(path.with_name(path.stem + "_kernel.npy"))  # unchanged by the weight
    replayed = {**record, **score_record(case, image, kernel)}
    replayed["settings"] = {**record.get("settings", {}), "final_deconvolution_weight": weight}
    args = sys.argv[1:] if argv is None else argv
    replayed["final_step_replay"] = {
        "from": str(path.parent), "weight": weight, "stored_psnr": record["psnr"],
        "command": shlex.join(["python", "benchmarks/final_step.py", *args])}
    write_outputs(out, path.stem, {"record": replayed, "image": image, "kernel": kernel,
                                   "generator_kernel": raw}, save_float=False)


if __name__ == "__main__":
    raise SystemExit(main())
