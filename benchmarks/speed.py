"""Seconds and FLOPs per iteration, and peak memory, of each preset at several image sizes.

Every (preset, size, kernel) case runs in its own subprocess, so its peak memory is its own
and no case warms another's caches. Ratios are taken against the `selfdeblur` preset
measured in the same run. Results go to ``benchmarks/results/speed/<device>.json`` and
``docs/benchmarks/speed.md``.

Usage::

    python benchmarks/speed.py                      # all presets, 255 (k13, k27), 512, 1024
    python benchmarks/speed.py --presets fast selfdeblur --sizes 255:27
    python benchmarks/speed.py --device cuda
    python benchmarks/speed.py --presets fast --no-reference --memory-formats channels_last \
        contiguous --warmup 3 --timed 10 --tag layout   # a section of its own

FLOPs are counted by ``torch.utils.flop_counter`` (convolutions and matrix products, forward
and backward; FFTs and element-wise work are not counted). CPU memory is the process's peak
resident size above what it held before the run; CUDA memory is ``max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "speed"
DOCS = REPO / "docs" / "benchmarks" / "speed.md"
DEFAULT_SIZES = ["255:13", "255:27", "512:27", "1024:27"]
MEMORY_CAP_GB = 18  # a case that needs more is reported as such instead of swapping


def _measure(preset: str, size: int, kernel: int, device: str, warmup: int, timed: int,
             overrides: dict) -> dict:
    """Run inside the subprocess: time ``timed`` iterations after ``warmup``."""
    import resource

    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from napari_dip_deblur import PRESETS, deblur_iter

    if device == "cpu":
        cap = MEMORY_CAP_GB << 30
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    image = np.random.default_rng(0).random((size, size)).astype(np.float32)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with FlopCounterMode(display=False) as counter:
            next(deblur_iter(image, kernel, preset=preset, iterations=1, device=device,
                             **overrides))
        flops = counter.get_total_flops()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        stamps = []
        run = deblur_iter(image, kernel, preset=preset, iterations=warmup + timed,
                          yield_every=1, device=device, **overrides)
        for snapshot in run:  # noqa: B007 - the last snapshot's settings are read below
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
        seconds = float(np.median(np.diff(stamps[warmup - 1:])))
        settings = snapshot.settings
    except (MemoryError, RuntimeError) as error:
        return {"error": f"{type(error).__name__}: {str(error)[:200]}"}
    as_run = PRESETS[preset].for_kernel((kernel, kernel))  # fast: crop and length by size
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 2**20
    return {"s_per_iteration": seconds, "gflop_per_iteration": flops / 1e9,
            "peak_memory_gb": peak, "device_name": settings["device"],
            "blur": settings["blur"], "precision": settings["precision"],
            "memory_format": settings["memory_format"],
            "channels": settings["channels"],
            # What one iteration fitted: the whole image, or the preset's crop of it.
            "fitted": list(settings["estimation_region"][2:]) if settings.get(
                "estimation_region") else [size, size],
            "iterations_preset": as_run.iterations,
            "iterations_per_run": as_run.run_iterations()}


def _run_case(args: argparse.Namespace, preset: str, size: int, kernel: int,
              memory_format: str) -> dict:
    timed = args.timed or (3 if size <= 512 else 2)
    overrides = {} if memory_format == "preset" else {"memory_format": memory_format}
    spec = json.dumps([preset, size, kernel, args.device, args.warmup, timed, overrides])
    here = str(Path(__file__).parent)
    code = (f"import json, sys; sys.path.insert(0, {here!r}); from speed import _measure; "
            f"print(json.dumps(_measure(*json.loads({spec!r}))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=args.timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from napari_dip_deblur.engine.solver import MEMORY_FORMATS

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["selfdeblur", "staged", "fast"])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, metavar="SIZE:KERNEL")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per case")
    parser.add_argument("--memory-formats", nargs="+", default=["preset"],
                        choices=["preset", *MEMORY_FORMATS],
                        help="activation layouts to time each case in ('preset': its own)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--timed", type=int, default=None,
                        help="timed iterations (default: 3, or 2 above 512 px)")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not add the selfdeblur preset (no ratio column then)")
    parser.add_argument("--tag", default=None,
                        help="write to <device>-<tag>.json, a section of its own")
    args = parser.parse_args()
    presets = list(dict.fromkeys(([] if args.no_reference else ["selfdeblur"])
                                 + args.presets))
    cases = [(int(s.split(":")[0]), int(s.split(":")[1])) for s in args.sizes]

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.device.replace(":", "") + (f"-{args.tag}" if args.tag else "")
    out = RESULTS / f"{stem}.json"
    record = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "tag": args.tag, "warmup": args.warmup, "timed": args.timed,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "rows": [],
    }
    for (size, kernel), preset, memory_format in itertools.product(
            cases, presets, args.memory_formats):
        row = {"preset": preset, "size": size, "kernel": kernel,
               "memory_format_asked": memory_format,
               **_run_case(args, preset, size, kernel, memory_format)}
        record["rows"].append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps(record, indent=1))  # incremental
    write_report()
    print(f"wrote {out} and {DOCS}")


def write_report() -> None:
    """``docs/benchmarks/speed.md`` from every device's JSON in the results folder."""
    # Each device's main table first, then its tagged studies.
    paths = sorted(RESULTS.glob("*.json"), key=lambda p: (p.stem.split("-")[0], p.stem))
    sections = [_markdown(json.loads(path.read_text())) for path in paths]
    intro = ("# Speed and memory per iteration\n\n"
             "One section per machine, then one per tagged study (`--tag`) on it; rerun "
             "`benchmarks/speed.py` with the same options to refresh a section.\n\n")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(intro + "\n".join(sections))


