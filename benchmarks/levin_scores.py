"""Compact per-image scores of a Levin run: one JSON line per image and seed.

``benchmarks/levin.py`` writes, per image and seed, a full record (loss history, settings,
the restored image and kernel beside it) into a result folder that is not committed. What
the reports need of it, and what is committed (``docs/benchmarks/levin-scores/``), is one
line per run with its scores and its provenance (:data:`FIELDS`); ``levin.py --scores FILE``
appends that line as each run finishes, and this script extracts the lines from a result
folder made before it could, or scores the blurry inputs themselves (``--blurry``).

Examples
--------
The lines of one result folder::

    python benchmarks/levin_scores.py benchmarks/results/fast --out fast-seed0.jsonl

The blurry inputs, scored as the restored images are::

    python benchmarks/levin_scores.py --blurry --out docs/benchmarks/levin-scores/blurry.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# What each compact line holds, in this order. A run whose final deconvolution was redone
# at another weight (benchmarks/final_step.py, since removed: docs/decisions.md names the
# commit that has it) adds ``final_step_replay``, that command; its scores are the replay's.
FIELDS = ("case", "seed", "psnr", "ssim", "kernel_ncc", "wall_time", "kernel_size",
          "preset", "overrides", "status", "command", "git_commit", "date",
          "torch_version", "device")


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """The compact line of one full ``levin.py`` record (no histories, no arrays)."""
    line = {name: record.get(name) for name in FIELDS}
    replay = record.get("final_step_replay")
    if replay:
        line["final_step_replay"] = replay.get("command")
    return line


def folder_lines(folder: Path) -> list[dict[str, Any]]:
    """The compact lines of every record in a ``levin.py`` result folder, by case and seed."""
    if not folder.is_dir():
        raise SystemExit(f"no result folder {folder}")
    lines = [compact(json.loads(path.read_text()))
             for path in folder.glob("im*_kernel*_seed*.json")]
    if not lines:
        raise SystemExit(f"no levin.py records (im*_kernel*_seed*.json) in {folder}")
    return sorted(lines, key=line_key)


def blurry_lines(data: Path | None) -> list[dict[str, Any]]:
    """The blurry inputs scored by the Levin protocol, one line per case (seed None)."""
    from napari_dip_deblur.levin import load_levin
    from napari_dip_deblur.metrics import levin_score

    provenance = {"command": "python benchmarks/levin_scores.py --blurry",
                  "git_commit": _git_head(),
                  "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    lines = []
    for case in load_levin(data):
        score = levin_score(case.blurry, case.sharp)
        lines.append({"case": case.name, "seed": None, "psnr": score.psnr,
                      "ssim": score.ssim, "kernel_size": case.kernel_size,
                      "preset": "blurry input", **provenance})
    return sorted(lines, key=line_key)


def _git_head() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def line_key(line: dict[str, Any]) -> tuple[int, int, int]:
    """Sort key: image, kernel, seed (``im2_kernel10`` after ``im2_kernel9``)."""
    image, kernel = line["case"].removeprefix("im").split("_kernel")
    return int(image), int(kernel), line.get("seed") or 0


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The lines of a compact score file."""
    return [json.loads(text) for text in path.read_text().splitlines() if text.strip()]


def write_lines(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    """Write a compact score file whole (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(json.dumps(line) + "\n" for line in lines))
    os.replace(temporary, path)


def add_line(path: Path, line: dict[str, Any]) -> None:
    """Add one run's line to a compact score file, replacing an older line of its case and
    seed, the file kept sorted and written whole."""
    lines = read_lines(path) if path.exists() else []
    same = (line["case"], line["seed"])
    lines = [old for old in lines if (old["case"], old["seed"]) != same] + [line]
    write_lines(path, sorted(lines, key=line_key))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", help="a levin.py result folder")
    parser.add_argument("--blurry", action="store_true",
                        help="score the blurry inputs instead of a result folder")
    parser.add_argument("--data", type=Path, default=None,
                        help="Levin data folder, for --blurry (default: $DIP_DEBLUR_LEVIN or "
                             "../shared/data/levin)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON lines file to write")
    args = parser.parse_args(argv)
    if args.blurry == (args.folder is not None):
        parser.error("give a result folder or --blurry, not both")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lines = blurry_lines(args.data) if args.blurry else folder_lines(args.folder)
    write_lines(args.out, lines)
    print(f"wrote {len(lines)} lines to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
