"""StructureMatcher comparisons of one structure against many: each structure reduced once.

pymatgen's ``StructureMatcher.fit`` reduces both structures (primitive cell, Niggli) at every call; its cache of
reduced structures is keyed on the structure, and a lookup compares structures site by site, so that comparing a
candidate with dozens of others costs more in lookups than in matching. Here each structure is reduced once
(:meth:`Matcher.reduced`) and the fits skip the reduction, as pymatgen's own ``group_structures`` does — the same
answers as ``fit`` on the structures themselves.
"""

from __future__ import annotations

import warnings

from pymatgen.core import Structure


class Matcher:
    """A ``StructureMatcher`` with these tolerances (e.g. :data:`~explorer.representation.STRICT`) over reduced
    structures."""

    def __init__(self, **tolerances):
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self.matcher = StructureMatcher(**tolerances)

    def reduced(self, structure: Structure) -> Structure:
        """The structure as ``fit`` compares it: primitive, Niggli-reduced."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.matcher._get_reduced_structure(structure, self.matcher._primitive_cell, niggli=True)

    def fit(self, first: Structure, second: Structure) -> bool:
        """``StructureMatcher.fit`` of two structures from :meth:`reduced`."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(self.matcher.fit(first, second, skip_structure_reduction=True))


__all__ = ["Matcher"]
