"""Self-consistent hull references (reference mode ``"ml"``): the MP and WBM structures of a chemical system
relaxed with the same potential as the candidates.

For a chemical system (e.g. ``Ta-W-B``) every row of ``mp_structures.csv.gz`` and ``wbm_structures.csv.gz``
(data directory, see :func:`explorer.config.data_dir`) whose elements are a subset of the system, with at least
two elements, is relaxed with the batched relaxer. Its formation energy (eV/atom) is its relaxed energy per
atom minus the elemental references of the same potential (:class:`~explorer.relax.references.ElementalReferences`),
so the elements sit at 0 by definition and candidates relaxed with that potential are compared like with like.

Results are cached per potential in ``<cache_dir>/references/<potential fingerprint>-ml-v<VERSION>.json``, one
entry per source row (``mp:<material_id>``, ``wbm:<id>``) together with a digest of its CIF and the relaxation
settings, so a second call for the same system (or an overlapping one) relaxes nothing again.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..config import cache_dir, data_dir, read_json_cache, write_json_cache
from ..elements import parse_chemsys
from ..errors import ExplorerInputError

ML_REFERENCES_VERSION = 1
DEFAULT_MAX_STRUCTURES = 200
# (source tag, file in the data directory, id column)
STRUCTURE_FILES = (("mp", "mp_structures.csv.gz", "material_id"), ("wbm", "wbm_structures.csv.gz", "id"))
_SYMBOL = re.compile(r"[A-Z][a-z]?")
_SAVE_EVERY = 16  # write the cache after this many new relaxations (and at the end)


@dataclass
class MLReference:
    """One reference structure relaxed with the potential. Energies in eV/atom; ``status`` as in
    :class:`~explorer.relax.RelaxResult` (``ok``, ``unconverged``: last structure reached, ``failed``)."""

    key: str
    formula: str
    status: str
    energy_per_atom: float | None
    steps: int
    cif_digest: str
    fmax: float
    max_steps: int
    formation_energy_per_atom: float | None = None
    error: str = ""

    @property
    def usable(self) -> bool:
        return self.status != "failed" and self.energy_per_atom is not None


@lru_cache(maxsize=4)
def _structure_index(path: str, mtime: float, id_column: str) -> tuple[tuple[str, str, frozenset, str], ...]:
    """``(id, formula, elements, cif)`` of every row with at least two elements in a structure CSV."""
    from ..data import read_rows

    index = []
    for row in read_rows(path):
        formula = row.get("formula") or ""
        elements = frozenset(_SYMBOL.findall(formula))
        if len(elements) >= 2:
            index.append((row.get(id_column) or "", formula, elements, row["cif"]))
    return tuple(index)


def system_rows(elements, data: str | os.PathLike | None = None) -> list[tuple[str, str, str]]:
    """``(key, formula, cif)`` of the MP and WBM rows whose elements are a subset of ``elements`` (≥ 2 elements);
    key = ``"mp:<material_id>"`` or ``"wbm:<id>"``. At least one of the two files must be in the data directory."""
    folder = data_dir(data)
    allowed = frozenset(elements)
    found, present = [], 0
    for tag, name, id_column in STRUCTURE_FILES:
        path = folder / name
        if not path.is_file():
            continue
        present += 1
        for row_id, formula, row_elements, cif in _structure_index(str(path), path.stat().st_mtime, id_column):
            if row_elements <= allowed:
                found.append((f"{tag}:{row_id}", formula, cif))
    if not present:
        names = " or ".join(name for _, name, _ in STRUCTURE_FILES)
        raise ExplorerInputError(f"no {names} in {folder} for the 'ml' hull references "
                                 "(set EXPLORER_DATA_DIR or pass --data-dir)")
    return found


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_signature(data: str | os.PathLike | None = None) -> str:
    """Size and modification time of the structure files: a cached system listing is reused while it matches."""
    folder = data_dir(data)
    parts = []
    for _, name, _ in STRUCTURE_FILES:
        path = folder / name
        if path.is_file():
            stat = path.stat()
            parts.append(f"{name}:{stat.st_size}:{int(stat.st_mtime)}")
    return ";".join(parts)


class MLReferences:
    """MP/WBM structures of chemical systems relaxed with one potential, cached on disk.

    ``fmax`` (eV/Å), ``steps``, ``batch_size``: relaxation settings. ``max_structures``: a system with more
    reference structures than this raises :class:`ExplorerInputError` (relaxing hundreds of structures takes
    a while on a CPU). ``cache``: True (default location), False (memory only) or a directory.
    ``references``: the :class:`ElementalReferences` to use (default: the potential's, same data directory).
    """

    def __init__(self, potential="m3gnet", data: str | os.PathLike | None = None, fmax: float = 0.05,
                 steps: int = 500, batch_size: int = 32, max_structures: int = DEFAULT_MAX_STRUCTURES,
                 cache: bool | str | os.PathLike = True, references=None):
        from .potentials import load_potential
        from .references import ElementalReferences

        if max_structures < 1:
            raise ExplorerInputError(f"max_structures must be >= 1, got {max_structures}")
        self.potential = load_potential(potential)
        self.data = data
        self.fmax, self.steps, self.batch_size, self.max_structures = fmax, steps, batch_size, max_structures
        self.references = references if references is not None else ElementalReferences(self.potential, data=data)
        folder = cache_dir() / "references" if cache is True else (Path(cache) if cache else None)
        name = f"{self.potential.fingerprint}-ml-v{ML_REFERENCES_VERSION}.json"
        self.path = folder / name if folder is not None else None
        stored = self._read()
        self._entries: dict[str, dict] = stored.get("structures", {})
        self._systems: dict[str, dict] = stored.get("systems", {})

    def _read(self) -> dict:
        return read_json_cache(self.path)

    def _write(self) -> None:
        if self.path is None:
            return
        stored = self._read()  # keep what another process added meanwhile
        write_json_cache(self.path, {"potential": self.potential.name, "version": ML_REFERENCES_VERSION,
                                     "structures": {**stored.get("structures", {}), **self._entries},
                                     "systems": {**stored.get("systems", {}), **self._systems}})

    def _cached(self, key: str, digest: str) -> dict | None:
        entry = self._entries.get(key)
        if entry and entry.get("cif_digest") == digest and entry.get("fmax") == self.fmax \
                and entry.get("max_steps") == self.steps:
            return entry
        return None

    def _listing(self, elements) -> list[tuple[str, str, str]]:
        """``(key, formula, CIF digest)`` of the system's rows; from the cache while the data files are unchanged
        (so that a second call reads no CSV)."""
        name = "-".join(sorted(elements))
        signature = data_signature(self.data)
        stored = self._systems.get(name)
        if stored and stored.get("data") == signature:
            return [tuple(row) for row in stored["rows"]]
        listing = [(key, formula, _digest(cif)) for key, formula, cif in system_rows(elements, self.data)]
        self._systems[name] = {"data": signature, "rows": [list(row) for row in listing]}
        self._write()
        return listing

    def structures(self, chemsys, callback=None) -> list[MLReference]:
        """Relaxed reference structures of ``chemsys`` (cached ones are read, the others relaxed now).
        ``callback(done, total)`` is called as the relaxations finish. Raises :class:`ExplorerInputError` when
        the structure files are missing, the system has more than ``max_structures`` structures or an element
        has no elemental reference."""
        elements = parse_chemsys(chemsys)
        listing = self._listing(elements)
        if len(listing) > self.max_structures:
            raise ExplorerInputError(
                f"{'-'.join(elements)} has {len(listing)} MP/WBM reference structures, more than max_structures="
                f"{self.max_structures}; raise it (--max-structures) or use the 'mp' reference mode")
        for symbol in elements:
            self.references.energy_per_atom(symbol)  # raises when no elemental reference relaxes
        missing = {key for key, _, digest in listing if self._cached(key, digest) is None}
        if missing:
            self._relax([row for row in system_rows(elements, self.data) if row[0] in missing], callback)
        found = [MLReference(**self._cached(key, digest)) for key, _, digest in listing]
        for reference in found:
            if reference.usable:
                reference.formation_energy_per_atom = self.references.formation_energy_per_atom(
                    reference.formula, reference.energy_per_atom)
        return found

    def _relax(self, rows, callback=None) -> None:
        from .relaxation import RelaxDone, irelax

        events = irelax([cif for _, _, cif in rows], potential=self.potential, fmax=self.fmax, steps=self.steps,
                        formation="none", labels=[key for key, _, _ in rows], batch_size=self.batch_size)
        fresh = 0
        try:
            for event in events:
                if not isinstance(event, RelaxDone):
                    continue
                key, formula, cif = rows[event.index]
                self._entries[key] = self._entry(key, formula, cif, event.result)
                fresh += 1
                if fresh % _SAVE_EVERY == 0:
                    self._write()
                if callback is not None:
                    callback(event.done, event.total)
        finally:
            events.close()
            if fresh:
                self._write()

    def _entry(self, key: str, formula: str, cif: str, result) -> dict:
        energy = result.energy_per_atom
        if result.structure is not None:
            formula = result.structure.composition.reduced_formula
        entry = MLReference(key=key, formula=formula, status=result.status,
                            energy_per_atom=float(energy) if math.isfinite(energy) else None, steps=result.steps,
                            cif_digest=_digest(cif), fmax=self.fmax, max_steps=self.steps, error=result.error)
        if entry.status == "failed":
            entry.energy_per_atom = None
        return asdict(entry)

    def pd_entries(self, chemsys, callback=None) -> list:
        """pymatgen ``PDEntry`` list: the elements at 0 eV/atom and every usable relaxed structure (energy =
        formation energy x atoms, eV; ``attribute`` = its key)."""
        from pymatgen.analysis.phase_diagram import PDEntry
        from pymatgen.core import Composition

        elements = parse_chemsys(chemsys)
        found = self.structures(elements, callback)
        entries = [PDEntry(Composition(symbol), 0.0, name=symbol, attribute=f"{symbol} (element)")
                   for symbol in elements]
        for reference in found:
            energy = reference.formation_energy_per_atom
            if energy is None or not math.isfinite(energy):
                continue
            composition = Composition(reference.formula)
            entries.append(PDEntry(composition, energy * composition.num_atoms, attribute=reference.key))
        return entries


__all__ = ["DEFAULT_MAX_STRUCTURES", "MLReference", "MLReferences", "system_rows"]
