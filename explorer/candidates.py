"""Candidates: a sampled structure with the conditions it was asked for and its checks (validity, detected
space group), whatever family or retrieval method produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

from monty.json import MSONable
from pymatgen.core import Structure

from .checks import closest_pair
from .representation import MIN_DISTANCE, detect_spacegroup, min_interatomic_distance, symmetrize
from .spacegroups import symbol


@dataclass
class Candidate(MSONable):
    """One generated structure with the conditions it was asked for.

    ``target_energy`` is the requested formation energy (eV/atom); ``min_distance`` is the shortest
    interatomic distance (Å); ``valid`` is False when two atoms are closer than 0.5 Å or than 0.6 × the sum of
    their covalent radii (:mod:`explorer.checks`), and ``invalid_reason`` then says which pair, how close."""

    structure: Structure
    formula: str
    spacegroup_requested: int
    spacegroup_detected: int
    target_energy: float
    min_distance: float
    valid: bool
    model: str = ""
    steps: int = 0
    seed: int = 0
    index: int = 0
    extra: dict = field(default_factory=dict)
    invalid_reason: str = ""

    def summary(self) -> dict:
        """The row written to ``candidates.csv``."""
        return {"index": self.index, "formula": self.formula, "spacegroup_requested": self.spacegroup_requested,
                "spacegroup_detected": self.spacegroup_detected, "target_energy": self.target_energy,
                "min_distance": round(self.min_distance, 4), "valid": self.valid, "n_sites": len(self.structure),
                "volume": round(self.structure.volume, 3), "model": self.model, "steps": self.steps,
                "seed": self.seed, "source": self.source(), "invalid_reason": self.invalid_reason}

    def source(self) -> str:
        """Where a prototype candidate comes from ("CsCl mp-22865", "K2PtCl6 mp-23543 distorted from Fm-3m" for
        a template of a parent group), with ", relaxed (M3GNet)" when the pipeline relaxed it; for a network
        sample "relaxed (M3GNet)" when the pipeline relaxed it, else ""."""
        extra = self.extra or {}
        relaxed = "relaxed (M3GNet)" if "energy_per_atom" in extra.get("relaxed", {}) else ""
        prototype = extra.get("prototype")
        if not prototype:
            return relaxed
        parent = prototype.get("parent_spacegroup")
        distorted = f" distorted from {symbol(parent)}" if parent else ""
        return f"{prototype['source_formula']} {prototype['source_id']}{distorted}" + (f", {relaxed}" if relaxed
                                                                                       else "")


def validity(structure: Structure) -> tuple[float, bool, str]:
    """(shortest distance in Å, valid, reason when not valid): see :class:`Candidate`."""
    check = closest_pair(structure)
    if check.degenerate:  # no distance to measure (pymatgen's neighbour search fails on such cells)
        return check.distance, False, check.reason
    distance = min_interatomic_distance(structure)
    reason = check.reason or (f"atoms {distance:.2f} Å apart (< {MIN_DISTANCE} Å)" if distance < MIN_DISTANCE else "")
    return distance, not reason, reason


def condition_score(structure: Structure, spacegroup: int) -> tuple[bool, bool]:
    """How well a sample meets its conditions, for choosing among draws: (valid, see :func:`validity`; spglib
    (symprec 0.1) finds the requested space group). Uses no reference structure."""
    return validity(structure)[1], detect_spacegroup(structure) == int(spacegroup)


def best_draw(options: list[Structure], spacegroup: int | None) -> Structure:
    """The sample with the best :func:`condition_score` among ``options`` (the first one on ties)."""
    scores = [condition_score(s, int(spacegroup or 0)) for s in options]
    return options[max(range(len(options)), key=lambda k: (scores[k], -k))]


def snap_to_spacegroup(structure: Structure, spacegroup: int) -> tuple[Structure, bool]:
    """(structure refined onto ``spacegroup`` when a tolerance ≤ 0.4 Å allows it, else unchanged; snapped?)"""
    refined = symmetrize(structure, spacegroup)
    return (structure, False) if refined is None else (refined, True)


def make_candidate(structure: Structure, spacegroup: int | None, energy: float | None, snap: bool = False,
                   **info) -> Candidate:
    """Candidate with its checks; ``snap`` refines the structure onto the requested space group first (0 / NaN
    stand for a space group / energy that was not requested)."""
    snapped = False
    if snap and spacegroup:
        structure, snapped = snap_to_spacegroup(structure, spacegroup)
    distance, valid, reason = validity(structure)
    return Candidate(structure=structure, formula=structure.composition.reduced_formula,
                     spacegroup_requested=int(spacegroup or 0), spacegroup_detected=detect_spacegroup(structure),
                     target_energy=float("nan") if energy is None else float(energy), min_distance=distance,
                     valid=valid, invalid_reason=reason, extra={"snapped": snapped}, **info)
