"""Run many Levin cases at once on one device, within a fixed time budget.

A lent GPU is held for minutes, and one SelfDeblur run leaves most of it idle, so the cases
run as concurrent ``benchmarks/levin.py`` processes. This driver starts them, starts no case
it cannot finish before ``--deadline``, stops the ones still running there, and packs the
result folders and logs into one archive every ``--pack-every`` seconds and at the end (so a
call killed from outside still returns what had finished).

Usage::

    python benchmarks/levin_pool.py --tasks selfdeblur:im1_kernel2 staged:im1_kernel2 \\
        --workers 12 --deadline 540 --expected 480 --pack $OUT/results.tar.gz \\
        -- --device cuda --data .levin-data --record-every 250

Each task ``PRESET:IMAGE`` runs ``levin.py --preset PRESET --images IMAGE --tag
<tag-prefix>PRESET`` plus the arguments after ``--``; its output goes to
``benchmarks/results/logs/PRESET_IMAGE.txt``. Finished cases are skipped by levin.py itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LOGS = RESULTS / "logs"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Split the driver's own arguments from those passed on to every levin.py run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, passed = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", required=True, metavar="PRESET:IMAGE")
    parser.add_argument("--workers", type=int, default=8, help="runs at a time")
    parser.add_argument("--deadline", type=float, required=True,
                        help="seconds from start at which every run still going is stopped")
    parser.add_argument("--expected", type=float, required=True,
                        help="seconds one run takes with --workers sharing the device")
    parser.add_argument("--tag-prefix", default="gpu-")
    parser.add_argument("--pack", type=Path, default=None, help="tar.gz of results and logs")
    parser.add_argument("--pack-every", type=float, default=30.0)
    args = parser.parse_args(argv)
    for task in args.tasks:
        if task.count(":") != 1:
            parser.error(f"task {task!r} is not PRESET:IMAGE")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return args, passed


def pack(archive: Path, folders: list[Path]) -> None:
    """Write the archive next to its final name, then rename it (never half-written)."""
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for folder in folders:
            if folder.exists():
                tar.add(folder, arcname=str(folder.relative_to(REPO)))
    partial.replace(archive)


def main(argv: list[str] | None = None) -> int:
    args, passed = parse_args(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    presets = sorted({task.split(":")[0] for task in args.tasks})
    folders = [RESULTS / f"{args.tag_prefix}{preset}" for preset in presets] + [LOGS]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

    start = time.monotonic()
    queue = list(args.tasks)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    last_pack = start
    outcome: dict[str, str] = {}
    while queue or running:
        now = time.monotonic() - start
        for task, (proc, began) in list(running.items()):
            if proc.poll() is not None:
                outcome[task] = f"exit {proc.returncode} after {now - began:.0f} s"
                print(f"[{now:6.0f} s] {task}: {outcome[task]}", flush=True)
                del running[task]
            elif now >= args.deadline:
                proc.kill()
                proc.wait()
                outcome[task] = f"stopped at the deadline after {now - began:.0f} s"
                print(f"[{now:6.0f} s] {task}: {outcome[task]}", flush=True)
                del running[task]
        while queue and len(running) < args.workers:
            task = queue.pop(0)
            if now + args.expected > args.deadline:
                outcome[task] = "not started: it could not finish before the deadline"
                print(f"[{now:6.0f} s] {task}: {outcome[task]}", flush=True)
                continue
            preset, image = task.split(":")
            command = [sys.executable, str(REPO / "benchmarks" / "levin.py"),
                       "--preset", preset, "--images", image,
                       "--tag", f"{args.tag_prefix}{preset}", *passed]
            with open(LOGS / f"{preset}_{image}.txt", "w") as log:  # the child keeps a copy
                running[task] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                  cwd=REPO, env=env), now)
            print(f"[{now:6.0f} s] {task}: started", flush=True)
        if args.pack and time.monotonic() - last_pack >= args.pack_every:
            pack(args.pack, folders)
            last_pack = time.monotonic()
        time.sleep(1.0)
    if args.pack:
        pack(args.pack, folders)
    finished = sum(text.startswith("exit 0") for text in outcome.values())
    print(f"{finished} of {len(args.tasks)} tasks finished in {time.monotonic() - start:.0f} s")
    return 0 if finished == len(args.tasks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
