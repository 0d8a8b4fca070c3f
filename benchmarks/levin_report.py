"""Summarise Levin benchmark results (from ``benchmarks/levin.py``) as Markdown and figures.

Reads one or more result folders (one JSON per image and seed) and writes
``docs/benchmarks/levin.md`` with the mean, per-kernel and per-image tables next to the
published figures and the blurry-input baseline (scored here with the same metric), a
contact sheet per folder (blurry / restored / ground truth / estimated kernel / true kernel)
and a convergence plot (PSNR against iteration and against seconds) for runs that recorded one.
Folders with only some of the 32 images are reported as "n of 32 images".

Example::

    python benchmarks/levin_report.py benchmarks/results/selfdeblur benchmarks/results/staged
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from napari_dip_deblur.levin import KERNEL_SIZES, LevinCase, load_levin
from napari_dip_deblur.metrics import levin_score

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks"
TOTAL = 32
_TRUE_SIZES = {1: 19, 2: 17, 3: 15, 4: 27, 5: 13, 6: 21, 7: 23, 8: 23}

# (method, PSNR, SSIM, where the figure comes from); same protocol, all 32 images.
PUBLISHED = [
    ("Non-blind, true kernel (upper reference)", 34.53, 0.949, "literature, via METHOD.md"),
    ("INR, best self-supervised (NeurIPS 2024)", 33.74, 0.938, "literature, via METHOD.md"),
    ("Staged losses (Lee & Choi)", 33.651, 0.930, "Lee & Choi"),
    ("SelfDeblur (Ren et al. 2020)", 33.068, 0.931, "as reported by Lee & Choi"),
    ("Sun et al.", 32.991, 0.933, "as reported by Lee & Choi"),
    ("Pan et al. (dark channel)", 32.691, 0.928, "as reported by Lee & Choi"),
    ("Zuo et al.", 32.662, 0.933, "as reported by Lee & Choi"),
    ("Levin et al.", 31.089, 0.915, "as reported by Lee & Choi"),
    ("Cho & Lee", 30.566, 0.897, "as reported by Lee & Choi"),
    ("Krishnan et al.", 29.888, 0.867, "as reported by Lee & Choi"),
]


@dataclass
class RunSet:
    """The results of one folder."""

    label: str
    folder: Path
    records: list[dict[str, Any]]

    def by_case(self) -> dict[str, list[dict[str, Any]]]:
        """Records grouped by case name, each group sorted by seed."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.records:
            groups[record["case"]].append(record)
        return {name: sorted(group, key=lambda r: r["seed"])
                for name, group in sorted(groups.items(), key=lambda kv: _case_key(kv[0]))}

    def seeds(self) -> list[int]:
        return sorted({r["seed"] for r in self.records})

    def values(self, field: str) -> list[str]:
        return sorted({str(r.get(field)) for r in self.records if r.get(field) is not None})


def _case_key(name: str) -> tuple[int, int]:
    image, kernel = name.removeprefix("im").split("_kernel")
    return int(image), int(kernel)


# --------------------------------------------------------------------------- loading


def load_runs(folder: Path, label: str | None = None) -> RunSet:
    """Every result JSON in ``folder``, labelled by ``label``, else their common tag."""
    if not folder.is_dir():
        raise SystemExit(f"no result folder {folder}")
    records = []
    for path in sorted(folder.glob("im*_kernel*_seed*.json")):
        record = json.loads(path.read_text())
        record["_stem"] = path.stem
        records.append(record)
    tags = {r.get("tag") for r in records}
    default = tags.pop() if len(tags) == 1 and None not in tags else folder.name
    return RunSet(label=label or default, folder=folder, records=records)


def blurry_baseline(cases: list[LevinCase]) -> dict[str, tuple[float, float]]:
    """PSNR and SSIM of every blurry input, scored as the restored images are."""
    scores = {}
    for case in cases:
        score = levin_score(case.blurry, case.sharp)
        scores[case.name] = (score.psnr, score.ssim)
    return scores


# --------------------------------------------------------------------------- statistics


def case_means(runs: RunSet, field: str) -> dict[str, float]:
    """Per case, the mean of ``field`` over its seeds (cases without a value left out)."""
    out = {}
    for name, group in runs.by_case().items():
        values = [r[field] for r in group if r.get(field) is not None]
        if values:
            out[name] = float(np.mean(values))
    return out


def mean_of(values: dict[str, float], names: list[str] | None = None) -> float:
    chosen = [values[n] for n in (names if names is not None else values) if n in values]
    return float(np.mean(chosen)) if chosen else float("nan")


