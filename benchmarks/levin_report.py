"""Write ``docs/benchmarks/levin.md`` from the compact Levin score files.

Reads every JSON lines file of per-image scores in ``docs/benchmarks/levin-scores/`` (written
by ``benchmarks/levin.py --scores`` or ``benchmarks/levin_scores.py``), groups the lines by
preset and device, and writes one table: per preset, the mean PSNR / SSIM, the spread over
seeds (per-seed means, the median and largest per-image range across seeds, the worst image
of any seed), the per-kernel means, beside the published figures and the blurry input. Then
where each figure comes from (commands, commits, dates, machines, as the lines record them)
and the contact sheet named by ``levin-scores/contact-sheet.json``. The text depends on the
score files alone, so regenerating it without new runs changes nothing.

Examples
--------
The report::

    python benchmarks/levin_report.py --archive COMMIT

A new contact sheet from a local result folder of ``levin.py`` (images and kernels are in the
folder, not in the score files)::

    python benchmarks/levin_report.py --archive COMMIT --sheet-from benchmarks/results/fast
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from levin_scores import read_lines

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks"
SCORES = DOCS / "levin-scores"
SHEET_RECORD = "contact-sheet.json"
TOTAL = 32
KERNELS = range(1, 9)
TRUE_SIZES = {1: 19, 2: 17, 3: 15, 4: 27, 5: 13, 6: 21, 7: 23, 8: 23}

# Published means over all 32 images, same protocol: (method, PSNR, SSIM, source).
PUBLISHED = {
    "selfdeblur": ("SelfDeblur (Ren et al. 2020)", 33.068, 0.931, "as reported by Lee & Choi"),
    "staged": ("staged losses (Lee & Choi)", 33.651, 0.930, "Lee & Choi"),
}
OTHER_PUBLISHED = [
    ("non-blind with the true kernel", 34.53), ("INR, best self-supervised (NeurIPS 2024)",
                                                 33.74), ("Sun et al.", 32.991),
    ("Pan et al. (dark channel)", 32.691), ("Zuo et al.", 32.662), ("Levin et al.", 31.089),
]


@dataclass
class Run:
    """The lines of one preset on one kind of device (several seeds, several files)."""

    label: str
    files: list[Path]
    lines: list[dict[str, Any]]

    @property
    def seeds(self) -> list[int]:
        return sorted({line["seed"] for line in self.lines if line["seed"] is not None})

    @property
    def cases(self) -> list[str]:
        return sorted({line["case"] for line in self.lines}, key=case_key)

    def psnr_by_case(self) -> dict[str, list[float]]:
        by_case: dict[str, list[float]] = defaultdict(list)
        for line in self.lines:
            by_case[line["case"]].append(line["psnr"])
        return by_case

    def mean(self, field: str, cases: list[str] | None = None) -> float:
        values = [line[field] for line in self.lines
                  if line.get(field) is not None and (cases is None or line["case"] in cases)]
        return float(np.mean(values)) if values else float("nan")


def case_key(name: str) -> tuple[int, int]:
    image, kernel = name.removeprefix("im").split("_kernel")
    return int(image), int(kernel)


def kernel_of(case: str) -> int:
    return case_key(case)[1]


# --------------------------------------------------------------------------- loading


def load_runs(folder: Path) -> list[Run]:
    """Every score file of ``folder``, grouped by preset and device (CPU or GPU)."""
    groups: dict[str, Run] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in read_lines(path):
            label = run_label(line)
            run = groups.setdefault(label, Run(label, [], []))
            if path not in run.files:
                run.files.append(path)
            run.lines.append(line)
    if not groups:
        raise SystemExit(f"no score files (*.jsonl) in {folder}")
    order = ["blurry input"]
    return sorted(groups.values(), key=lambda r: (r.label not in order, r.label))


def run_label(line: dict[str, Any]) -> str:
    if line.get("preset") == "blurry input":
        return "blurry input"
    device = str(line.get("device") or "")
    return f"{line['preset']} ({'GPU' if device.startswith('cuda') else 'CPU'})"


# --------------------------------------------------------------------------- the table


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def summary_table(runs: list[Run]) -> list[str]:
    """One column per run and per published figure; one row per statistic."""
    measured = [r for r in runs if r.label != "blurry input"]
    blurry = next((r for r in runs if r.label == "blurry input"), None)
    partial = [r for r in measured if len(r.cases) < TOTAL]
    shared = sorted(set.intersection(*(set(r.cases) for r in partial)), key=case_key) \
        if partial else []
    columns = ([blurry] if blurry else []) + measured
    header = ["", *(f"**{r.label}**" for r in columns)]
    published = [PUBLISHED[r.label.split(" (")[0]] for r in measured
                 if r.label.split(" (")[0] in PUBLISHED]
    header += [f"{name}, published" for name, *_ in published]
    blank = ["–"] * len(published)

    def row(title: str, cells: list[str], extra: list[str] | None = None) -> list[str]:
        return [title, *cells, *(extra if extra is not None else blank)]

    rows = [
        row("images", [f"{len(r.cases)} of {TOTAL}" for r in columns],
            [f"{TOTAL} of {TOTAL}"] * len(published)),
        row("seeds", [", ".join(map(str, r.seeds)) or "–" for r in columns]),
        row("**mean PSNR (dB) / SSIM**",
            [f"**{fmt(r.mean('psnr'))}** / {fmt(r.mean('ssim'), 3)}" for r in columns],
            [f"{psnr:.2f} / {ssim:.3f}" for _, psnr, ssim, _ in published]),
    ]
    if shared:
        rows.append(row(f"on the {len(shared)} images of the GPU runs",
                        [f"{fmt(r.mean('psnr', shared))} / {fmt(r.mean('ssim', shared), 3)}"
                         for r in columns]))
    rows += [
        row("mean PSNR per seed", [per_seed(r) for r in columns]),
        row("per-image PSNR range over the seeds: median / largest",
            [seed_range(r) for r in columns]),
        row("worst image (PSNR, seed)", [worst(r) for r in columns]),
        row("kernel NCC (mean)", [fmt(r.mean("kernel_ncc"), 3) for r in columns]),
        row("seconds per image: median (range)", [seconds(r) for r in columns]),
        row("seconds for all its images, per seed", [totals(r) for r in columns]),
    ]
    for j in KERNELS:
        names = [f"im{i}_kernel{j}" for i in range(1, 5)]
        sizes = sorted({line["kernel_size"] for r in columns for line in r.lines
                        if kernel_of(line["case"]) == j})
        title = f"kernel {j} ({'/'.join(map(str, sizes))} px; true {TRUE_SIZES[j]}): PSNR"
        rows.append(row(title, [per_kernel(r, names) for r in columns]))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def per_seed(run: Run) -> str:
    if len(run.seeds) < 2:
        return "–"
    means = [np.mean([line["psnr"] for line in run.lines if line["seed"] == seed])
             for seed in run.seeds]
    return " / ".join(fmt(m) for m in means)


def seed_range(run: Run) -> str:
    if len(run.seeds) < 2:
        return "–"
    ranges = [max(v) - min(v) for v in run.psnr_by_case().values() if len(v) > 1]
    return f"{fmt(float(np.median(ranges)))} / {fmt(max(ranges))}"


def worst(run: Run) -> str:
    line = min(run.lines, key=lambda line: line["psnr"])
    seed = "" if line["seed"] is None else f", {line['seed']}"
    return f"{line['case']} ({fmt(line['psnr'])}{seed})"


def seconds(run: Run) -> str:
    times = [line["wall_time"] for line in run.lines if line.get("wall_time") is not None]
    if not times:
        return "–"
    return f"{np.median(times):.0f} ({min(times):.0f}-{max(times):.0f})"


def totals(run: Run) -> str:
    sums = [sum(line["wall_time"] for line in run.lines
                if line["seed"] == seed and line.get("wall_time") is not None)
            for seed in run.seeds]
    return " / ".join(f"{total:.0f}" for total in sums) or "–"


def per_kernel(run: Run, names: list[str]) -> str:
    done = [name for name in names if name in run.cases]
    if not done:
        return "–"
    return fmt(run.mean("psnr", done)) + ("" if len(done) == 4 else f" ({len(done)})")


# --------------------------------------------------------------------------- provenance


def provenance(run: Run) -> list[str]:
    """Where one column comes from: files, commands, commits, dates, machines."""
    files = ", ".join(f"`{relative(path)}`" for path in run.files)
    if run.label == "blurry input":
        return [f"- *blurry input* ({files}): the inputs scored as the restored images are, "
                "`python benchmarks/levin_scores.py --blurry`."]
    dates = sorted(line["date"][:10] for line in run.lines if line.get("date"))
    commits = sorted({line["git_commit"][:7] for line in run.lines if line.get("git_commit")})
    missing = sum(not line.get("git_commit") for line in run.lines)
    commit_text = ", ".join(f"`{c}`" for c in commits)
    if missing:
        commit_text += f" ({missing} run(s) record none)"
    devices = sorted({str(line.get("device")) for line in run.lines})
    torches = sorted({str(line.get("torch_version")) for line in run.lines})
    text = [f"- *{run.label}* ({files}): run {dates[0]} to {dates[-1]} (UTC) on "
            f"{', '.join(devices)}, torch {', '.join(torches)}, code of {commit_text}; "
            "made by"]
    text += [f"  `{command}`" for command in merged_commands(run.lines)]
    replays = sorted({line["final_step_replay"] for line in run.lines
                      if line.get("final_step_replay")})
    if replays:
        text.append("  with the final deconvolution then redone at the preset's weight (a script "
                    "of the archive commit named above) by")
        text += [f"  `{command}`" for command in replays]
    return text


def merged_commands(lines: list[dict[str, Any]]) -> list[str]:
    """The runs' commands, those that differ only in their ``--images`` made one."""
    images: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        words = shlex.split(line["command"])
        if "--images" not in words:
            images.setdefault(line["command"], [])
            continue
        start = words.index("--images") + 1
        end = next((i for i in range(start, len(words)) if words[i].startswith("--")),
                   len(words))
        rest = shlex.join(words[:start - 1] + words[end:])
        images[rest] += [w for w in words[start:end] if w not in images[rest]]
    commands = []
    for rest, names in images.items():
        commands.append(f"{rest} --images {' '.join(sorted(names, key=case_key))}"
                        if names else rest)
    return sorted(commands)


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- contact sheet


