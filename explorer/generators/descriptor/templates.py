"""Reconstruction starts from known structures (beyond paper 001; the issue's "start from better than random
positions").

A StructRepDiff vector fixes the composition, the atom count and the lattice. Training structures with the same
stoichiometry pattern and atom count (any space group: the vector does not hold one) whose Niggli cell has the
most similar shape (cell lengths over the cube root of the volume, cosines of the angles) give their fractional
positions, in their own Niggli cell, as starting positions in the target's cell, with their elements mapped onto
the target's (the count-compatible mapping closest in elemental properties, as the prototype library's). The
reconstructor ranks these starts by descriptor loss with its random ones; the loss decides, so a wrong template
costs one trial and nothing else.

The templates come from the prototype library (the train split of the data directory; never a val or test
structure) unless the settings name other known structures (``template_data``: a structure CSV of the data
directory and its splits — a model's own training rows, e.g. perov_5's train + val parts for descriptor-perov);
the rows being reconstructed are never their own templates (:meth:`TemplateStarts.excluding`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ...errors import ExplorerInputError
from ...prototypes import best_substitution, stoichiometry_pattern
from ...representation import LATTICE_ROWS, decode, decode_lattice
from .reconstruction import MAX_ATOMS

SHORTLIST = 40  # templates per target looked at (most similar cell shape first)


def cell_shape(lattice) -> np.ndarray:
    """Shape of a (Niggli) cell: log of its lengths over the cube root of its volume, and its angles' cosines."""
    a, b, c = lattice.abc
    scale = lattice.volume ** (1 / 3)
    return np.concatenate([np.log(np.array([a, b, c]) / scale), np.cos(np.radians(lattice.angles))])


def _identity(structure) -> bytes:
    """The same structure as read from the same CIF: its species, lattice and fractional positions."""
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    values = np.round(np.concatenate([structure.lattice.matrix.ravel(), structure.frac_coords.ravel()]), 6)
    return numbers.tobytes() + (values + 0.0).tobytes()


class _LibraryRows:
    """The prototype library's structures (encoded matrices), decoded when a template is asked for."""

    def __init__(self, library):
        self.data = library.data

    def __len__(self) -> int:
        return len(self.data)

    def numbers(self, i: int) -> list[int]:
        return [int(z) for z in self.data.species[i][: int(self.data.n_sites[i])]]

    def lattice(self, i: int):
        return decode_lattice(self.data.matrix[i][LATTICE_ROWS], int(self.data.n_sites[i])).get_niggli_reduced_lattice()

    def structure(self, i: int):
        return decode(self.data.matrix[i], self.data.species[i][: int(self.data.n_sites[i])]).get_reduced_structure()


class _StructureRows:
    """pymatgen structures (their Niggli cells, reduced when a template is asked for)."""

    def __init__(self, structures):
        self.structures, self._reduced = list(structures), {}

    def __len__(self) -> int:
        return len(self.structures)

    def numbers(self, i: int) -> list[int]:
        return [site.specie.Z for site in self.structures[i]]

    def structure(self, i: int):
        if i not in self._reduced:
            self._reduced[i] = self.structures[i].get_reduced_structure()
        return self._reduced[i]

    def lattice(self, i: int):
        return self.structure(i).lattice


