"""Quality reached against seconds spent, per preset, on the Levin images they share.

Reads the convergence records of ``benchmarks/levin.py`` runs (``--record-every N``: the PSNR
of the iterate every N iterations) and plots, for each result folder, the mean PSNR over the
images that every folder has, against the seconds spent. Seconds come from the record itself
when the run was made on the machine the plot is for (``--device-type``, default ``cpu``);
for runs made elsewhere (e.g. a GPU run of a preset too slow to run here) they are estimated
as *iterations x seconds per iteration of that preset on this machine*, interpolated in the
number of generated pixels between the kernel sizes that ``benchmarks/speed.py`` measured
(``benchmarks/results/speed/<device>.json``). The figure and a Markdown table say which is
which.

Example::

    python benchmarks/quality_vs_time.py benchmarks/results/gpu-selfdeblur \\
        benchmarks/results/gpu-staged benchmarks/results/cpu-fast \\
        --labels selfdeblur staged fast
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks"
BUDGETS = (30, 60, 120, 300, 600, 1800, 3600)  # seconds at which the table reads the curves


def load_records(folder: Path) -> dict[str, dict]:
    """Case name to its JSON record, for runs that kept a convergence record."""
    records = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("convergence"):
            records[record["case"]] = record
    return records


def seconds_per_iteration(speed: list[dict], preset: str, side: int, kernel: int) -> float:
    """Interpolate a preset's measured s/iteration in the generated image's pixel count."""
    # The preset's own layout (a speed run may also time others: "memory_format_asked").
    rows = sorted((r for r in speed if r.get("preset") == preset and r.get("size") == side
                   and "s_per_iteration" in r
                   and r.get("memory_format_asked", "preset") == "preset"),
                  key=lambda r: r["kernel"])
    if not rows:
        raise SystemExit(f"no speed measurement of {preset!r} at {side} px: run "
                         f"benchmarks/speed.py --presets {preset} --sizes {side}:13 {side}:27")
    pixels = [(side + r["kernel"] - 1) ** 2 for r in rows]
    values = [r["s_per_iteration"] for r in rows]
    return float(np.interp((side + kernel - 1) ** 2, pixels, values))


def curve(record: dict, device_type: str, speed: list[dict] | None) -> tuple[np.ndarray, ...]:
    """(seconds, psnr, measured?) of one run's convergence record."""
    steps = np.array([c["step"] for c in record["convergence"]], dtype=float)
    psnr = np.array([c["psnr"] for c in record["convergence"]], dtype=float)
    device = str(record.get("device", ""))
    if device.startswith(device_type):
        seconds = np.array([c["seconds"] for c in record["convergence"]], dtype=float)
        return seconds, psnr, True
    if speed is None:
        raise SystemExit(f"{record['case']} ran on {device}: give --speed to estimate "
                         f"{device_type} seconds")
    rate = seconds_per_iteration(speed, record["preset"], 255, int(record["kernel_size"]))
    return steps * rate, psnr, False


def reached(seconds: np.ndarray, psnr: np.ndarray, budget: float) -> float:
    """The PSNR of the last iterate recorded within ``budget`` seconds (nan if none)."""
    inside = seconds <= budget
    return float(psnr[inside][-1]) if inside.any() else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--labels", nargs="+", default=None)
    parser.add_argument("--device-type", default="cpu", help="the machine the seconds are for")
    parser.add_argument("--speed", type=Path, default=None,
                        help="speed.py results (default: benchmarks/results/speed/<device>.json)")
    parser.add_argument("--out", type=Path, default=DOCS / "quality-vs-time.md")
    args = parser.parse_args(argv)
    labels = args.labels or [f.name for f in args.folders]
    if len(labels) != len(args.folders):
        parser.error("give one label per folder")
    speed_path = args.speed or REPO / "benchmarks" / "results" / "speed" / \
        f"{args.device_type}.json"
    speed = json.loads(speed_path.read_text())["rows"] if speed_path.exists() else None

    runs = [load_records(f) for f in args.folders]
    common = sorted(set.intersection(*(set(r) for r in runs)))
    if not common:
        raise SystemExit("the folders share no image with a convergence record")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 6.5))
    rows, sources = [], []
    for label, records in zip(labels, runs, strict=True):
        curves = [curve(records[c], args.device_type, speed) for c in common]
        measured = all(m for _, _, m in curves)
        # Mean over images on a common time grid (each image's curve held at its last value).
        grid = np.unique(np.concatenate([s for s, _, _ in curves]))
        mean = np.mean([[reached(s, p, t) for t in grid] for s, p, _ in curves], axis=0)
        kind = "measured" if measured else "estimated"
        axis.plot(grid, mean, marker=".", label=f"{label} ({kind} {args.device_type} s)",
                  linestyle="-" if measured else "--")
        per_budget = [np.mean([reached(s, p, b) for s, p, _ in curves]) for b in BUDGETS]
        final = np.mean([p[-1] for _, p, _ in curves])
        total = np.mean([s[-1] for s, _, _ in curves])
        rows.append((label, kind, per_budget, final, total))
        first = records[common[0]]
        sources.append(f"*{label}*: `{first.get('command', '?')}` (and the same for the other "
                       f"images) on {first.get('device')}, {first.get('date', '?')[:10]}")
    axis.set_xscale("log")
    axis.set_xlabel(f"seconds on this {args.device_type} (log scale)")
    axis.set_ylabel("mean PSNR (dB), Levin protocol")
    axis.set_title(f"Quality against time, {len(common)} Levin images")
    axis.grid(True, which="both", alpha=0.3)
    # Below the axes: the labels are long and the curves fill the plot.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize="small")
    figure.tight_layout()
    png = args.out.with_suffix(".png")
    figure.savefig(png, dpi=110)

    command = "python " + " ".join(shlex.quote(a) for a in [
        "benchmarks/quality_vs_time.py", *map(str, sys.argv[1:] if argv is None else argv)])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# Quality against time", "",
        f"Written by `{command}` on {date} (UTC). Images: {', '.join(common)}.", "",
        "PSNR (dB, Levin protocol, mean over the images) of the last iterate recorded within "
        f"each budget of seconds on this {args.device_type}; '–': no iterate that early. "
        "*measured*: the record's own seconds (the run was made here); *estimated*: "
        "iterations x the preset's seconds per iteration measured here by "
        f"`benchmarks/speed.py` ({speed_path.name}), "
        "PSNR from a run made elsewhere (same code, float32).", "",
        "| preset | seconds | " + " | ".join(f"{b} s" for b in BUDGETS) +
        " | final PSNR | seconds to finish |",
        "|---|---|" + "---|" * len(BUDGETS) + "---|---|",
    ]
    for label, kind, per_budget, final, total in rows:
        cells = " | ".join("–" if np.isnan(v) else f"{v:.2f}" for v in per_budget)
        lines.append(f"| {label} | {kind} | {cells} | {final:.2f} | {total:.0f} |")
    lines += ["", "\n\n".join(sources), "", f"![quality against time]({png.name})", ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
