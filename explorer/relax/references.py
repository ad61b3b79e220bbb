"""Elemental reference energies computed with the same potential, for formation energies.

The reference of an element is the lowest energy per atom among its relaxed candidate ground states:

* the ``polymorphs`` lowest-energy elemental structures of that element in ``mp_structures.csv.gz``
  (data directory, see :func:`explorer.config.data_dir`), when the file is there;
* ASE's ``ase.build.bulk`` structure of the element (its reference crystal structure);
* only when neither gives a structure: a dimer in a box for the diatomic gases (H, N, O, F, ...). A
  molecular crystal is preferred because the potentials are trained on crystals (M3GNet puts an isolated O2
  0.15 eV/atom below solid O2);
* for the elements still without one (B, P, S, Cl, Mn, Ga, Se, Br, Te, I, ... when the data directory does not
  hold their structure): the lowest of simple generic crystals — fcc, bcc, simple cubic, diamond, with
  nearest neighbours at twice the covalent radius — and the dimer in a box, each relaxed. Such a reference is
  *approximate* (``"approximate": True`` in its entry; it may lie some 0.1 eV/atom above the true ground
  state), and the formation energies that use it say so (:meth:`ElementalReferences.notes`).

Both sources are used because the structure file holds only part of the elemental ground states (diamond Si,
for example, is not in it). Each element is relaxed once per potential and cached in
``<cache_dir>/references/<potential fingerprint>-v<VERSION>.json``.
"""

from __future__ import annotations

import math
import os
import time
from functools import lru_cache
from pathlib import Path

from ..config import cache_dir, data_dir, read_json_cache, write_json_cache
from ..errors import ExplorerInputError

REFERENCES_VERSION = 2  # 2: generic approximate references where no known structure exists
MP_STRUCTURES = "mp_structures.csv.gz"
DIMER_BOX = 12.0  # Å, cubic box around a diatomic molecule


@lru_cache(maxsize=4)
def _mp_elemental_rows(path: str, mtime: float) -> dict[str, list[tuple[float, str, str]]]:
    """Elemental rows of a structure CSV: element -> [(MP formation energy, material id, cif)]."""
    from pymatgen.core import Composition

    from ..data import read_rows, row_energy

    by_element: dict[str, list[tuple[float, str, str]]] = {}
    for row in read_rows(path):
        try:
            composition = Composition(row.get("formula") or "")
        except ValueError:
            continue
        if len(composition.elements) != 1:
            continue
        energy = row_energy(row)
        if not math.isfinite(energy):
            continue
        element = composition.elements[0].symbol
        by_element.setdefault(element, []).append((energy, row.get("material_id") or "", row["cif"]))
    return by_element


def mp_candidates(element: str, data: str | os.PathLike | None = None, polymorphs: int = 3) -> list[tuple]:
    """``(source, Structure, relax_cell)`` for the lowest-energy elemental structures in the data directory."""
    from ..structure_io import parse_cif

    path = data_dir(data) / MP_STRUCTURES
    if polymorphs <= 0 or not path.is_file():
        return []
    rows = sorted(_mp_elemental_rows(str(path), path.stat().st_mtime).get(element, []))[:polymorphs]
    candidates = []
    for _, material_id, cif in rows:
        try:
            candidates.append((material_id or "mp_structures", parse_cif(cif), True))
        except ExplorerInputError:
            continue
    return candidates


def ase_candidate(element: str) -> tuple | None:
    """``(source, Structure, relax_cell)`` of ASE's reference crystal of the element, or None."""
    from ase.build import bulk
    from ase.data import atomic_numbers
    from pymatgen.io.ase import AseAtomsAdaptor

    if element not in atomic_numbers:
        return None
    try:
        return "ase.build.bulk", AseAtomsAdaptor.get_structure(bulk(element)), True
    except (ValueError, KeyError, RuntimeError, NotImplementedError):
        return None