def seed_spread(runs: RunSet) -> float | None:
    """Std over seeds of the mean PSNR, on the cases every seed completed; None if 1 seed."""
    seeds = runs.seeds()
    if len(seeds) < 2:
        return None
    groups = runs.by_case()
    complete = [n for n, g in groups.items() if {r["seed"] for r in g} == set(seeds)]
    if not complete:
        return None
    per_seed = [np.mean([r["psnr"] for n in complete for r in groups[n] if r["seed"] == s])
                for s in seeds]
    return float(np.std(per_seed, ddof=1))


# --------------------------------------------------------------------------- markdown


def fmt(value: float | None, digits: int) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def provenance_lines(runs: RunSet) -> list[str]:
    """The commands, machines, versions and dates of one folder's runs."""
    dates = sorted(r["date"] for r in runs.records if r.get("date"))
    span = f"{dates[0][:10]} to {dates[-1][:10]}" if dates else "unknown"
    commits = [c[:10] for c in runs.values("git_commit")] or ["not recorded (no commit)"]
    dirty = any(r.get("git_dirty") for r in runs.records)
    lines = [f"*{runs.label}* (`{_relative(runs.folder)}`): produced by"]
    lines += [f"`{command}`" for command in runs.values("command")]
    replays = sorted({r["final_step_replay"]["command"] for r in runs.records
                      if r.get("final_step_replay")})
    if replays:  # benchmarks/final_step.py --write-to: the last step redone at another weight
        lines.append("and the final deconvolution redone by")
        lines += [f"`{command}`" for command in replays]
    lines.append(
        f"on {', '.join(runs.values('device')) or 'unknown device'}"
        f" ({', '.join(runs.values('platform')) or 'unknown platform'}), "
        f"torch {', '.join(runs.values('torch_version')) or '?'}, "
        f"git {', '.join(commits)}{' (with uncommitted changes)' if dirty else ''}, "
        f"run dates {span} (UTC)."
    )
    return [" ".join(lines)]


def sources_note(run_sets: list[RunSet]) -> list[str]:
    """One paragraph per folder with its provenance, to sit under a table."""
    lines = ["Blurry input: scored here by `levin_score`."]
    for runs in run_sets:
        lines += ["", *provenance_lines(runs)]
    return [*lines, ""]


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def summary_section(run_sets: list[RunSet], baseline: dict[str, tuple[float, float]]
                    ) -> list[str]:
    rows = []
    for method, psnr, ssim, source in PUBLISHED:
        rows.append([method, f"{TOTAL} of {TOTAL}", "–", f"{psnr:.3f}", f"{ssim:.3f}", "–",
                     "–", "–", f"published ({source})"])
    base_psnr = {n: v[0] for n, v in baseline.items()}
    base_ssim = {n: v[1] for n, v in baseline.items()}
    rows.append(["Blurry input (no deblurring)", f"{len(baseline)} of {TOTAL}", "–",
                 fmt(mean_of(base_psnr), 3), fmt(mean_of(base_ssim), 3), "–", "–", "–",
                 "computed here, `levin_score`"])
    for runs in run_sets:
        psnr, ssim = case_means(runs, "psnr"), case_means(runs, "ssim")
        names = list(psnr)
        spread = seed_spread(runs)
        seeds = ", ".join(map(str, runs.seeds()))
        seed_note = f"{seeds} (seed std {spread:.3f} dB)" if spread is not None else seeds
        failed = sum(r.get("status") != "ok" for r in runs.records)
        note = f"this repository; blurry input on the same images: " \
               f"{fmt(mean_of(base_psnr, names), 3)} / {fmt(mean_of(base_ssim, names), 3)}"
        if failed:
            note += f"; {failed} run(s) diverged (last good state scored)"
        rows.append([f"**{runs.label}**", f"{len(names)} of {TOTAL}", seed_note,
                     f"**{fmt(mean_of(psnr), 3)}**", f"**{fmt(mean_of(ssim), 3)}**",
                     fmt(mean_of(case_means(runs, "kernel_ncc")), 3),
                     fmt(mean_of(case_means(runs, "wall_time")), 1),
                     ", ".join(runs.values("iterations")), note])
    header = ["method", "images", "seeds", "PSNR (dB)", "SSIM", "kernel NCC",
              "time / image (s)", "iterations", "source"]
    lines = ["## Mean over the images", "", *table(header, rows), ""]
    lines += ["Published rows are means over all 32 images; a row with fewer images is not "
              "directly comparable with them (compare it with the blurry input on the same "
              "images, in its last column). Per image, seeds are averaged first.", ""]
    for runs in run_sets:
        lines += [*provenance_lines(runs), ""]
    return lines


