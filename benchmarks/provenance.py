"""Where and how a benchmark run was made (its command, git commit, machine and versions),
and its records as plain JSON.

Shared by the scripts that write records (``levin.py``, ``devset.py``); each record carries
this so that a figure in the docs can name the command, the commit and the machine.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str | None:
    """``git args`` in the repository, or None where there is no git (a copied tree)."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (None without git)."""
    status = git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def provenance(script: str, argv: list[str] | None) -> dict[str, Any]:
    """The record of a run of ``benchmarks/<script>`` with arguments ``argv``."""
    import torch

    args = sys.argv[1:] if argv is None else argv
    return {
        "command": shlex.join(["python", f"benchmarks/{script}", *args]),
        # A copy without git metadata (a lent GPU machine) names its commit in the environment.
        "git_commit": git("rev-parse", "HEAD") or os.environ.get("DIP_DEBLUR_SOURCE_COMMIT"),
        "git_dirty": git_dirty(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hostname": platform.node(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def jsonable(value: Any) -> Any:
    """Plain JSON types: arrays to lists, numpy scalars to Python, NaN/inf to None,
    objects with ``to_dict`` (settings) to dicts, anything else to its ``str``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)
