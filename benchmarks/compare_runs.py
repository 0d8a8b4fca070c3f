"""Compare Levin result folders of ``benchmarks/levin.py`` image by image (paired).

For each folder after the first: the mean PSNR over the images both have, on how many it
is better than the first folder, the means per sharp image (``im1`` .. ``im4``) and per
kernel size, the total wall time, and the images that moved most. With ``--compose-up-to
S`` (or ``--compose-from S``), also the run that a kernel-size rule would give: this
folder's results for kernels of ``S`` px or less (or more), the first folder's for the
others (exact where both ran the same seed, since each image's run depends only on its own
settings and seed). No network is run.

    python benchmarks/compare_runs.py benchmarks/results/experiments/fast-cl-440 \\
        benchmarks/results/experiments/fast-crop176-starts2
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np


def load(folder: Path, seed: int | None) -> dict[str, dict]:
    """The records of a result folder by case name: of ``seed``, or of its only seed."""
    records: dict[str, dict] = {}
    pattern = "im*_kernel*_seed*.json" if seed is None else f"im*_kernel*_seed{seed}.json"
    for path in sorted(folder.glob(pattern)):
        record = json.loads(path.read_text())
        if record["case"] in records:
            raise SystemExit(f"{folder} holds several seeds of {record['case']}: pass --seed")
        records[record["case"]] = {**record, "_folder": folder}
    return records


def compose(reference: dict[str, dict], other: dict[str, dict], sizes: str, name: str,
            take: Callable[[int], bool]) -> dict[str, dict] | None:
    """Print the run of the rule "``other`` for the kernels ``take`` picks (``sizes`` says
    which), the reference for the rest" over all the reference's images (``other`` may
    hold only the kernels it is taken for), and return its records (None: ``other`` lacks
    some)."""
    taken = {c for c in reference if take(reference[c]["kernel_size"])}
    missing = taken - set(other)
    if missing:
        print(f"  composed: {name} lacks {len(missing)} image(s) of kernels {sizes}")
        return None
    chosen = {c: (other if c in taken else reference)[c] for c in reference}
    ref = np.array([reference[c]["psnr"] for c in reference])
    composed = np.array([chosen[c]["psnr"] for c in reference])
    ssim = np.mean([chosen[c]["ssim"] for c in reference])
    seconds = sum(record["wall_time"] for record in chosen.values())
    print(f"  composed over the reference's {len(ref)} images (kernels {sizes} from "
          f"{name}): mean PSNR {composed.mean():.2f} against {ref.mean():.2f} dB "
          f"({(composed - ref).mean():+.2f}), SSIM {ssim:.3f}, wall time {seconds:.0f} s")
    return chosen


def write_composed(chosen: dict[str, dict], out: Path, rule: str) -> None:
    """Copy each chosen run's files (record, images, kernels) into ``out``, a result folder
    like any other (``levin_scores.py`` extracts its score lines), with ``COMPOSED.md``
    saying where each came from."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Composed run: {rule}", "",
             f"Written by `python benchmarks/compare_runs.py {' '.join(sys.argv[1:])}`. "
             "Each file is a copy of a run made by `benchmarks/levin.py` (exact: each image's run "
             "depends only on its own settings and seed).", "",
             "| case | copied from |", "|---|---|"]
    for case, record in sorted(chosen.items()):
        folder = record["_folder"]
        stem = f"{case}_seed{record['seed']}"
        for path in sorted([*folder.glob(f"{stem}.*"), *folder.glob(f"{stem}_*")]):
            shutil.copy2(path, out / path.name)
        lines.append(f"| {case} | `{folder.as_posix()}` |")
    (out / "COMPOSED.md").write_text("\n".join(lines) + "\n")
    print(f"  wrote {len(chosen)} runs to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="the first is the reference")
    parser.add_argument("--seed", type=int, default=None,
                        help="the seed to compare (default: each folder's only seed)")
    parser.add_argument("--show", type=int, default=5, help="largest moves to list")
    parser.add_argument("--compose-up-to", type=int, default=None, metavar="S",
                        help="also compose: this folder for kernels <= S px, the first above")
    parser.add_argument("--compose-from", type=int, default=None, metavar="S",
                        help="also compose: this folder for kernels >= S px, the first below")
    parser.add_argument("--compose-out", type=Path, default=None, metavar="DIR",
                        help="write the composed run's files to DIR (one folder compared)")
    args = parser.parse_args()
    if args.compose_out is not None and (len(args.folders) != 2 or (
            args.compose_up_to is None) == (args.compose_from is None)):
        parser.error("--compose-out takes two folders and one of --compose-up-to and "
                     "--compose-from")
    reference = load(args.folders[0], args.seed)
    for folder in args.folders[1:]:
        other = load(folder, args.seed)
        cases = sorted(set(reference) & set(other))
        if not cases:
            print(f"{folder}: no case in common with {args.folders[0]}")
            continue
        ref = np.array([reference[c]["psnr"] for c in cases])
        new = np.array([other[c]["psnr"] for c in cases])
        diff = new - ref
        print(f"{folder.name} against {args.folders[0].name}, {len(cases)} images:")
        print(f"  mean PSNR {new.mean():.2f} against {ref.mean():.2f} dB "
              f"({diff.mean():+.2f}); better on {int((diff > 0).sum())} of {len(cases)}")
        print(f"  wall time {sum(other[c]['wall_time'] for c in cases):.0f} s against "
              f"{sum(reference[c]['wall_time'] for c in cases):.0f} s")
        for image in sorted({c.split('_')[0] for c in cases}):
            mask = np.array([c.startswith(image + "_") for c in cases])
            print(f"  {image}: {new[mask].mean():.2f} against {ref[mask].mean():.2f} dB "
                  f"({diff[mask].mean():+.2f}, {mask.sum()} images)")
        sizes = np.array([reference[c]["kernel_size"] for c in cases])
        for size in sorted(set(sizes)):
            mask = sizes == size
            print(f"  {size} px kernels: {new[mask].mean():.2f} against {ref[mask].mean():.2f} dB "
                  f"({diff[mask].mean():+.2f}, {mask.sum()} images)")
        rules = []
        if args.compose_up_to is not None:
            rules.append((f"<= {args.compose_up_to} px", lambda size: size <= args.compose_up_to))
        if args.compose_from is not None:
            rules.append((f">= {args.compose_from} px", lambda size: size >= args.compose_from))
        for which, take in rules:
            chosen = compose(reference, other, which, folder.name, take)
            if chosen is not None and args.compose_out is not None:
                write_composed(chosen, args.compose_out,
                               f"`{folder.name}` for kernels {which}, "
                               f"`{args.folders[0].name}` for the others")
        order = np.argsort(diff)
        moves = [*order[:args.show], *order[::-1][:args.show]]
        print("  largest moves: " + ", ".join(
            f"{cases[i]} {ref[i]:.2f} -> {new[i]:.2f}" for i in dict.fromkeys(moves)))


if __name__ == "__main__":
    main()