def per_kernel_section(run_sets: list[RunSet], baseline: dict[str, tuple[float, float]]
                       ) -> list[str]:
    header = ["kernel", "size (estimated / true)", "blurry"]
    header += [f"{runs.label} (n)" for runs in run_sets]
    rows = []
    for j in sorted(KERNEL_SIZES):
        names = [f"im{i}_kernel{j}" for i in range(1, 5)]
        base = [baseline[n] for n in names if n in baseline]
        row = [str(j), f"{KERNEL_SIZES[j]} / {_TRUE_SIZES[j]}",
               _pair(np.mean([b[0] for b in base]), np.mean([b[1] for b in base]))]
        for runs in run_sets:
            psnr, ssim = case_means(runs, "psnr"), case_means(runs, "ssim")
            done = [n for n in names if n in psnr]
            row.append(f"{_pair(mean_of(psnr, done), mean_of(ssim, done))} ({len(done)})")
        rows.append(row)
    lines = ["## Per kernel (mean over images; PSNR dB / SSIM)", "", *table(header, rows)]
    return [*lines, "", *sources_note(run_sets)]



def _pair(psnr: float, ssim: float) -> str:
    return f"{fmt(psnr, 2)} / {fmt(ssim, 3)}"


def per_image_section(run_sets: list[RunSet], baseline: dict[str, tuple[float, float]]
                      ) -> list[str]:
    header = ["case", "blurry"] + [runs.label for runs in run_sets]
    names = sorted(set(baseline) | {r["case"] for rs in run_sets for r in rs.records},
                   key=_case_key)
    rows = []
    for name in names:
        row = [name, _pair(*baseline[name]) if name in baseline else "–"]
        for runs in run_sets:
            psnr, ssim = case_means(runs, "psnr"), case_means(runs, "ssim")
            row.append(_pair(psnr[name], ssim[name]) if name in psnr else "–")
        rows.append(row)
    lines = ["## Per image (seed mean; PSNR dB / SSIM)", "", *table(header, rows)]
    return [*lines, "", *sources_note(run_sets)]


def detail_section(runs: RunSet) -> list[str]:
    """Every run of one folder: per-seed scores, shift, kernel error, time."""
    header = ["case", "seed", "PSNR", "SSIM", "PSNR (float)", "shift (dy, dx)", "kernel NCC",
              "kernel L2", "NCC if rotated 180°", "iterations", "time (s)", "status"]
    rows = []
    for group in runs.by_case().values():
        for r in group:
            rows.append([
                r["case"], str(r["seed"]), fmt(r.get("psnr"), 3), fmt(r.get("ssim"), 4),
                fmt(r.get("psnr_float"), 3),
                "({:+.2f}, {:+.2f})".format(*r["shift"]) if r.get("shift") else "–",
                fmt(r.get("kernel_ncc"), 3), fmt(r.get("kernel_l2"), 4),
                fmt(r.get("kernel_ncc_rot180"), 3), str(r.get("iterations", "–")),
                fmt(r.get("wall_time"), 1), r.get("status", "?"),
            ])
    title = f"## Runs of {runs.label} ({len(runs.by_case())} of {TOTAL} images)"
    return [title, "", *provenance_lines(runs), "", *table(header, rows), ""]


# --------------------------------------------------------------------------- figures


