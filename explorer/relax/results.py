"""Relaxation results and progress events (data only; imported by the modules that relax).

:class:`RelaxResult` is MSONable (``as_dict()``/``from_dict()``, the structure as pymatgen's dict). The events
:class:`RelaxStep`, :class:`RelaxDone` and :class:`ReferenceDone` are what :func:`explorer.relax.irelax` yields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from monty.json import MSONable

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_UNCONVERGED = "unconverged"


@dataclass
class RelaxResult(MSONable):
    """Outcome of one structure. Energies in eV/atom; ``trajectory`` = energy per atom after each step
    (the first value is the starting structure). ``structure`` is the relaxed structure (the last one reached
    when unconverged; ``None`` when failed)."""

    index: int
    label: str
    status: str
    energy_per_atom: float = math.nan
    formation_energy_per_atom: float | None = None
    steps: int = 0
    structure: Any = None
    trajectory: list[float] = field(default_factory=list)
    fmax: float = math.nan
    error: str = ""
    seconds: float = 0.0
    warning: str = ""  # e.g. isolated atoms (explorer.checks.isolation_warning)

    @property
    def converged(self) -> bool:
        return self.status == STATUS_OK

    def summary(self) -> dict:
        """JSON-ready row: label, status, energies, steps, lattice lengths (Å) and volume (Å³)."""
        lattice = self.structure.lattice if self.structure is not None else None
        row = {
            "file": self.label,
            "status": self.status,
            "energy_per_atom": finite_or_none(self.energy_per_atom),
            "formation_energy_per_atom": finite_or_none(self.formation_energy_per_atom),
            "steps": self.steps,
            "a": round(lattice.a, 5) if lattice else None,
            "b": round(lattice.b, 5) if lattice else None,
            "c": round(lattice.c, 5) if lattice else None,
            "volume": round(lattice.volume, 4) if lattice else None,
        }
        if self.error:
            row["error"] = self.error
        if self.warning:
            row["warning"] = self.warning
        return row


@dataclass
class RelaxStep:
    """Event: structure ``index`` finished optimizer step ``step`` (0 = starting point)."""

    index: int
    label: str
    step: int
    energy_per_atom: float
    fmax: float


@dataclass
class RelaxDone:
    """Event: structure ``index`` is finished; ``done`` of ``total`` structures are finished so far."""

    index: int
    result: RelaxResult
    done: int
    total: int


@dataclass
class ReferenceDone:
    """Event: the elemental reference of ``element`` is known (relaxed now, or read from the cache)."""

    element: str
    energy_per_atom: float
    source: str


def finite_or_none(value, digits: int = 6) -> float | None:
    """``value`` rounded to ``digits``; None when it is None, NaN or infinite."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


__all__ = ["STATUS_FAILED", "STATUS_OK", "STATUS_UNCONVERGED", "ReferenceDone", "RelaxDone", "RelaxResult",
           "RelaxStep", "finite_or_none"]
