"""Convex hull of formation energies (pymatgen PhaseDiagram); the interactive plot of a hull is in
:mod:`explorer.relax.hull_plotting`, placing structure files on a hull in :mod:`explorer.relax.hull_report`.

Reference modes (what the hull is built from):

* ``"mp"``: the Materials Project entries of the chemical system from ``mp_formation_energies.csv.gz``
  (columns ``task_id, composition, formation_energy_per_atom``) plus zero-energy elemental entries;
* ``"elements"``: the zero-energy elemental entries only (needs no data directory);
* ``"aflow"``: AFLOW's entries of the system (fetched from its AFLUX API, cached; see
  :mod:`explorer.relax.external_references`) plus zero-energy elemental entries;
* a path to a CSV(.gz) of ``composition, formation_energy_per_atom``: the user's own references;
* ``"ml"``: the self-consistent hull: the MP and WBM structures of the system relaxed with the same potential
  as the candidates, formation energies from that potential's elemental references (cached on disk; see
  :mod:`explorer.relax.ml_references`). The candidates' formation energies must come from the same potential
  (``formation="references"``).

Candidates are placed by their (ML) formation energy per atom and measured against the hull of the references
alone, so candidates do not shadow each other: ``e_above_hull`` < 0 means the candidate lies below the
reference hull by that much (eV/atom). ``decomposition`` lists the reference phases (atom fractions) that the
candidate's composition decomposes into.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from monty.json import MSONable

from ..elements import parse_chemsys
from ..errors import ExplorerInputError

REFERENCE_MODES = ("mp", "elements", "ml", "aflow")
MP_FORMATION_ENERGIES = "mp_formation_energies.csv.gz"
TABLE_COLUMNS = ["label", "formula", "formation_energy_per_atom", "e_above_hull", "decomposition"]
_SYMBOL = re.compile(r"[A-Z][a-z]?")


@lru_cache(maxsize=2)
def _mp_rows(path: str, mtime: float) -> list[tuple[str, str, float, frozenset]]:
    import csv
    import gzip

    rows = []
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                formula, value = row.get("composition") or "", row.get("formation_energy_per_atom") or ""
                try:
                    energy = float(value)
                except ValueError:
                    continue
                if formula and math.isfinite(energy):
                    rows.append((row.get("task_id") or "", formula, energy, frozenset(_SYMBOL.findall(formula))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExplorerInputError(f"cannot read {path}: {exc}") from None
    return rows


def reference_kind(reference) -> str:
    """The kind of a hull reference: one of :data:`REFERENCE_MODES`, or "file" for the path of an existing CSV
    (one-line error for anything else)."""
    text = str(reference)
    if text in REFERENCE_MODES:
        return text
    if Path(text).is_file():
        return "file"
    raise ExplorerInputError(f"reference must be one of {', '.join(REFERENCE_MODES)} or a CSV file of "
                             f"composition,formation_energy_per_atom; got {text!r} (no such file)")


def reference_entries(chemsys, reference: str = "mp", data: str | os.PathLike | None = None, potential=None,
                      max_structures: int | None = None, fmax: float = 0.05, steps: int = 500,
                      batch_size: int = 32, callback=None) -> list:
    """pymatgen ``PDEntry`` references of a chemical system (energies = formation energy x atoms, eV).

    Only the ``"ml"`` mode uses ``potential`` (default M3GNet), ``max_structures`` (default
    :data:`~explorer.relax.ml_references.DEFAULT_MAX_STRUCTURES`), ``fmax`` (eV/Å), ``steps``, ``batch_size``
    and ``callback(done, total)`` (progress of the reference relaxations)."""
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    elements = parse_chemsys(chemsys)
    kind = reference_kind(reference)
    if kind == "ml":
        from .ml_references import DEFAULT_MAX_STRUCTURES, MLReferences

        references = MLReferences("m3gnet" if potential is None else potential, data=data, fmax=fmax, steps=steps,
                                  batch_size=batch_size, max_structures=max_structures or DEFAULT_MAX_STRUCTURES)
        return references.pd_entries(elements, callback)
    entries = [PDEntry(Composition(symbol), 0.0, name=symbol, attribute=f"{symbol} (element)")
               for symbol in elements]
    if kind in ("aflow", "file"):
        from .external_references import aflow_entries, file_entries

        return entries + (aflow_entries(elements) if kind == "aflow" else file_entries(reference, elements))
    if kind == "mp":
        from ..config import data_file

        path = data_file(MP_FORMATION_ENERGIES, data)
        allowed = frozenset(elements)
        for task_id, formula, energy, symbols in _mp_rows(str(path), path.stat().st_mtime):
            if not symbols <= allowed or len(symbols) < 2:
                continue
            try:
                composition = Composition(formula)
            except ValueError:
                continue
            entries.append(PDEntry(composition, energy * composition.num_atoms, attribute=task_id or formula))
    return entries


@dataclass
class HullRow(MSONable):
    """One entry on the diagram. Energies in eV/atom; decomposition: reduced formula -> atom fraction."""

    label: str
    formula: str
    formation_energy_per_atom: float
    e_above_hull: float
    decomposition: dict[str, float] = field(default_factory=dict)
    kind: str = "candidate"  # or "reference"
    fractions: dict[str, float] = field(default_factory=dict)

    @property
    def stable(self) -> bool:
        return self.e_above_hull <= 1e-8

    def decomposition_text(self) -> str:
        return " + ".join(f"{amount:.4g} {formula}" for formula, amount in
                          sorted(self.decomposition.items(), key=lambda item: (-round(item[1], 9), item[0])))

    def summary(self) -> dict:
        return {"label": self.label, "formula": self.formula,
                "formation_energy_per_atom": round(self.formation_energy_per_atom, 6),
                "e_above_hull": round(self.e_above_hull, 6), "decomposition": self.decomposition_text()}


@dataclass
class HullAnalysis(MSONable):
    """Hull of one chemical system: ``candidates`` and ``references`` rows, and the pymatgen diagram."""

    chemsys: tuple[str, ...]
    reference: str
    phase_diagram: object
    candidates: list[HullRow]
    references: list[HullRow]

    def __post_init__(self):
        self.chemsys = tuple(self.chemsys)

    def table(self) -> list[dict]:
        """One row per candidate: label, formula, formation energy, e_above_hull, decomposition."""
        return [row.summary() for row in self.candidates]

    def write_csv(self, path: str | os.PathLike) -> str:
        """Write :meth:`table` as CSV (atomically); returns the path."""
        import csv
        import io

        from ..fileio import atomic_write_text

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(self.table())
        return str(atomic_write_text(path, buffer.getvalue()))


def _candidate_tuple(item) -> tuple[str, object, float]:
    """(label, composition, formation energy per atom) from a tuple, a dict or a RelaxResult."""
    if isinstance(item, dict):
        return item.get("label", ""), item["composition"], item["formation_energy_per_atom"]
    if hasattr(item, "formation_energy_per_atom") and hasattr(item, "structure"):
        if item.structure is None:
            raise ExplorerInputError(f"{item.label}: no structure (status {item.status})")
        return item.label, item.structure.composition, item.formation_energy_per_atom
    label, composition, energy = item
    return label, composition, energy


def _row(phase_diagram, entry, label: str, kind: str, elements) -> HullRow:
    decomposition, e_above_hull = phase_diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
    parts: dict[str, float] = {}
    for product, amount in decomposition.items():
        formula = product.composition.reduced_formula
        parts[formula] = parts.get(formula, 0.0) + float(amount)
    composition = entry.composition
    fractions = {symbol: composition.get_atomic_fraction(symbol) for symbol in elements}
    return HullRow(label=label, formula=composition.reduced_formula,
                   formation_energy_per_atom=entry.energy_per_atom, e_above_hull=float(e_above_hull),
                   decomposition=parts, kind=kind, fractions=fractions)


def hull_analysis(candidates, chemsys, reference: str = "mp", data: str | os.PathLike | None = None,
                  potential=None, max_structures: int | None = None, entries: list | None = None) -> HullAnalysis:
    """Place candidates on the formation-energy hull of ``chemsys``.

    ``candidates``: ``(label, composition, formation_energy_per_atom)`` tuples, dicts with those keys, or
    :class:`~explorer.relax.RelaxResult` objects. A candidate outside the chemical system or without a
    finite formation energy raises :class:`ExplorerInputError`. ``potential`` and ``max_structures``: for the
    ``"ml"`` mode (see :func:`reference_entries`). ``entries``: reference entries already computed by
    :func:`reference_entries` for this system and mode (then nothing is read or relaxed).
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    elements = parse_chemsys(chemsys)
    references = entries if entries is not None else reference_entries(elements, reference, data, potential,
                                                                       max_structures)
    phase_diagram = PhaseDiagram(references)
    allowed = set(elements)
    rows = []
    for item in candidates:
        label, composition, energy = _candidate_tuple(item)
        try:
            composition = Composition(composition)
        except ValueError as exc:
            raise ExplorerInputError(f"{label}: bad composition {composition!r}: {exc}") from None
        outside = sorted({e.symbol for e in composition.elements} - allowed)
        if outside:
            raise ExplorerInputError(f"{label}: {', '.join(outside)} not in the chemical system {'-'.join(elements)}")
        if energy is None or not math.isfinite(energy):
            raise ExplorerInputError(f"{label}: no finite formation energy")
        entry = PDEntry(composition, float(energy) * composition.num_atoms, attribute=label)
        rows.append(_row(phase_diagram, entry, label or composition.reduced_formula, "candidate", elements))
    reference_rows = [_row(phase_diagram, entry, entry.attribute or entry.name, "reference", elements)
                      for entry in references]
    return HullAnalysis(chemsys=elements, reference=reference, phase_diagram=phase_diagram, candidates=rows,
                        references=reference_rows)


__all__ = ["HullAnalysis", "HullRow", "MP_FORMATION_ENERGIES", "REFERENCE_MODES", "hull_analysis", "reference_kind",
           "reference_entries"]