class TemplateStarts:
    """Fractional starting positions from known structures for :class:`~.reconstruction.Reconstructor`
    (``starts(numbers, lattice)``); ``library`` a :class:`~explorer.prototypes.PrototypeLibrary` or a function
    returning one (called at the first :meth:`starts`, so that settings are checked before a library is built);
    :meth:`from_structures` for any list of structures (:func:`template_structures` reads them from a CSV)."""

    def __init__(self, library, shortlist: int = SHORTLIST):
        self._library = library
        self.shortlist = int(shortlist)
        self._rows, self._groups = None, None
        self._shapes: dict = {}

    @classmethod
    def from_structures(cls, structures, shortlist: int = SHORTLIST) -> TemplateStarts:
        out = cls(None, shortlist)
        out._rows = _StructureRows(structures)
        return out

    def excluding(self, structures) -> TemplateStarts:
        """These templates without ``structures`` (as read from the same rows: the rows being reconstructed are
        not their own templates); the prototype library (train rows only) is returned as it is."""
        left_out = {_identity(s) for s in structures}
        if not left_out or not isinstance(self.rows, _StructureRows):
            return self
        kept = [s for s in self.rows.structures if _identity(s) not in left_out]
        return self if len(kept) == len(self.rows) else TemplateStarts.from_structures(kept, self.shortlist)

    @property
    def rows(self):
        if self._rows is None:
            self._rows = _LibraryRows(self._library() if callable(self._library) else self._library)
        return self._rows

    @property
    def groups(self) -> dict:
        """Row indices by (stoichiometry pattern, atom count)."""
        if self._groups is None:  # built whole, then set: a session sampling at once never sees it half-built
            groups = defaultdict(list)
            for i in range(len(self.rows)):
                numbers = self.rows.numbers(i)
                groups[(stoichiometry_pattern(numbers), len(numbers))].append(i)
            self._groups = groups
        return self._groups

    def _group_shapes(self, key) -> np.ndarray:
        if key not in self._shapes:
            self._shapes[key] = np.array([cell_shape(self.rows.lattice(i)) for i in self.groups.get(key, [])]
                                         ).reshape(-1, 6)
        return self._shapes[key]

    def starts(self, numbers, lattice) -> list[np.ndarray]:
        """Up to ``shortlist`` (N, 3) fractional position arrays, atom ``a`` of each holding ``numbers[a]``'s
        element, from the templates of the same pattern and atom count whose Niggli cell shape is closest to
        ``lattice``'s (a pymatgen Lattice or 3 x 3 matrix, the target's Niggli cell); most similar first."""
        from pymatgen.core import Lattice

        numbers = [int(z) for z in numbers]
        key = (stoichiometry_pattern(numbers), len(numbers))
        rows = self.groups.get(key, [])
        if not rows:
            return []
        lattice = lattice if isinstance(lattice, Lattice) else Lattice(np.asarray(lattice, dtype=float))
        distance = np.abs(self._group_shapes(key) - cell_shape(lattice)).sum(1)
        out = []
        for j in np.argsort(distance, kind="stable")[: self.shortlist]:
            i = rows[int(j)]
            _, mapping = best_substitution(self.rows.numbers(i), numbers)
            slots = defaultdict(list)
            for site in self.rows.structure(i):
                slots[mapping[site.specie.Z]].append(site.frac_coords % 1.0)
            out.append(np.array([slots[z].pop() for z in numbers]))
        return out


def template_structures(csv_path, splits=None) -> list:
    """The structures of a structure CSV (its rows of ``splits`` when given) that a reconstruction can start from:
    parsed CIFs of at most 60 atoms (unreadable rows are skipped)."""
    from ...data import read_split_rows
    from ...structure_io import parse_cif

    out = []
    for row in read_split_rows(csv_path, splits):
        try:
            structure = parse_cif(row["cif"])
        except ExplorerInputError:
            continue
        if len(structure) <= MAX_ATOMS:
            out.append(structure)
    if not out:
        raise ExplorerInputError(f"no template structures in {csv_path}" + (f" (splits {list(splits)})" if splits
                                                                            else ""))
    return out


_SOURCES: dict = {}


def template_data_path(name) -> Path:
    """A ``template_data`` file: a path as given when it is a file, else a file of the data directory."""
    from ...config import data_file

    return Path(name) if Path(name).is_file() else data_file(str(name))


def with_template_source(settings: dict, required: bool = True, exclude=()) -> dict:
    """Reconstructor ``settings`` with ``template_starts`` added when they ask for ``templates`` > 0: the known
    structures that ``template_data`` names (``{"file": CSV, "splits": [...]}``, the file a path or a name in
    the data directory; read once per process), else the prototype library of the data directory (built once
    per process); ``template_data`` itself is taken out. ``required`` (the user asked for templates): an error
    without the structure files, and the library is built if it must be (235 s once on 2 cores). Not required
    (a model's default): used only when the files are there and the library is ready (built in this process or
    cached, as ``explorer generate`` and the app do for their prototypes), else the settings with ``templates``
    0 — a model's default never makes a sampling call wait for the library. ``exclude``: structures (as read
    from their rows) that are not their own templates — the rows a run reconstructs
    (:meth:`TemplateStarts.excluding`)."""
    data = settings.get("template_data")
    settings = {k: v for k, v in settings.items() if k != "template_data"}
    if not settings.get("templates") or settings.get("template_starts") is not None:
        return settings
    if data:
        if not isinstance(data, dict) or "file" not in data:
            raise ExplorerInputError(f"template_data must be {{'file': CSV, 'splits': [...]}}, got {data!r}")
        try:
            path = template_data_path(data["file"])
        except ExplorerInputError:
            if required:
                raise
            return {**settings, "templates": 0}
        splits = tuple(data.get("splits") or ())
        key = (str(path.resolve()), path.stat().st_mtime_ns, splits)
        if key not in _SOURCES:
            _SOURCES[key] = TemplateStarts.from_structures(template_structures(path, splits))
        return {**settings, "template_starts": _SOURCES[key].excluding(exclude)}
    from ...config import data_dir
    from ...prototypes import load_prototype_library, prototype_library_ready, require_prototype_library

    if not required and not prototype_library_ready():
        return {**settings, "templates": 0}
    require_prototype_library()
    key = str(data_dir())
    if key not in _SOURCES:
        _SOURCES[key] = TemplateStarts(lambda: load_prototype_library(key))
    return {**settings, "template_starts": _SOURCES[key]}


__all__ = ["TemplateStarts", "cell_shape", "template_structures", "with_template_source"]
