"""Can a no-reference sharpness score choose between two starts of a run? (Settings.starts)

Three subcommands:

``final``  Offline, on stored Levin runs of the same preset with different seeds or layouts
           (``benchmarks/levin.py`` outputs): for each pair of runs, pick per image the
           restored image with the lower gradient sparsity and compare the mean PSNR with the
           pair's mean and with the better of the two (the oracle); ``--group 3``: among
           every three runs instead of two.
``pilot``  Rerun the first iterations of two stored runs on some images (``--run-a``,
           ``--run-b``: a seed and a memory layout each), saving the generator image and the
           kernel every 20 iterations to ``--scratch`` (not kept: ~4 MB per image).
``early``  From the pilot's images: at each step, pick the start with the lower gradient
           sparsity and score the pick by the stored runs' *final* PSNR.

Usage (the figures in docs/presets.md, "Two starts"; OUT is
benchmarks/results/experiments/start-choice)::

    python benchmarks/start_choice.py final --out OUT/final.json
    python benchmarks/start_choice.py final --group 3 --out OUT/final-trios.json
    python benchmarks/start_choice.py pilot --scratch /tmp/pilot --cases im4_kernel8 ...
    python benchmarks/start_choice.py early --scratch /tmp/pilot --out OUT/early.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "experiments"
# Stored Levin runs of the 48-channel `fast` generator, 440 iterations (docs/benchmarks/levin.md).
FINAL_RUNS = {
    "contiguous seed 0": ("fast-ch48-440", 0),
    "contiguous seed 1": ("fast48-seed1", 1),
    "channels-last 480 its seed 0": ("fast-cl-480", 0),
    "channels-last seed 0": ("fast-cl-440", 0),
}
# The pilot reruns these two (the same seeds and layouts reproduce them exactly on the CPU).
PILOT_RUNS = {"a": ("fast-cl-440", 0, "channels_last"), "b": ("fast48-seed1", 1, "contiguous")}
CASES = [f"im{i}_kernel{j}" for i in range(1, 5) for j in range(1, 9)]


def _record(run: str, case: str, seed: int) -> dict:
    return json.loads((RESULTS / run / f"{case}_seed{seed}.json").read_text())


def _margin(case: str) -> int:
    return (_record("fast-cl-440", case, 0)["kernel_size"] - 1) // 2


def final(args: argparse.Namespace) -> dict:
    from skimage.io import imread

    from napari_dip_deblur.sharpness import gradient_sparsity

    table: dict[str, dict[str, tuple[float, float]]] = {}
    for label, (run, seed) in FINAL_RUNS.items():
        table[label] = {}
        for case in CASES:
            image = imread(RESULTS / run / f"{case}_seed{seed}_image.png")
            table[label][case] = (_record(run, case, seed)["psnr"],
                                  gradient_sparsity(image, margin=_margin(case)))
    groups = []
    for group in itertools.combinations(FINAL_RUNS, args.group):
        picked = [min((table[x][c] for x in group), key=lambda r: r[1])[0] for c in CASES]
        means = [float(np.mean([table[x][c][0] for c in CASES])) for x in group]
        oracle = [max(table[x][c][0] for x in group) for c in CASES]
        right = sum(p == best for p, best in zip(picked, oracle, strict=True))
        groups.append({"runs": list(group), "mean_psnr": means,
                       "picked_psnr": float(np.mean(picked)),
                       "oracle_psnr": float(np.mean(oracle)), "picked_better": int(right)})
        print(f"{' | '.join(group)}: means {' / '.join(f'{m:.2f}' for m in means)}, picked "
              f"{np.mean(picked):.2f}, oracle {np.mean(oracle):.2f}, the best one picked on "
              f"{right}/32")
    if groups:
        gain = np.mean([g["picked_psnr"] - np.mean(g["mean_psnr"]) for g in groups])
        print(f"over the {len(groups)} groups of {args.group}: the pick gains {gain:+.2f} dB "
              f"over the group's mean")
    return {"group": args.group, "groups" if args.group != 2 else "pairs": groups}


def pilot(args: argparse.Namespace) -> dict:
    from napari_dip_deblur import deblur_iter
    from napari_dip_deblur.levin import load_levin
    from napari_dip_deblur.metrics import levin_score

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    cases = {c.name: c for c in load_levin(args.data)}
    for name in args.cases:
        case = cases[name]
        for key, (_, seed, layout) in PILOT_RUNS.items():
            started = time.perf_counter()
            snapshots = deblur_iter(case.blurry.astype(np.uint8), case.kernel_size, preset="fast",
                                    seed=seed, device="cpu", yield_every=20, starts=1,
                                    iterations=440, memory_format=layout)
            out = {}
            for snap in snapshots:
                if snap.step >= 40:
                    out[f"img{snap.step}"] = snap.generator_image
                    out[f"ker{snap.step}"] = snap.kernel
                    out[f"psnr{snap.step}"] = levin_score(
                        np.clip(np.round(snap.image), 0, 255), case.sharp).psnr
                if snap.step >= args.steps:
                    break
            snapshots.close()
            np.savez(scratch / f"{name}_{key}.npz", **out)
            print(name, key, {k: round(float(v), 2) for k, v in out.items() if "psnr" in k},
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    return {}


def early(args: argparse.Namespace) -> dict:
    from napari_dip_deblur.sharpness import gradient_sparsity

    scratch = Path(args.scratch)
    rows = []
    for case in CASES:
        paths = [scratch / f"{case}_{key}.npz" for key in PILOT_RUNS]
        if not all(p.exists() for p in paths):
            continue
        data = [np.load(p) for p in paths]
        finals = [_record(run, case, seed)["psnr"] for run, seed, _ in PILOT_RUNS.values()]
        steps = sorted(int(k[3:]) for k in data[0].files if k.startswith("img"))
        scores = {s: [gradient_sparsity(d[f"img{s}"], margin=_margin(case)) for d in data]
                  for s in steps}
        psnrs = {s: [float(d[f"psnr{s}"]) for d in data] for s in steps}
        rows.append({"case": case, "final_psnr": finals, "sparsity": scores, "psnr": psnrs})
    summary = []
    for step in sorted(rows[0]["sparsity"]):
        gain, right, by_psnr, oracle = [], 0, [], []
        for r in rows:
            a, b = r["final_psnr"]
            mean = (a + b) / 2
            pick = r["final_psnr"][int(np.argmin(r["sparsity"][step]))]
            gain.append(pick - mean)
            right += pick == max(a, b)
            by_psnr.append(r["final_psnr"][int(np.argmax(r["psnr"][step]))] - mean)
            oracle.append(max(a, b) - mean)
        summary.append({"step": step, "picked_gain_db": float(np.mean(gain)),
                        "better_one_picked": right, "cases": len(rows),
                        "gain_if_picked_by_true_psnr_db": float(np.mean(by_psnr)),
                        "oracle_gain_db": float(np.mean(oracle))})
        print(f"step {step}: sparsity pick {np.mean(gain):+.3f} dB over the pair's mean, better "
              f"one picked {right}/{len(rows)}; by the true PSNR then {np.mean(by_psnr):+.3f}; "
              f"oracle {np.mean(oracle):+.3f}")
    return {"runs": {k: list(v) for k, v in PILOT_RUNS.items()}, "summary": summary,
            "cases": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("final", "pilot", "early"))
    parser.add_argument("--out", help="JSON file for the results (final, early)")
    parser.add_argument("--scratch", default="/tmp/start-choice", help="the pilot's images")
    parser.add_argument("--cases", nargs="+", default=CASES, help="Levin cases for the pilot")
    parser.add_argument("--steps", type=int, default=160, help="iterations the pilot runs")
    parser.add_argument("--data", default=None, help="the Levin data folder")
    parser.add_argument("--group", type=int, default=2,
                        help="final: how many runs a pick chooses among (2: pairs)")
    args = parser.parse_args(argv)
    if not 2 <= args.group <= len(FINAL_RUNS):
        parser.error(f"--group must be 2 to {len(FINAL_RUNS)} (the stored runs), "
                     f"got {args.group}")
    result = {"final": final, "pilot": pilot, "early": early}[args.command](args)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result = {"command": "python benchmarks/start_choice.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
        out.write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
