"""What a blind run did beyond its iterations, in words: shared by the CLI's summary and the
widget's status line, so both say the same."""

from __future__ import annotations

from typing import Any

__all__ = ["run_notes"]


def run_notes(settings: dict[str, Any]) -> list[str]:
    """Notes on a run's settings record: which start was kept (``Settings.starts``) and,
    once the run has ended, what the fit check did (``Settings.retry_mae_ratio``)."""
    notes = []
    seeds = settings.get("start_seeds")
    if seeds and "kept_start" in settings:
        notes.append(f"kept start {settings['kept_start']} of {len(seeds)}, the sharpest "
                     f"after {settings['start_trial_iterations']} iterations")
    kept = settings.get("kept_attempt")
    if kept is not None:
        notes.append("the first fit failed the fit check; kept "
                     + ("the second attempt, from a centred kernel" if kept == 2
                        else "the first attempt, which fit better than the second"))
    return notes
