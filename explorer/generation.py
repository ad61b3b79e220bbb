"""``explorer.generate``: conditional generation of candidate crystals from a formula, a space group and
a target formation energy."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from monty.json import MSONable
from pymatgen.core import Composition, Structure

from .elements import atomic_number
from .errors import ExplorerInputError
from .models import make_conditions
from .objectives import METHODS
from .pipeline import GenerationPipeline
from .representation import (
    MAX_SITES,
    check_site_count,
    decode,
    detect_spacegroup,
    min_interatomic_distance,
    symmetrize,
)
from .spacegroups import check_spacegroup

MIN_DISTANCE = 0.5  # Å: candidates with closer atoms are kept but labelled invalid


@dataclass
class Candidate(MSONable):
    """One generated structure with the conditions it was asked for.

    ``target_energy`` is the requested formation energy (eV/atom); ``min_distance`` is the shortest
    interatomic distance (Å); ``valid`` is False when two atoms are closer than 0.5 Å."""

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

    def summary(self) -> dict:
        """The row written to ``candidates.csv``."""
        return {"index": self.index, "formula": self.formula, "spacegroup_requested": self.spacegroup_requested,
                "spacegroup_detected": self.spacegroup_detected, "target_energy": self.target_energy,
                "min_distance": round(self.min_distance, 4), "valid": self.valid, "n_sites": len(self.structure),
                "volume": round(self.structure.volume, 3), "model": self.model, "steps": self.steps,
                "seed": self.seed, "source": self.source()}

    def source(self) -> str:
        """Where a prototype candidate comes from ("CsCl mp-22865"); "" for sampled ones."""
        prototype = (self.extra or {}).get("prototype")
        return f"{prototype['source_formula']} {prototype['source_id']}" if prototype else ""


def parse_formula(formula: str) -> list[int]:
    """Cell contents of a formula such as 'TaWB6' or 'Ta2 W2 B12' -> sorted atomic numbers."""
    if not isinstance(formula, str) or not formula.strip():
        raise ExplorerInputError("formula is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            composition = Composition(formula)
    except Exception:
        raise ExplorerInputError(f"cannot parse formula {formula!r} (unknown element?)") from None
    numbers = []
    for element, amount in composition.items():
        symbol = getattr(element, "symbol", str(element))
        z = atomic_number(symbol)
        if abs(amount - round(amount)) > 1e-6 or amount <= 0:
            raise ExplorerInputError(f"formula {formula!r}: {symbol} count must be a positive integer")
        numbers += [z] * int(round(amount))
    check_site_count(len(numbers))
    return sorted(numbers)


def check_energy(energy) -> float:
    try:
        value = float(energy)
    except (TypeError, ValueError):
        raise ExplorerInputError(f"energy must be a number (eV/atom), got {energy!r}") from None
    if not math.isfinite(value):
        raise ExplorerInputError(f"energy must be finite, got {energy!r}")
    if not -10.0 <= value <= 10.0:
        raise ExplorerInputError(f"energy {value} eV/atom is outside the supported range -10..10")
    return value


def sample_structures(pipeline: GenerationPipeline, species: list[list[int]], spacegroups, energies,
                      steps: int = 100, seed: int = 0, batch_size: int = 64, callback=None) -> list[Structure]:
    """One structure per condition (species, space group, energy), batched by similar size."""
    n = len(species)
    order = np.argsort([len(s) for s in species], kind="stable")
    generator = torch.Generator().manual_seed(seed)
    results: list[Structure | None] = [None] * n
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        padded = np.zeros((len(index), MAX_SITES), dtype=np.int64)
        for row, i in enumerate(index):
            padded[row, : len(species[i])] = species[i]
        cond = make_conditions(padded, np.asarray(spacegroups)[index], np.asarray(energies, dtype=np.float32)[index])
        matrices = pipeline(cond, steps=steps, generator=generator).numpy()
        for row, i in enumerate(index):
            results[i] = decode(matrices[row], species[i])
        if callback is not None:
            callback(min(start + batch_size, n), n)
    return results


def condition_score(structure: Structure, spacegroup: int) -> tuple[bool, bool]:
    """How well a sample meets its conditions, for choosing among draws: (valid — no atoms closer than
    0.5 Å, spglib (symprec 0.1) finds the requested space group). Uses no reference structure."""
    return (min_interatomic_distance(structure) >= MIN_DISTANCE, detect_spacegroup(structure) == int(spacegroup))


def sample_best_of(pipeline: GenerationPipeline, species: list[list[int]], spacegroups, energies, draws: int,
                   steps: int = 100, seed: int = 0, batch_size: int = 64, callback=None) -> list[Structure]:
    """One structure per condition, chosen among ``draws`` samples by :func:`condition_score` (first draw on
    ties). Costs ``draws`` times the sampling of :func:`sample_structures`."""
    draws = int(draws)
    if draws < 1:
        raise ExplorerInputError(f"draws must be >= 1, got {draws}")
    n = len(species)
    repeated = sample_structures(pipeline, [s for s in species for _ in range(draws)],
                                 np.repeat(np.asarray(spacegroups), draws), np.repeat(np.asarray(energies), draws),
                                 steps=steps, seed=seed, batch_size=batch_size, callback=callback)
    if draws == 1:
        return repeated
    return [best_draw(repeated[i * draws : (i + 1) * draws], spacegroups[i]) for i in range(n)]


def best_draw(options: list[Structure], spacegroup: int) -> Structure:
    """The sample with the best :func:`condition_score` among ``options`` (the first one on ties)."""
    scores = [condition_score(s, int(spacegroup)) for s in options]
    return options[max(range(len(options)), key=lambda k: (scores[k], -k))]


def snap_to_spacegroup(structure: Structure, spacegroup: int) -> tuple[Structure, bool]:
    """(structure refined onto ``spacegroup`` when a tolerance ≤ 0.4 Å allows it, else unchanged; snapped?)"""
    refined = symmetrize(structure, spacegroup)
    return (structure, False) if refined is None else (refined, True)


def make_candidate(structure: Structure, spacegroup: int, energy: float, snap: bool = False, **info) -> Candidate:
    """Candidate with its checks; ``snap`` refines the structure onto the requested space group first."""
    snapped = False
    if snap:
        structure, snapped = snap_to_spacegroup(structure, spacegroup)
    distance = min_interatomic_distance(structure)
    return Candidate(structure=structure, formula=structure.composition.reduced_formula,
                     spacegroup_requested=int(spacegroup), spacegroup_detected=detect_spacegroup(structure),
                     target_energy=float(energy), min_distance=distance, valid=bool(distance >= MIN_DISTANCE),
                     extra={"snapped": snapped}, **info)


def load_pipeline(model: str | None = None, device: str = "auto"):
    """(pipeline, manifest entry) for a shipped model name ('ddpm', 'ddim', 'cfm-normal', 'cfm-uniform')."""
    from .pretrained import load_pretrained

    network, entry = load_pretrained(model)
    if entry.method not in METHODS:
        raise ExplorerInputError(f"model {entry.name!r} is a modification model; use explorer.modify / "
                                 "`explorer modify` for it")
    return GenerationPipeline(network, entry.method, entry.sampler, device=device), entry


def generate(formula: str, spacegroup: int, energy: float, n: int = 16, model: str | None = None,
             steps: int = 100, seed: int = 0, device: str = "auto", batch_size: int = 64,
             snap: bool = False, draws: int = 1, callback=None) -> list[Candidate]:
    """Generate ``n`` candidate structures of ``formula`` (cell contents) in ``spacegroup`` (1..230) with a
    target formation energy ``energy`` (eV/atom), using a shipped model (default: the manifest's best).

    ``snap=True`` refines each sample onto the requested space group where a spglib tolerance ≤ 0.4 Å
    allows it (``candidate.extra['snapped']``). ``draws > 1`` samples that many structures per candidate and
    keeps the one that best meets the conditions (valid, requested space group detected), at ``draws`` times
    the cost."""
    species = parse_formula(formula)
    spacegroup = check_spacegroup(spacegroup)
    energy = check_energy(energy)
    if int(n) < 1:
        raise ExplorerInputError(f"n must be >= 1, got {n}")
    if int(steps) < 1:
        raise ExplorerInputError(f"steps must be >= 1, got {steps}")
    pipeline, entry = load_pipeline(model, device)
    structures = sample_best_of(pipeline, [species] * int(n), [spacegroup] * int(n), [energy] * int(n), draws,
                                steps=int(steps), seed=int(seed), batch_size=batch_size, callback=callback)
    return [make_candidate(s, spacegroup, energy, snap=snap, model=entry.name, steps=int(steps), seed=int(seed),
                           index=i) for i, s in enumerate(structures)]
