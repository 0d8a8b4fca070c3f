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
    collapses = settings.get("kernel_collapse") or [None]
    if kept is not None and collapses[0] is not None:
        first = f"the first attempt's kernel {COLLAPSES[collapses[0]]}"
        if kept == 2:
            notes.append(f"{first}; kept the second attempt, from a centred kernel")
        elif len(collapses) == 2:
            second = COLLAPSES[collapses[1]].split(" (")[0]  # the words only, once
            notes.append(f"{first}, and the second's {second}; kept the first. "
                         + COLLAPSE_ADVICE)
        else:
            notes.append(f"{first}; kept it, as the second attempt failed. "
                         + COLLAPSE_ADVICE)
    elif kept is not None:
        notes.append("the first fit failed the fit check; kept "
                     + ("the second attempt, from a centred kernel" if kept == 2
                        else "the first attempt, which fit better than the second"
                        if collapses[-1] is None
                        else f"the first attempt, as the second's kernel "
                             f"{COLLAPSES[collapses[-1]]}"))
    return notes


#: What a collapsed kernel (``settings["kernel_collapse"]``) did, in words.
COLLAPSES = {
    "delta": "collapsed to a delta (over 90 % of it in one pixel: no deblurring)",
    "uniform": "spread to uniform (flat over the whole window)",
}
COLLAPSE_ADVICE = ("The result is unreliable: if the image is blurred, try another seed or "
                   "kernel size")