def _markdown(record: dict) -> str:
    from napari_dip_deblur import PRESETS

    rows = record["rows"]
    device = next((r["device_name"] for r in rows if "device_name" in r), "?")
    warmup = record.get("warmup", 2)
    timed = f"{record['timed']}" if record.get("timed") else "3 (2 at 1024 px)"
    lines = [
        f"## {device}" + (f": {record['tag']}" if record.get("tag") else ""),
        "",
        f"Made by `{record['command']}` on {record['date'][:10]} ({device}, "
        f"{record['cpu_count']} logical CPUs, {record['platform']}, Python "
        f"{record['python']}). Each case ran in its own process: {warmup} warm-up "
        f"iterations, then the median of {timed} timed ones. The ratio compares with "
        "`selfdeblur` at the same size, measured in the same run. GFLOP counts "
        "convolutions and matrix products (forward + backward) only.",
        "",
        "| size | kernel | preset | fitted | s / iteration | ratio to selfdeblur "
        "| GFLOP / iteration | peak memory (GB) | blur | precision | layout "
        "| iterations per run (now) | est. s / run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['size']} | {row['kernel']} | {row['preset']} | | "
                         f"failed: {row['error']} | | | | | | | | |")
            continue
        # The same layout asked (records from before layouts were asked have none).
        ref = next((r for r in rows if r["preset"] == "selfdeblur" and r["size"] == row["size"]
                    and r["kernel"] == row["kernel"] and "s_per_iteration" in r
                    and r.get("memory_format_asked") == row.get("memory_format_asked")), None)
        speedup = ref["s_per_iteration"] / row["s_per_iteration"] if ref else None
        ratio = "–" if speedup is None else "1" if ref is row else \
            "about the same" if 0.9 < speedup < 1.1 else f"{speedup:.1f}x faster"
        # The iterations of a run of the preset as it is now (the time per iteration does
        # not depend on them), so the estimate follows preset changes; but not where the
        # preset now fits a crop and the row timed the whole image (rows from before
        # `estimation_crop`): its iterations cost differently now.
        preset = PRESETS.get(row["preset"])
        if preset:  # as it runs for this kernel size (fast: crop and length)
            preset = preset.for_kernel((row["kernel"], row["kernel"]))
        fitted = row.get("fitted", [row["size"], row["size"]])
        iterations = preset.run_iterations() if preset else row["iterations_preset"]
        crop = preset.estimation_crop if preset else None
        stale = crop is not None and max(fitted) > crop
        estimate = "– (the preset fits a crop now)" if stale \
            else f"{row['s_per_iteration'] * iterations:.0f}"
        lines.append(
            f"| {row['size']} | {row['kernel']} | {row['preset']} | "
            f"{fitted[0]} x {fitted[1]} | "
            f"{row['s_per_iteration']:.3f} | {ratio} | {row['gflop_per_iteration']:.1f} | "
            f"{row['peak_memory_gb']:.2f} | {row['blur']} | {row['precision']} | "
            f"{row.get('memory_format', 'contiguous')} | {iterations} | {estimate} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
