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
structure).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ...prototypes import best_substitution, stoichiometry_pattern
from ...representation import LATTICE_ROWS, decode, decode_lattice

SHORTLIST = 40  # templates per target looked at (most similar cell shape first)


def cell_shape(lattice) -> np.ndarray:
    """Shape of a (Niggli) cell: log of its lengths over the cube root of its volume, and its angles' cosines."""
    a, b, c = lattice.abc
    scale = lattice.volume ** (1 / 3)
    return np.concatenate([np.log(np.array([a, b, c]) / scale), np.cos(np.radians(lattice.angles))])


class TemplateStarts:
    """Fractional starting positions from known structures for :class:`~.reconstruction.Reconstructor`
    (``starts(numbers, lattice)``); ``library`` a :class:`~explorer.prototypes.PrototypeLibrary` or a function
    returning one (called at the first :meth:`starts`, so that settings are checked before a library is built)."""

    def __init__(self, library, shortlist: int = SHORTLIST):
        self._library = library
        self.shortlist = int(shortlist)
        self._groups = None
        self._shapes: dict = {}

    def _load(self) -> None:
        if self._groups is None:
            library = self._library() if callable(self._library) else self._library
            self._data = library.data
            self._groups = defaultdict(list)
            for i in range(len(self._data)):
                n = int(self._data.n_sites[i])
                self._groups[(stoichiometry_pattern(self._data.species[i][:n]), n)].append(i)

    @property
    def data(self):
        self._load()
        return self._data

    @property
    def groups(self) -> dict:
        self._load()
        return self._groups

    def _group_shapes(self, key) -> np.ndarray:
        if key not in self._shapes:
            rows = self.groups.get(key, [])
            self._shapes[key] = np.array([cell_shape(decode_lattice(self.data.matrix[i][LATTICE_ROWS], key[1])
                                                     .get_niggli_reduced_lattice()) for i in rows]).reshape(-1, 6)
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
            species = self.data.species[i][: key[1]]
            _, mapping = best_substitution(species, numbers)
            template = decode(self.data.matrix[i], species).get_reduced_structure()
            slots = defaultdict(list)
            for site in template:
                slots[mapping[site.specie.Z]].append(site.frac_coords % 1.0)
            out.append(np.array([slots[z].pop() for z in numbers]))
        return out


_SOURCES: dict = {}


def with_template_source(settings: dict, required: bool = True) -> dict:
    """Reconstructor ``settings`` with ``template_starts`` added when they ask for ``templates`` > 0 (the
    library of the data directory, built once per process). ``required`` (the user asked for templates): an
    error without the structure files, and the library is built if it must be (235 s once on 2 cores). Not
    required (a model's default): used only when the library is ready (built in this process or cached, as
    ``explorer generate`` and the app do for their prototypes), else the settings with ``templates`` 0 — a
    model's default never makes a sampling call wait for the library."""
    if not settings.get("templates") or settings.get("template_starts") is not None:
        return settings
    from ...config import data_dir
    from ...prototypes import load_prototype_library, prototype_library_ready, require_prototype_library

    if not required and not prototype_library_ready():
        return {**settings, "templates": 0}
    require_prototype_library()
    key = str(data_dir())
    if key not in _SOURCES:
        _SOURCES[key] = TemplateStarts(lambda: load_prototype_library(key))
    return {**settings, "template_starts": _SOURCES[key]}


__all__ = ["TemplateStarts", "cell_shape", "with_template_source"]