def dimer_candidate(element: str) -> tuple | None:
    """``(source, Structure, relax_cell=False)``: ASE's diatomic molecule in a box, or None."""
    from ase import Atoms
    from ase.data import atomic_numbers, reference_states
    from pymatgen.io.ase import AseAtomsAdaptor

    number = atomic_numbers.get(element)
    state = (reference_states[number] or {}) if number is not None else {}
    if state.get("symmetry") == "diatom":
        half = state["d"] / 2
        centre = DIMER_BOX / 2
        dimer = Atoms([element, element], positions=[[centre, centre, centre - half], [centre, centre, centre + half]],
                      cell=[DIMER_BOX] * 3, pbc=True)
        return "ase dimer in a box", AseAtomsAdaptor.get_structure(dimer), False
    return None


def generic_candidates(element: str) -> list[tuple]:
    """``(source, Structure, relax_cell)``: fcc, bcc, simple cubic and diamond crystals of the element with
    nearest neighbours at twice its covalent radius, and its dimer in a box (bond at twice the radius)."""
    from ase import Atoms
    from ase.build import bulk
    from ase.data import atomic_numbers, covalent_radii
    from pymatgen.io.ase import AseAtomsAdaptor

    number = atomic_numbers.get(element)
    if number is None:
        return []
    d = 2 * float(covalent_radii[number])
    lattices = {"fcc": d * 2**0.5, "bcc": d * 2 / 3**0.5, "sc": d, "diamond": d * 4 / 3**0.5}
    found = []
    for name, a in lattices.items():
        structure = AseAtomsAdaptor.get_structure(bulk(element, name, a=a))
        found.append((f"generic {name}", structure, True))
    centre = DIMER_BOX / 2
    dimer = Atoms([element, element], positions=[[centre, centre, centre - d / 2], [centre, centre, centre + d / 2]],
                  cell=[DIMER_BOX] * 3, pbc=True)
    found.append(("generic dimer in a box", AseAtomsAdaptor.get_structure(dimer), False))
    return found


