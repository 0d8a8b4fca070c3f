"""The committed Levin record: compact score lines and the report written from them."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import levin_report  # noqa: E402
import levin_scores  # noqa: E402

SCORES = REPO / "docs" / "benchmarks" / "levin-scores"


def _full_record(case: str, seed: int, psnr: float) -> dict:
    """A record shaped as benchmarks/levin.py writes one (history, settings, arrays)."""
    return {"case": case, "seed": seed, "psnr": psnr, "ssim": 0.9, "kernel_ncc": 0.8,
            "wall_time": 100.0, "kernel_size": 17, "preset": "fast", "overrides": {},
            "status": "ok", "command": "python benchmarks/levin.py --preset fast",
            "git_commit": "0" * 40, "date": "2026-12-03T00:00:00+00:00",
            "torch_version": "2.13.0+cpu", "device": "cpu",
            "history": {"step": list(range(1, 201)), "loss": [0.1] * 200},
            "settings": {"channels": 48}, "shift": [0.0, 0.25]}


def test_a_compact_line_keeps_the_scores_and_provenance_and_nothing_else():
    line = levin_scores.compact(_full_record("im1_kernel1", 0, 33.2))
    assert list(line) == list(levin_scores.FIELDS)
    assert line["psnr"] == 33.2 and line["git_commit"] == "0" * 40
    replayed = {**_full_record("im1_kernel1", 0, 33.2),
                "final_step_replay": {"command": "python benchmarks/final_step.py X",
                                      "weight": 1.25e-4}}
    assert levin_scores.compact(replayed)["final_step_replay"] == \
        "python benchmarks/final_step.py X"


def test_adding_a_line_replaces_its_case_and_seed_and_keeps_the_file_sorted(tmp_path):
    path = tmp_path / "run.jsonl"
    for case, seed, psnr in [("im2_kernel1", 0, 30.0), ("im1_kernel10", 0, 31.0),
                             ("im1_kernel2", 0, 32.0), ("im2_kernel1", 0, 29.0),
                             ("im2_kernel1", 1, 28.0)]:
        levin_scores.add_line(path, levin_scores.compact(_full_record(case, seed, psnr)))
    lines = levin_scores.read_lines(path)
    assert [(x["case"], x["seed"], x["psnr"]) for x in lines] == [
        ("im1_kernel2", 0, 32.0), ("im1_kernel10", 0, 31.0), ("im2_kernel1", 0, 29.0),
        ("im2_kernel1", 1, 28.0)]
    assert [p.name for p in tmp_path.iterdir()] == ["run.jsonl"]  # no temporary left


def test_a_result_folder_gives_one_line_per_record(tmp_path):
    for case, seed in [("im1_kernel2", 0), ("im1_kernel1", 0)]:
        (tmp_path / f"{case}_seed{seed}.json").write_text(
            json.dumps(_full_record(case, seed, 30.0)))
    (tmp_path / "im1_kernel1_seed0_kernel.npy").write_bytes(b"not read")
    lines = levin_scores.folder_lines(tmp_path)
    assert [x["case"] for x in lines] == ["im1_kernel1", "im1_kernel2"]
    with pytest.raises(SystemExit, match="no result folder"):
        levin_scores.folder_lines(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match=r"no levin\.py records"):
        levin_scores.folder_lines(empty)


def test_the_committed_score_files_are_whole_and_give_the_reported_means():
    runs = {run.label: run for run in levin_report.load_runs(SCORES)}
    fast = runs["fast (CPU)"]
    assert fast.seeds == [0, 1, 2] and len(fast.lines) == 96 and len(fast.cases) == 32
    per_seed = [np.mean([x["psnr"] for x in fast.lines if x["seed"] == s]) for s in (0, 1, 2)]
    assert np.allclose(per_seed, [33.17, 33.09, 32.97], atol=0.005)
    assert len(runs["selfdeblur (GPU)"].cases) == len(runs["staged (GPU)"].cases) == 18
    assert len(runs["blurry input"].cases) == 32
    for run in runs.values():
        assert all(np.isfinite(x["psnr"]) and 0 < x["ssim"] <= 1 for x in run.lines)


def test_the_report_is_what_its_own_command_writes_from_the_score_files():
    document = REPO / "docs" / "benchmarks" / "levin.md"
    text = document.read_text()
    command = re.search(r"Written by `(python benchmarks/levin_report\.py[^`]*)`", text)
    assert command is not None, "the report names the command that wrote it"
    words = command.group(1).split()[2:]
    args = levin_report.parse_args(words)
    rebuilt = levin_report.build_report(args.scores, document, args.archive, command.group(1))
    assert rebuilt + "\n" == text