def sheet_section(folder: Path, document: Path) -> list[str]:
    """The contact sheet named by ``contact-sheet.json``, with how it was made."""
    path = folder / SHEET_RECORD
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    image = (folder / record["image"]).resolve()
    link = image.relative_to(document.resolve().parent) if image.is_relative_to(
        document.resolve().parent) else image
    return ["## Contact sheet", "",
            f"{record['what']} Made by `{record['command']}` at commit "
            f"`{record['git_commit']}` ({record['date']}).", "",
            f"![contact sheet, {record['run']}]({link.as_posix()})", ""]


def write_sheet(result_folder: Path, folder: Path, label: str) -> None:
    """A new contact sheet from a ``levin.py`` result folder (first seed of each image),
    and its ``contact-sheet.json``."""
    import subprocess
    from datetime import datetime, timezone

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage import io

    from napari_dip_deblur.levin import load_levin

    cases = {case.name: case for case in load_levin(None)}
    records = {}
    for record_path in sorted(result_folder.glob("im*_kernel*_seed*.json")):
        record = json.loads(record_path.read_text())
        if record["case"] not in records or record["seed"] < records[record["case"]]["seed"]:
            records[record["case"]] = {**record, "_stem": record_path.stem}
    if not records:
        raise SystemExit(f"no levin.py records in {result_folder}")
    firsts = [records[name] for name in sorted(records, key=case_key)]
    fig, axes = plt.subplots(len(firsts), 5, figsize=(7.5, 1.6 * len(firsts)), squeeze=False)
    for row, record in zip(axes, firsts, strict=True):
        case = cases[record["case"]]
        restored = io.imread(result_folder / f"{record['_stem']}_image.png")
        kernel = np.load(result_folder / f"{record['_stem']}_kernel.npy")
        for k, (ax, panel) in enumerate(zip(row, [case.blurry, restored, case.sharp, kernel,
                                                  case.kernel], strict=True)):
            ax.imshow(panel, cmap="gray", vmin=0 if k < 3 else None,
                      vmax=255 if k < 3 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(record["case"], fontsize=7)
        row[1].set_title(f"seed {record['seed']}: {record['psnr']:.2f} dB, "
                         f"{record['ssim']:.3f}", fontsize=6)
        row[3].set_title(f"NCC {record['kernel_ncc']:.3f}", fontsize=6)
    for ax, title in zip(axes[0], ["blurry", "restored", "ground truth", "estimated kernel",
                                   "true kernel"], strict=True):
        ax.set_xlabel(title, fontsize=7)
        ax.xaxis.set_label_position("top")
    fig.suptitle(f"Levin benchmark, {label}", fontsize=9)
    fig.tight_layout()
    image = DOCS / "levin_sheet.png"
    fig.savefig(image, dpi=72)
    plt.close(fig)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    record = {"run": label, "image": f"../{image.name}",
              "what": f"Blurry / restored / ground truth / estimated kernel / true kernel "
                      f"for each image of `{relative(result_folder)}` (its first seed).",
              "command": shlex.join(["python", "benchmarks/levin_report.py", *sys.argv[1:]]),
              "git_commit": commit,
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    (folder / SHEET_RECORD).write_text(json.dumps(record, indent=1) + "\n")


# --------------------------------------------------------------------------- main


PROTOCOL = (
    "**Protocol** (`napari_dip_deblur.metrics.levin_score`, after Levin et al.'s "
    "`comp_upto_shift`): the 32 images of Levin et al. (2009), 4 scenes x 8 motion kernels "
    "of 13-27 px, each run with the kernel size the SelfDeblur protocol asks (`kernel_size`, "
    "a little under or over the true one). Crop 15 px from every border of the ground "
    "truth, align the estimate by the best sub-pixel shift within ±5 px (0.25 px steps), "
    "then PSNR (peak 255) and SSIM (Gaussian 11x11, sigma 1.5) on the aligned crop, of the "
    "restored image rounded and clipped to 8 bits. Kernel NCC: the largest normalised "
    "cross-correlation of the estimated with the true kernel over integer shifts. Means are "
    "over every image and seed; a column with fewer than 32 images is comparable with the "
    "others on its own images only (the row *on the N images of the GPU runs*).")


# What the recorded seconds do not say by themselves.
TIMING = (
    "Seconds are each run's own wall time as recorded (optimisation and final step). The "
    "GPU runs shared one device with 2-11 others (3-12 at a time), so they are not "
    "lone-run times: a lone `selfdeblur` run takes about 110 s on an H100 "
    "([speed](speed.md)). `fast` ran one image at a time on a 2-core CPU; at seed 1, "
    "`im2_kernel7` (939 s) ran beside tests and a profile, so that seed's total is not a "
    "measurement (its other 31 images took 89-117 s each).")


def build_report(folder: Path, out: Path, archive: str | None, command: str) -> str:
    runs = load_runs(folder)
    lines = ["# Levin et al. (2009) benchmark", "", PROTOCOL, "",
             "## The presets as they are", "", *summary_table(runs), "",
             TIMING, "",
             "Other published means over the 32 images: "
             + "; ".join(f"{name} {psnr:.2f}" for name, psnr in OTHER_PUBLISHED) + " dB.", "",
             "## Where the figures come from", "",
             f"Each line of the score files in `{relative(folder)}/` is one image and seed, "
             "with the command, commit, date, torch version and device of its run. Written "
             f"by `{command}` from those files alone."]
    if archive:
        lines[-1] += (f" The runs' full records (images, kernels, loss histories) and the "
                      f"experiments behind the presets' settings are in commit `{archive}` "
                      "(`benchmarks/results/`; why each setting: "
                      "[decisions](../decisions.md)).")
    lines.append("")
    for run in runs:
        lines += provenance(run)
    lines += ["", *sheet_section(folder, out)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, default=SCORES,
                        help="folder of compact score files (*.jsonl)")
    parser.add_argument("--out", type=Path, default=DOCS / "levin.md", help="Markdown file")
    parser.add_argument("--archive", default=None, metavar="COMMIT",
                        help="the commit that still has the runs' full result folders")
    parser.add_argument("--sheet-from", type=Path, default=None, metavar="FOLDER",
                        help="write a new contact sheet from this levin.py result folder")
    parser.add_argument("--sheet-label", default="fast (CPU), seed 0",
                        help="the run's name on a new contact sheet")
    return parser.parse_args(argv)


def regenerating(args: argparse.Namespace) -> list[str]:
    """The arguments that regenerate this text (not those that made a new sheet)."""
    words = []
    if args.scores.resolve() != SCORES.resolve():
        words += ["--scores", relative(args.scores)]
    if args.out.resolve() != (DOCS / "levin.md").resolve():
        words += ["--out", relative(args.out)]
    if args.archive:
        words += ["--archive", args.archive]
    return words


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.sheet_from is not None:
        write_sheet(args.sheet_from, args.scores, args.sheet_label)
    command = shlex.join(["python", "benchmarks/levin_report.py", *regenerating(args)])
    text = build_report(args.scores, args.out, args.archive, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(args.out.name + ".tmp")
    temporary.write_text(text + "\n")
    temporary.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