class ElementalReferences:
    """Reference energy per atom of each element with one potential (relaxed on first use, cached on disk).

    ``cache``: True (default location), False (memory only) or a directory. ``corrections``: "mp2020" (default:
    formation energies carry MP's MaterialsProject2020Compatibility corrections, as MP's own do — see
    :mod:`explorer.relax.corrections`) or "none" (the potential's raw energies).
    """

    def __init__(self, potential="m3gnet", data: str | os.PathLike | None = None, polymorphs: int = 3,
                 fmax: float = 0.05, steps: int = 500, cache: bool | str | os.PathLike = True,
                 corrections: str = "mp2020"):
        from .corrections import CORRECTIONS
        from .potentials import load_potential

        if corrections not in CORRECTIONS:
            raise ExplorerInputError(f"corrections must be one of {', '.join(CORRECTIONS)}, got {corrections!r}")
        self.corrections = corrections
        self.potential = load_potential(potential)
        self.data = data
        self.polymorphs = polymorphs
        self.fmax = fmax
        self.steps = steps
        if cache is True:
            folder = cache_dir() / "references"
        elif cache:
            folder = Path(cache)
        else:
            folder = None
        name = f"{self.potential.fingerprint}-v{REFERENCES_VERSION}.json"
        self.path = folder / name if folder is not None else None
        self._entries: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        return read_json_cache(self.path).get("elements", {})

    def to_spec(self) -> dict:
        """Plain settings and entries of these references: what another process needs to rebuild them with its own
        copy of the potential (:meth:`from_spec`) and relax nothing already relaxed here."""
        return {"data": None if self.data is None else str(self.data), "polymorphs": self.polymorphs,
                "fmax": self.fmax, "steps": self.steps, "corrections": self.corrections,
                "cache": str(self.path.parent) if self.path is not None else False, "entries": dict(self._entries)}

    @classmethod
    def from_spec(cls, potential, spec: dict) -> ElementalReferences:
        """The references of :meth:`to_spec` with ``potential`` (the same weights as where they were made)."""
        references = cls(potential, data=spec["data"], polymorphs=spec["polymorphs"], fmax=spec["fmax"],
                         steps=spec["steps"], cache=spec["cache"], corrections=spec.get("corrections", "mp2020"))
        references._entries.update(spec["entries"])
        return references

    def _write(self) -> None:
        if self.path is None:
            return
        merged = {**self._read(), **self._entries}  # keep what another process added meanwhile
        write_json_cache(self.path, {"potential": self.potential.name, "version": REFERENCES_VERSION,
                                     "elements": merged})

    def candidates(self, element: str) -> list[tuple]:
        """``(source, Structure, relax_cell)`` candidate ground states of an element."""
        found = mp_candidates(element, self.data, self.polymorphs)
        crystal = ase_candidate(element)
        if crystal is not None:
            found.append(crystal)
        if not found:
            dimer = dimer_candidate(element)
            found += [dimer] if dimer is not None else []
        return found or generic_candidates(element)

    def get(self, element: str) -> dict | None:
        """Reference entry ``{"energy_per_atom", "source", "formula", "candidates"}``; None when no candidate
        structure of the element relaxes."""
        if element in self._entries:
            return self._entries[element]
        entry = self._compute(element)
        if entry is not None:
            self._entries[element] = entry
            self._write()
        return entry

    def _compute(self, element: str) -> dict | None:
        from .results import STATUS_FAILED
        from .single import relax_one

        start = time.perf_counter()
        tried = []
        best = None
        for source, structure, relax_cell in self.candidates(element):
            result = relax_one(self.potential, structure, label=source, fmax=self.fmax, steps=self.steps,
                               relax_cell=relax_cell)
            tried.append({"source": source, "status": result.status, "steps": result.steps,
                          "energy_per_atom": _finite_or_none(result.energy_per_atom), "error": result.error})
            if result.status == STATUS_FAILED:
                continue
            if best is None or result.energy_per_atom < best.energy_per_atom:
                best = result
        if best is None:
            return None
        return {"energy_per_atom": float(best.energy_per_atom), "source": best.label,
                "formula": best.structure.composition.formula.replace(" ", ""), "candidates": tried,
                "approximate": best.label.startswith("generic"), "seconds": round(time.perf_counter() - start, 2)}

    def notes(self, composition) -> str:
        """What a user should know about the formation energy of ``composition``: the elements whose reference
        is approximate or missing ("" when every reference is a known structure)."""
        from pymatgen.core import Composition

        approximate, missing = [], []
        for element in sorted(e.symbol for e in Composition(composition).elements):
            entry = self.get(element)
            if entry is None:
                missing.append(element)
            elif entry.get("approximate"):
                approximate.append(f"{element} ({entry['source'].removeprefix('generic ')})")
        parts = []
        if approximate:
            parts.append("E_f uses an approximate reference for " + ", ".join(approximate) +
                         ": no known structure of it in the data directory, the lowest simple crystal instead")
        if missing:
            parts.append("no formation energy: no reference structure of " + ", ".join(missing) + " relaxes with "
                         f"{self.potential.name}")
        return "; ".join(parts)

    def energy_per_atom(self, element: str) -> float:
        entry = self.get(element)
        if entry is None:
            raise ExplorerInputError(f"no elemental reference structure for {element} relaxes "
                                     f"with {self.potential.name}")
        return entry["energy_per_atom"]

    def formation_energy_per_atom(self, composition, energy_per_atom: float) -> float | None:
        """E_f = E/atom - sum_i x_i E_i/atom over the elements (+ the MP2020 correction per atom unless
        ``corrections="none"``); None when a reference is missing."""
        from pymatgen.core import Composition

        composition = Composition(composition)
        if not math.isfinite(energy_per_atom):
            return None
        total = composition.num_atoms
        reference = 0.0
        for element, amount in composition.element_composition.items():
            entry = self.get(element.symbol)
            if entry is None:
                return None
            reference += amount / total * entry["energy_per_atom"]
        correction = 0.0
        if self.corrections == "mp2020":
            from .corrections import mp2020_correction_per_atom

            correction = mp2020_correction_per_atom(composition)
        return float(energy_per_atom - reference + correction)


def _finite_or_none(value):
    return float(value) if value is not None and math.isfinite(value) else None


__all__ = ["ElementalReferences", "ase_candidate", "dimer_candidate", "mp_candidates"]
