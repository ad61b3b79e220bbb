"""Convex hull of formation energies (pymatgen PhaseDiagram) and an interactive hull plot (HoloViews/Bokeh).

Reference modes (what the hull is built from):

* ``"mp"``: the Materials Project entries of the chemical system from ``mp_formation_energies.csv.gz``
  (columns ``task_id, composition, formation_energy_per_atom``) plus zero-energy elemental entries;
* ``"elements"``: the zero-energy elemental entries only (needs no data directory);
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

from ..errors import ExplorerInputError

REFERENCE_MODES = ("mp", "elements", "ml")
MP_FORMATION_ENERGIES = "mp_formation_energies.csv.gz"
_SYMBOL = re.compile(r"[A-Z][a-z]?")


def parse_chemsys(chemsys) -> tuple[str, ...]:
    """``"Ta-W-B"`` (or a list of symbols) -> ``("Ta", "W", "B")``, order kept, with clear errors."""
    from pymatgen.core import Element

    parts = chemsys.split("-") if isinstance(chemsys, str) else list(chemsys)
    parts = [p.strip() for p in parts if p.strip()]
    if not parts:
        raise ExplorerInputError(f"empty chemical system {chemsys!r}; use e.g. Ta-W-B")
    for symbol in parts:
        if not Element.is_valid_symbol(symbol):
            raise ExplorerInputError(f"unknown element {symbol!r} in chemical system {chemsys!r}")
    if len(set(parts)) != len(parts):
        raise ExplorerInputError(f"repeated element in chemical system {chemsys!r}")
    return tuple(parts)


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
    if reference not in REFERENCE_MODES:
        raise ExplorerInputError(f"reference must be one of {', '.join(REFERENCE_MODES)}, got {reference!r}")
    if reference == "ml":
        from .ml_references import DEFAULT_MAX_STRUCTURES, MLReferences

        references = MLReferences("m3gnet" if potential is None else potential, data=data, fmax=fmax, steps=steps,
                                  batch_size=batch_size, max_structures=max_structures or DEFAULT_MAX_STRUCTURES)
        return references.pd_entries(elements, callback)
    entries = [PDEntry(Composition(symbol), 0.0, name=symbol, attribute=f"{symbol} (element)")
               for symbol in elements]
    if reference == "mp":
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
class HullRow:
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
class HullAnalysis:
    """Hull of one chemical system: ``candidates`` and ``references`` rows, and the pymatgen diagram."""

    chemsys: tuple[str, ...]
    reference: str
    phase_diagram: object
    candidates: list[HullRow]
    references: list[HullRow]

    def table(self) -> list[dict]:
        """One row per candidate: label, formula, formation energy, e_above_hull, decomposition."""
        return [row.summary() for row in self.candidates]

    def plot(self):
        return hull_plot(self)

    def save(self, out: str | os.PathLike, csv_name: str = "hull.csv", html_name: str = "hull.html") -> dict:
        """Write the candidate table (CSV) and the interactive plot (HTML) into ``out``; returns their paths."""
        import csv

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        columns = ["label", "formula", "formation_energy_per_atom", "e_above_hull", "decomposition"]
        with open(out / csv_name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.table())
        save_plot(self.plot(), out / html_name)
        return {"csv": str(out / csv_name), "html": str(out / html_name)}


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


# ----------------------------------------------------------------------------------------------- plotting

_HOVER = [("label", "@label"), ("formula", "@formula"), ("E_f (eV/atom)", "@formation_energy{0.000}"),
          ("E above hull (eV/atom)", "@e_above_hull{0.000}")]


def _records(rows, x_of, y_of=None):
    records = []
    for row in rows:
        record = {"x": x_of(row), "label": row.label, "formula": row.formula,
                  "formation_energy": row.formation_energy_per_atom, "e_above_hull": row.e_above_hull}
        if y_of is not None:
            record["y"] = y_of(row)
        records.append(record)
    return records


def _points(hv, rows, x_of, y_of, name, style):
    vdims = ["label", "formula", "formation_energy", "e_above_hull"]
    if y_of is None:
        data = _records(rows, x_of)
        element = hv.Scatter(data, kdims=["x"], vdims=["formation_energy", *vdims[:2], "e_above_hull"], label=name)
    else:
        data = _records(rows, x_of, y_of)
        element = hv.Points(data, kdims=["x", "y"], vdims=vdims, label=name)
    from bokeh.models import HoverTool

    return element.opts(tools=[HoverTool(tooltips=_HOVER)], **style)


def hull_plot(analysis: HullAnalysis):
    """HoloViews overlay: binary = formation energy vs composition fraction with the hull line; ternary =
    composition triangle with the hull tie lines; other systems = formation energy vs energy above hull."""
    import holoviews as hv

    hv.extension("bokeh", logo=False)
    elements = analysis.chemsys
    stable = [r for r in analysis.references if r.stable]
    unstable = [r for r in analysis.references if not r.stable]
    styles = {
        "stable": {"color": "black", "size": 9, "marker": "circle"},
        "unstable": {"color": "gray", "size": 6, "marker": "circle", "alpha": 0.6},
        "candidate": {"color": "crimson", "size": 11, "marker": "diamond"},
    }
    source = {"mp": "MP", "ml": "ML-relaxed MP/WBM"}.get(analysis.reference, "elements")
    title = f"{'-'.join(elements)} hull ({source} references)"
    if len(elements) == 2:
        x_of = lambda row: row.fractions[elements[1]]  # noqa: E731
        line = sorted((x_of(r), r.formation_energy_per_atom) for r in stable)
        overlay = hv.Curve(line, kdims=["x"], vdims=["formation_energy"], label="hull").opts(color="black")
        for rows, name, key in ((unstable, f"{source} above hull", "unstable"), (stable, f"{source} on hull", "stable"),
                                (analysis.candidates, "candidates", "candidate")):
            if rows:
                overlay = overlay * _points(hv, rows, x_of, None, name, styles[key])
        return overlay.opts(title=title, xlabel=f"x in {elements[0]}(1-x) {elements[1]}(x)",
                            ylabel="formation energy (eV/atom)", width=720, height=480, legend_position="bottom_right",
                            show_grid=True)
    if len(elements) == 3:
        def xy(row):
            b, c = row.fractions[elements[1]], row.fractions[elements[2]]
            return b + c / 2, c * math.sqrt(3) / 2

        triangle = [(0, 0), (1, 0), (0.5, math.sqrt(3) / 2), (0, 0)]
        overlay = hv.Path([triangle]).opts(color="black", line_width=1.5)
        overlay = overlay * hv.Path(_tie_lines(analysis, xy), label="hull tie lines").opts(color="steelblue",
                                                                                          alpha=0.7)
        corners = hv.Labels([(0, -0.04, elements[0]), (1, -0.04, elements[1]),
                             (0.5, math.sqrt(3) / 2 + 0.04, elements[2])], kdims=["x", "y"], vdims=["text"])
        overlay = overlay * corners.opts(text_font_size="13pt")
        for rows, name, key in ((unstable, f"{source} above hull", "unstable"), (stable, f"{source} on hull", "stable"),
                                (analysis.candidates, "candidates", "candidate")):
            if rows:
                overlay = overlay * _points(hv, rows, lambda r: xy(r)[0], lambda r: xy(r)[1], name, styles[key])
        return overlay.opts(title=title, width=720, height=660, xaxis=None, yaxis=None,
                            legend_position="top_right", padding=0.08, data_aspect=1)
    rows = analysis.references + analysis.candidates
    overlay = _points(hv, rows, lambda r: r.formation_energy_per_atom, lambda r: r.e_above_hull, "entries",
                      styles["unstable"])
    if analysis.candidates:
        overlay = overlay * _points(hv, analysis.candidates, lambda r: r.formation_energy_per_atom,
                                    lambda r: r.e_above_hull, "candidates", styles["candidate"])
    return overlay.opts(title=title, xlabel="formation energy (eV/atom)", ylabel="energy above hull (eV/atom)",
                        width=720, height=480)


def _tie_lines(analysis: HullAnalysis, xy) -> list:
    """Edges of the hull facets, projected on the triangle."""
    phase_diagram = analysis.phase_diagram
    entries = phase_diagram.qhull_entries
    edges = set()
    for facet in phase_diagram.facets:
        for i in range(len(facet)):
            for j in range(i + 1, len(facet)):
                edges.add(tuple(sorted((facet[i], facet[j]))))
    rows = {}
    for index in {k for edge in edges for k in edge}:
        composition = entries[index].composition
        rows[index] = HullRow(label="", formula="", formation_energy_per_atom=0.0, e_above_hull=0.0,
                              fractions={s: composition.get_atomic_fraction(s) for s in analysis.chemsys})
    return [[xy(rows[i]), xy(rows[j])] for i, j in sorted(edges)]


def save_plot(plot, path: str | os.PathLike) -> Path:
    """Save a HoloViews object as a standalone interactive HTML file (Bokeh)."""
    import holoviews as hv

    path = Path(path)
    hv.save(plot, path, backend="bokeh", resources="inline")
    return path


__all__ = ["HullAnalysis", "HullRow", "hull_analysis", "hull_plot", "parse_chemsys", "reference_entries",
           "save_plot"]
