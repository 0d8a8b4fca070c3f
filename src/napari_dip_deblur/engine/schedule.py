"""Loss schedules and learning-rate steps, expressed as data.

A schedule is a tuple of :class:`Phase`; each phase starts at a fraction of the run and names
the weighted loss terms used from there on. Fractions (not iteration numbers) let one preset
serve any number of iterations: SelfDeblur's "MSE until iteration 1000 of 5000" is
``Phase(0.0, {"mse": 1})``, ``Phase(0.2, {"ssim": 1})``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from .losses import LOSS_TERMS

__all__ = ["Phase", "lr_factor", "phase_index", "phase_starts", "validate_phases"]


@dataclass(frozen=True)
class Phase:
    """One interval of the run with its total loss.

    Attributes
    ----------
    start : float
        Where the phase begins, as a fraction of the run in [0, 1).
    terms : Mapping[str, float]
        Loss term name (a key of ``LOSS_TERMS``) -> weight.
    kernel_lr_scale : float
        Multiplies the kernel generator's learning rate during the phase (on top of the
        step decay); > 0. A larger early rate lets a short run move a big kernel far from
        its start before a smaller one refines it.
    """

    start: float
    terms: Mapping[str, float] = field(default_factory=dict)
    kernel_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", MappingProxyType(dict(self.terms)))

    def __repr__(self) -> str:
        scale = "" if self.kernel_lr_scale == 1 else f", kernel_lr_scale={self.kernel_lr_scale}"
        return f"Phase(start={self.start}, terms={dict(self.terms)}{scale})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Phase) and self.start == other.start
                and dict(self.terms) == dict(other.terms)
                and self.kernel_lr_scale == other.kernel_lr_scale)

    def __hash__(self) -> int:
        return hash((self.start, tuple(sorted(self.terms.items())), self.kernel_lr_scale))

    def to_dict(self) -> dict:
        out: dict = {"start": self.start, "terms": dict(self.terms)}
        if self.kernel_lr_scale != 1:
            out["kernel_lr_scale"] = self.kernel_lr_scale
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Phase:
        """The inverse of :meth:`to_dict`."""
        return cls(data["start"], data["terms"], data.get("kernel_lr_scale", 1.0))


def validate_phases(phases: Sequence[Phase]) -> None:
    """Raise ``ValueError`` unless phases start at 0, increase, and name known terms."""
    if not phases:
        raise ValueError("phases must hold at least one Phase")
    if phases[0].start != 0:
        raise ValueError(f"the first phase must start at 0, got {phases[0].start}")
    for previous, current in itertools.pairwise(phases):
        if not previous.start < current.start < 1:
            raise ValueError(
                f"phase starts must increase within [0, 1), got {[p.start for p in phases]}")
    for phase in phases:
        if not phase.terms:
            raise ValueError(f"phase starting at {phase.start} has no loss terms")
        scale = phase.kernel_lr_scale
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"kernel_lr_scale must be a finite number > 0, got {scale!r} "
                             f"(phase starting at {phase.start})")
        bad = {k: w for k, w in phase.terms.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"loss weights must be finite and >= 0, got {bad}")
        unknown = set(phase.terms) - set(LOSS_TERMS)
        if unknown:
            raise ValueError(
                f"unknown loss term(s) {sorted(unknown)}; known: {sorted(LOSS_TERMS)}")


def phase_starts(phases: Sequence[Phase], total: int) -> list[int]:
    """The first iteration of each phase for a run of ``total`` iterations."""
    return [round(p.start * total) for p in phases]


def phase_index(starts: Sequence[int], step: int) -> int:
    """Index of the phase active at iteration ``step`` (0-based)."""
    index = 0
    for i, start in enumerate(starts):
        if step >= start:
            index = i
    return index


def lr_factor(step: int, total: int, milestones: Sequence[float], gamma: float) -> float:
    """Step decay: ``gamma ** (number of milestones passed)``; milestones are run fractions."""
    passed = sum(step >= round(m * total) for m in milestones)
    return gamma**passed
