"""Summarise camera-shake development-set runs (``benchmarks/devset.py``) as Markdown + a plot.

Reads one or more runs, each a result folder (``benchmarks/results/devset/<tag>``, holding
``scores.jsonl`` and ``run.json``) or a ``.jsonl`` file of scores (as committed under
``docs/benchmarks/devset-scores/``), and writes ``docs/benchmarks/devset.md``: per run, the
mean and spread (per-case range across seeds, the worst case), by kernel-size class, the
fraction of the true-kernel step's gain the blind result reaches, cases worse than their
input, time per case; a plot of per-case PSNR across seeds (``devset_<tag>.png`` beside the
Markdown file).
With ``--scores-dir`` it also copies each folder's ``scores.jsonl`` there as ``<tag>.jsonl``
(and its ``run.json``, the commands, as ``<tag>.run.json``), so the figures can be
regenerated from the committed scores.

Example::

    python benchmarks/devset_report.py benchmarks/results/devset/fast-baseline \\
        --scores-dir docs/benchmarks/devset-scores
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks"
CLASSES = ("small", "medium", "large")
CLASS_LABELS = {"small": "11-27 px", "medium": "29-39 px", "large": "41-75 px"}
MACHINE = "2-core CPU, torch 2.13.0+cpu"


@dataclass
class Run:
    """The records of one run (one tag)."""

    label: str
    source: Path
    records: list[dict[str, Any]]
    commands: list[str] = field(default_factory=list)

    def by_case(self) -> dict[str, list[dict[str, Any]]]:
        """Records per case, in the order the cases first appear, each sorted by seed."""
        cases: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.records:
            cases[record["case"]].append(record)
        return {name: sorted(rs, key=lambda r: r["seed"]) for name, rs in cases.items()}

    def seeds(self) -> list[int]:
        return sorted({int(r["seed"]) for r in self.records})


def load_run(path: Path) -> Run:
    """A run from a result folder or a scores ``.jsonl`` file."""
    scores = path / "scores.jsonl" if path.is_dir() else path
    if not scores.exists():
        raise SystemExit(f"{path}: no scores ({scores} does not exist)")
    records = [json.loads(line) for line in scores.read_text().splitlines() if line.strip()]
    if not records:
        raise SystemExit(f"{scores}: no records yet")
    label = records[0].get("tag") or path.stem
    commands: list[str] = []
    info = path / "run.json" if path.is_dir() else path.with_suffix(".run.json")
    if info.exists():
        commands = list(dict.fromkeys(
            i["command"] for i in json.loads(info.read_text())["invocations"]))
    return Run(label=label, source=path, records=records, commands=commands)


# --------------------------------------------------------------------------- statistics


def mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def fmt(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary_row(records: list[dict[str, Any]]) -> list[str]:
    """Means over records: PSNR/SSIM of input, blind, true kernel; gains; failures; time."""
    gain = mean([r["gain"] for r in records])
    possible = mean([r["gain_nonblind"] for r in records])
    fraction = gain / possible if gain is not None and possible else None
    fractions = [r["gain_fraction"] for r in records if r.get("gain_fraction") is not None]
    worse = sum(r["psnr"] < r["psnr_blurry"] for r in records)
    return [
        str(len(records)),
        fmt(mean([r["psnr_blurry"] for r in records])),
        f"{fmt(mean([r['psnr'] for r in records]))} / "
        f"{fmt(mean([r['ssim'] for r in records]), 3)}",
        fmt(mean([r["psnr_nonblind"] for r in records])),
        fmt(gain, sign=True),
        fmt(possible, sign=True),
        fmt(fraction),
        fmt(float(np.median(fractions)) if fractions else None),
        str(worse),
        fmt(mean([r["kernel_ncc"] for r in records]), 3),
        fmt(mean([r["seconds"] for r in records]), 0),
    ]


SUMMARY_HEADER = ["runs", "input dB", "blind dB / SSIM", "true kernel dB", "blind gain",
                  "true-kernel gain", "fraction (of mean gains)", "median fraction",
                  "worse than input", "kernel NCC", "s / case"]


def spread(run: Run) -> dict[str, Any]:
    """Per-case range of PSNR across seeds (cases with at least two seeds), the worst
    result of each seed."""
    ranges = {name: max(r["psnr"] for r in rs) - min(r["psnr"] for r in rs)
              for name, rs in run.by_case().items() if len(rs) >= 2}
    worst = {}
    for seed in run.seeds():
        records = [r for r in run.records if r["seed"] == seed]
        low = min(records, key=lambda r: r["psnr"])
        lowest_gain = min(records, key=lambda r: r["gain"])
        worst[seed] = (low, lowest_gain)
    return {"ranges": ranges, "worst": worst}


# --------------------------------------------------------------------------- sections


def run_section(run: Run, plot: Path | None, document: Path) -> list[str]:
    lines = [f"## `{run.label}`", ""]
    complete = {name: rs for name, rs in run.by_case().items()}
    lines.append(f"{len(complete)} of 40 cases, seeds {run.seeds()}, {len(run.records)} runs. "
                 f"Source: `{_relative(run.source)}`.")
    lines.append("")
    lines += ["### Means", ""]
    rows = [["all", *summary_row(run.records)]]
    for name in CLASSES:
        records = [r for r in run.records if r["size_class"] == name]
        if records:
            rows.append([f"{name} ({CLASS_LABELS[name]})", *summary_row(records)])
    for noisy, label in ((False, "noise-free"), (True, "1 % noise")):
        records = [r for r in run.records if (r["noise_std"] > 0) == noisy]
        if records:
            rows.append([label, *summary_row(records)])
    for colour, label in ((False, "grey"), (True, "colour")):
        records = [r for r in run.records if bool(r["colour"]) == colour]
        if records:
            rows.append([label, *summary_row(records)])
    for seed in run.seeds():
        records = [r for r in run.records if r["seed"] == seed]
        rows.append([f"seed {seed}", *summary_row(records)])
    lines += table(["subset", *SUMMARY_HEADER], rows)
    lines += [
        "",
        "PSNR/SSIM: Levin protocol (crop 15 px, best shift within +-5 px), colour on the "
        "luminance. *blind gain*: blind minus input PSNR; *true-kernel gain*: the same final "
        "step with the true kernel; *fraction (of mean gains)*: mean blind gain / mean "
        "true-kernel gain; *median fraction*: median over runs of the per-run ratio. "
        "*s / case*: the blind run's wall time (the machine was shared with other jobs).",
        "",
    ]
    facts = spread(run)
    lines += ["### Spread across seeds", ""]
    if facts["ranges"]:
        values = np.array(list(facts["ranges"].values()))
        widest = max(facts["ranges"], key=facts["ranges"].get)
        lines.append(f"Per-case PSNR range across seeds, over {len(values)} cases run with "
                     f"two or more seeds: median {np.median(values):.2f} dB, mean "
                     f"{values.mean():.2f} dB, largest {values.max():.2f} dB ({widest}).")
    else:
        lines.append("Only one seed so far: no spread across seeds yet.")
    lines.append("")
    rows = []
    for seed, (low, lowest_gain) in facts["worst"].items():
        rows.append([str(seed), f"{low['case']} {low['psnr']:.2f} dB "
                                f"(input {low['psnr_blurry']:.2f})",
                     f"{lowest_gain['case']} {lowest_gain['gain']:+.2f} dB "
                     f"(true kernel {lowest_gain['gain_nonblind']:+.2f})"])
    lines += table(["seed", "lowest PSNR", "lowest gain over the input"], rows)
    lines.append("")
    if plot is not None:
        lines += [f"![per-case PSNR across seeds]({_link(plot, document)})", ""]
    lines += ["### Per case", ""]
    seeds = run.seeds()
    header = ["case", "class", "size", "noise", "input", "true kernel",
              *[f"seed {s}" for s in seeds], "range", "kernel NCC", "s"]
    rows = []
    for name, records in sorted(run.by_case().items(), key=lambda kv: _case_order(kv[1][0])):
        first = records[0]
        by_seed = {r["seed"]: r for r in records}
        psnrs = [r["psnr"] for r in records]
        rows.append([
            name, first["size_class"], str(first["kernel_size"]),
            "1 %" if first["noise_std"] else "-",
            fmt(first["psnr_blurry"]),
            _bold_if(first["psnr_nonblind"], first["psnr_nonblind"] < first["psnr_blurry"]),
            *[_marked(by_seed.get(s)) for s in seeds],
            fmt(max(psnrs) - min(psnrs)) if len(psnrs) > 1 else "-",
            fmt(mean([r["kernel_ncc"] for r in records]), 3),
            fmt(mean([r["seconds"] for r in records]), 0),
        ])
    lines += table(header, rows)
    lines += ["", "A value in **bold** is worse than the blurry input (blind runs, and the "
                  "true-kernel step at the preset's final weight).", ""]
    return lines


def _marked(record: dict[str, Any] | None) -> str:
    if record is None:
        return "-"
    return _bold_if(record["psnr"], record["psnr"] < record["psnr_blurry"])


def _bold_if(value: float, condition: bool) -> str:
    return f"**{value:.2f}**" if condition else f"{value:.2f}"


def _case_order(record: dict[str, Any]) -> tuple[int, int, str]:
    return (CLASSES.index(record["size_class"]), int(record["kernel_size"]), record["case"])


def psnr_plot(run: Run, path: Path) -> None:
    """Per-case PSNR of every seed, with the input and the true-kernel step, cases ordered by
    kernel size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted(run.by_case().items(), key=lambda kv: _case_order(kv[1][0]))
    x = np.arange(len(cases))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(cases) + 2), 4.2))
    ax.plot(x, [rs[0]["psnr_nonblind"] for _, rs in cases], "k_", markersize=12,
            label="true kernel (same final step)")
    ax.plot(x, [rs[0]["psnr_blurry"] for _, rs in cases], "x", color="grey", label="input")
    markers = "os^dv"
    for i, seed in enumerate(run.seeds()):
        xs, ys = [], []
        for j, (_, rs) in enumerate(cases):
            for r in rs:
                if r["seed"] == seed:
                    xs.append(j)
                    ys.append(r["psnr"])
        ax.plot(xs, ys, markers[i % len(markers)], fillstyle="none", label=f"seed {seed}")
    for j, (_, rs) in enumerate(cases):  # the spread of each case
        values = [r["psnr"] for r in rs]
        if len(values) > 1:
            ax.plot([j, j], [min(values), max(values)], "-", color="C0", alpha=0.4)
    ax.set_xticks(x)
    ax.set_xticklabels([name for name, _ in cases], rotation=90, fontsize=7)
    ax.set_ylabel("PSNR (dB), Levin protocol")
    ax.set_title(f"{run.label}: per-case PSNR across seeds (cases by kernel size)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _link(target: Path, document: Path) -> str:
    try:
        return str(target.resolve().relative_to(document.resolve().parent))
    except ValueError:
        return str(target)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write docs/benchmarks/devset.md.")
    parser.add_argument("runs", nargs="+", type=Path,
                        help="result folders or scores .jsonl files")
    parser.add_argument("--out", type=Path, default=DOCS / "devset.md")
    parser.add_argument("--scores-dir", type=Path, default=None,
                        help="copy each folder's scores.jsonl here as <tag>.jsonl")
    return parser.parse_args(argv)


def build_report(runs: list[Run], args: argparse.Namespace, argv: list[str]) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Camera-shake development set",
        "",
        "Generated by `benchmarks/devset_report.py`; do not edit by hand.",
        "",
        "The development set (`napari_dip_deblur.devsets.camera_shake`): 10 sharp 255 x 255 "
        "crops of scikit-image photos (camera, moon, brick, grass, gravel in grey; astronaut, "
        "coffee, rocket, chelsea, hubble_deep_field in colour) x 4 random-trajectory "
        "camera-shake kernels each (Boracchi & Foi 2012), one per size class: 20 small "
        "(11-27 px, Levin's range), 10 medium (29-39 px), 10 large (41-75 px); 1 % Gaussian "
        "noise on 10 of the 40. Every case runs as a user's 8-bit photo: the uint8 blurry "
        "image and the kernel size a user would give (the true support, rounded up to odd). "
        "Hyperparameters are chosen here; the Levin set (`levin.md`) is only reported.",
        "",
        f"Machine: {MACHINE}, shared with other jobs (times include that). Date of the report: "
        f"{now}.",
        "",
        "## Commands",
        "",
        "```",
    ]
    for run in runs:
        lines += run.commands or [f"# {run.label}: scores from {_relative(run.source)}"]
    lines += [shlex.join(["python", "benchmarks/devset_report.py", *argv]), "```", ""]
    for run in runs:
        plot = args.out.parent / f"devset_{_slug(run.label)}.png"
        psnr_plot(run, plot)
        lines += run_section(run, plot, args.out)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    runs = [load_run(path) for path in args.runs]
    if args.scores_dir is not None:
        args.scores_dir.mkdir(parents=True, exist_ok=True)
        for run in runs:
            if run.source.is_dir():
                stem = args.scores_dir / _slug(run.label)
                shutil.copyfile(run.source / "scores.jsonl", stem.with_suffix(".jsonl"))
                if (run.source / "run.json").exists():  # the commands that made them
                    shutil.copyfile(run.source / "run.json", stem.with_suffix(".run.json"))
    text = build_report(runs, args, argv)
    temporary = args.out.with_suffix(".md.tmp")
    temporary.write_text(text)
    temporary.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