def contact_sheet(runs: RunSet, cases: dict[str, LevinCase], path: Path) -> bool:
    """Blurry / restored / truth / estimated kernel / true kernel, one row per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage import io

    firsts = [group[0] for group in runs.by_case().values() if group[0]["case"] in cases]
    if not firsts:
        return False
    titles = ["blurry", "restored", "ground truth", "estimated kernel", "true kernel"]
    fig, axes = plt.subplots(len(firsts), 5, figsize=(7.5, 1.6 * len(firsts)), squeeze=False)
    for row, record in zip(axes, firsts, strict=True):
        case = cases[record["case"]]
        restored = io.imread(runs.folder / f"{record['_stem']}_image.png")
        kernel = np.load(runs.folder / f"{record['_stem']}_kernel.npy")
        panels = [case.blurry, restored, case.sharp, kernel, case.kernel]
        for k, (ax, panel) in enumerate(zip(row, panels, strict=True)):
            ax.imshow(panel, cmap="gray", vmin=0 if k < 3 else None, vmax=255 if k < 3 else None,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(record["case"], fontsize=7)
        row[1].set_title(f"seed {record['seed']}: {record['psnr']:.2f} dB, "
                         f"{record['ssim']:.3f}", fontsize=6)
        row[3].set_title(f"NCC {record['kernel_ncc']:.3f}", fontsize=6)
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_xlabel(title, fontsize=7)
        ax.xaxis.set_label_position("top")
    fig.suptitle(f"Levin benchmark, {runs.label}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return True


def convergence_plot(run_sets: list[RunSet], path: Path) -> bool:
    """PSNR against iteration and against seconds, one line per case and folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(i, r) for i, runs in enumerate(run_sets) for r in runs.records
              if r.get("convergence")]
    if not curves:
        return False
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labelled: set[int] = set()
    for index, record in curves:
        points = [p for p in record["convergence"] if p.get("psnr") is not None]
        steps = [p["step"] for p in points]
        seconds = [p["seconds"] for p in points]
        psnr = [p["psnr"] for p in points]
        colour = colours[index % len(colours)]
        label = run_sets[index].label if index not in labelled else None
        labelled.add(index)
        by_step.plot(steps, psnr, color=colour, alpha=0.6, linewidth=0.9, label=label)
        by_time.plot(seconds, psnr, color=colour, alpha=0.6, linewidth=0.9)
    by_step.set_xlabel("iteration")
    by_time.set_xlabel("seconds (scoring time excluded)")
    by_step.set_ylabel("PSNR (dB, Levin protocol)")
    by_step.legend(fontsize=8)
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
    fig.suptitle("Convergence on the Levin images (one line per image and seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="result folders of levin.py")
    parser.add_argument("--labels", nargs="+", default=None,
                        help="a name per folder (default: the folder names)")
    parser.add_argument("--out", type=Path, default=DOCS / "levin.md", help="Markdown file")
    parser.add_argument("--figures", type=Path, default=None,
                        help="folder of the PNG figures (default: beside --out)")
    parser.add_argument("--data", type=Path, default=None, help="Levin data folder")
    parser.add_argument("--notes", type=Path, default=None,
                        help="a Markdown file of hand-written findings, placed after the "
                             "protocol (so regenerating the tables keeps them)")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.folders):
        parser.error("give one label per folder")
    args.figures = args.figures or args.out.parent
    return args


def build_report(args: argparse.Namespace, argv: list[str]) -> str:
    """Write the figures and return the Markdown text."""
    labels = args.labels or [None] * len(args.folders)
    run_sets = [load_runs(f, label) for f, label in zip(args.folders, labels, strict=True)]
    cases = {case.name: case for case in load_levin(args.data)}
    baseline = blurry_baseline(list(cases.values()))
    args.figures.mkdir(parents=True, exist_ok=True)
    report_command = shlex.join(["python", "benchmarks/levin_report.py", *argv])
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# Levin et al. (2009) benchmark", "",
        f"Report written by `{report_command}` on {today} (UTC). Each table below names the "
        "commands, machines and dates of the runs it summarises; the blurry-input and "
        "published rows need none.", "",
        "Protocol (`napari_dip_deblur.metrics.levin_score`, after Levin's `comp_upto_shift`): "
        "crop 15 px from every border of the ground truth, align the estimate by the best "
        "sub-pixel shift within ±5 px (0.25 px steps, bilinear, least squared error), then "
        "PSNR (peak 255) and SSIM (Gaussian 11×11, σ 1.5, K1 0.01, K2 0.03) on the aligned "
        "crop. Restored images are scored as saved, rounded and clipped to 8 bits; the kernel "
        "NCC is the largest normalised cross-correlation with the true kernel over integer "
        "shifts (1 = identical up to shift).", "",
    ]
    if args.notes is not None:
        lines += [args.notes.read_text().strip(), ""]
    lines += summary_section(run_sets, baseline)
    lines += per_kernel_section(run_sets, baseline)
    lines += per_image_section(run_sets, baseline)
    for runs in run_sets:
        lines += detail_section(runs)
    lines += ["## Figures", ""]
    for runs in run_sets:
        sheet = args.figures / f"levin_{_slug(runs.label)}_sheet.png"
        if contact_sheet(runs, cases, sheet):
            lines += [f"![contact sheet, {runs.label}]({_link(sheet, args.out)})", ""]
    plot = args.figures / "levin_convergence.png"
    if convergence_plot(run_sets, plot):
        lines += [f"![convergence]({_link(plot, args.out)})", ""]
    else:
        lines += ["No convergence record (run levin.py with `--record-every N`).", ""]
    return "\n".join(lines)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _link(target: Path, document: Path) -> str:
    try:
        return str(target.resolve().relative_to(document.resolve().parent))
    except ValueError:
        return str(target.resolve())


def main(argv: list[str] | None = None) -> int:
    """Write the report; print where."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    text = build_report(args, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out} and figures in {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
