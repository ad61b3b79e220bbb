"""Structure files placed on the formation-energy hull of a chemical system (what ``explorer hull`` does).

::

    from explorer.relax.hull_report import place_on_hull
    report = place_on_hull(["a.cif", "b.vasp"], "Ta-W-B", reference="mp", relax=True)
    for row in report.rows:
        print(row["label"], row["status"], row.get("e_above_hull"))

Every file is read and checked against the chemical system, relaxed (``relax=True``) or evaluated as given
(a single point), given a formation energy (eV/atom) and measured against the reference hull
(:func:`explorer.relax.hull_analysis`). A file that cannot be read, holds elements outside the system, fails
to relax or gets no formation energy is a ``"failed"`` row with the reason; it never stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from monty.json import MSONable

from ..elements import parse_chemsys
from ..errors import ExplorerInputError
from ..structure_io import as_structure
from .hull import HullAnalysis, hull_analysis, reference_entries
from .relaxation import irelax
from .results import STATUS_FAILED, STATUS_OK, STATUS_UNCONVERGED, RelaxDone, finite_or_none

HULL_COLUMNS = ["label", "formula", "status", "energy_per_atom", "formation_energy_per_atom", "e_above_hull",
                "decomposition", "error"]


@dataclass
class HullReport(MSONable):
    """Structures placed on a hull. ``rows``: one dict per input, in input order: ``label``, ``formula``,
    ``status`` (``ok``, ``unconverged`` or ``failed``), ``energy_per_atom`` and, for placed ones,
    ``formation_energy_per_atom``, ``e_above_hull`` (eV/atom) and ``decomposition``; ``error`` says why a
    row failed. ``analysis``: the :class:`~explorer.relax.HullAnalysis` of the placed ones. ``results``: each
    input's :class:`~explorer.relax.RelaxResult` (None when it was not relaxed: unreadable, outside the
    system)."""

    chemsys: tuple[str, ...]
    reference: str
    rows: list[dict]
    analysis: HullAnalysis
    results: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.chemsys = tuple(self.chemsys)

    @property
    def placed(self) -> int:
        """How many inputs were placed on the hull."""
        return sum(row["status"] != STATUS_FAILED for row in self.rows)

    def summary(self) -> dict:
        """JSON-ready: ``chemsys``, ``reference`` and the ``candidates`` rows (the CLI's ``--json`` line)."""
        return {"chemsys": "-".join(self.chemsys), "reference": self.reference, "candidates": self.rows}

    def write_csv(self, path: str | os.PathLike) -> str:
        """Write the rows as CSV (columns :data:`HULL_COLUMNS`, atomically); returns the path."""
        import csv
        import io

        from ..fileio import atomic_write_text

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HULL_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        return str(atomic_write_text(path, buffer.getvalue()))


def _label(item, index: int) -> str:
    if isinstance(item, (str, os.PathLike)) and not (isinstance(item, str) and "\n" in item):
        return str(item)
    formula = getattr(getattr(item, "composition", None), "reduced_formula", None)
    return f"{index:03d}_{formula}" if formula else f"{index:03d}"


def place_on_hull(structures, chemsys, reference: str = "mp", data: str | os.PathLike | None = None,
                  potential="m3gnet", formation: str = "references", relax: bool = False, fmax: float = 0.05,
                  steps: int = 500, batch_size: int = 32, max_structures: int | None = None,
                  labels: list[str] | None = None, entries: list | None = None, callback=None,
                  reference_callback=None) -> HullReport:
    """Place ``structures`` (file paths, pymatgen Structures, ASE Atoms or CIF texts) on the hull of ``chemsys``.

    ``relax``: relax them first (at most ``steps`` FIRE steps to ``fmax`` eV/Å, ``batch_size`` in lockstep);
    else their energy is evaluated as given. ``formation``: ``"references"`` (elemental references relaxed
    with ``potential``) or ``"eform"`` (the M3GNet Eform model). ``reference``: the hull references (see
    :func:`~explorer.relax.reference_entries`; ``"ml"`` relaxes the system's MP/WBM structures with
    ``potential``, at most ``max_structures``, with ``reference_callback(done, total)`` as progress) unless
    ``entries`` are given. ``labels``: one per input (default: the path as given, else ``000_<formula>``).
    ``callback(event)``: every :func:`~explorer.relax.irelax` event. The references are built before
    anything is read or relaxed, so a missing data file fails fast (:class:`ExplorerInputError`)."""
    from .potentials import load_potential

    elements = parse_chemsys(chemsys)
    system = chemsys if isinstance(chemsys, str) else "-".join(elements)
    structures = list(structures)
    if labels is not None and len(labels) != len(structures):
        raise ExplorerInputError(f"{len(labels)} labels for {len(structures)} structures")
    if entries is None and reference == "ml":
        if formation != "references":
            raise ExplorerInputError("reference 'ml' needs formation energies from the same potential's elemental "
                                     "references (formation='references')")
        potential = load_potential(potential)
        entries = reference_entries(elements, "ml", data, potential=potential, max_structures=max_structures,
                                    fmax=fmax, steps=steps, batch_size=batch_size, callback=reference_callback)
    elif entries is None:
        entries = reference_entries(elements, reference, data)
    rows: dict[int, dict] = {}
    items, item_labels, positions = [], [], []
    for i, item in enumerate(structures):
        label = labels[i] if labels is not None else _label(item, i)
        try:
            structure = as_structure(item)
        except ExplorerInputError as exc:
            rows[i] = {"label": label, "status": STATUS_FAILED, "error": str(exc)}
            continue
        outside = sorted({e.symbol for e in structure.composition} - set(elements))
        if outside:
            rows[i] = {"label": label, "formula": structure.composition.reduced_formula, "status": STATUS_FAILED,
                       "error": f"{', '.join(outside)} not in the chemical system {system}"}
            continue
        items.append(structure)
        item_labels.append(label)
        positions.append(i)
    results = _evaluate(items, item_labels, potential, formation, relax, fmax, steps, batch_size, callback)
    placed = []
    for i, result in zip(positions, results):
        row = {"label": result.label, "formula": None, "status": result.status, "error": result.error,
               "energy_per_atom": finite_or_none(result.energy_per_atom)}
        if result.structure is not None:
            row["formula"] = result.structure.composition.reduced_formula
        if not relax and result.status == STATUS_UNCONVERGED:
            row["status"], row["error"] = STATUS_OK, ""  # a single-point evaluation is not meant to converge
        if result.formation_energy_per_atom is None and row["status"] != STATUS_FAILED:
            row["status"], row["error"] = STATUS_FAILED, "no formation energy (missing elemental reference?)"
        if row["status"] != STATUS_FAILED:
            placed.append((i, result))
        rows[i] = row
    analysis = hull_analysis([(r.label, r.structure.composition, r.formation_energy_per_atom) for _, r in placed],
                             elements, reference, data, entries=entries)
    for (i, _), hull_row in zip(placed, analysis.candidates):
        rows[i].update(hull_row.summary())
    by_position = dict(zip(positions, results))
    return HullReport(chemsys=elements, reference=reference, rows=[rows[i] for i in sorted(rows)],
                      analysis=analysis, results=[by_position.get(i) for i in range(len(structures))])


def _evaluate(items, labels, potential, formation, relax, fmax, steps, batch_size, callback) -> list:
    """RelaxResults of ``items`` in input order (``steps=0``, a single point, unless ``relax``)."""
    if not items:
        return []
    from .potentials import load_potential

    results = {}
    events = irelax(items, potential=load_potential(potential), fmax=fmax, steps=steps if relax else 0,
                    formation=formation, labels=labels, batch_size=batch_size)
    try:
        for event in events:
            if callback is not None:
                callback(event)
            if isinstance(event, RelaxDone):
                results[event.index] = event.result
    finally:
        events.close()
    return [results[i] for i in sorted(results)]


__all__ = ["HULL_COLUMNS", "HullReport", "place_on_hull"]
