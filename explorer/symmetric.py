"""Random crystals with an exact space group (pyxtal): the formula's atoms put on Wyckoff positions of the group
that can hold them, at random free coordinates, in a random cell of the group's crystal family.

The baseline of random symmetric search, and what :func:`explorer.generate` returns in a slot where neither a
known prototype nor a network sample has the requested space group — every such crystal has it by
construction (spglib, symprec 0.1, checked).
"""

from __future__ import annotations

import warnings
from collections import Counter

from pymatgen.core import Structure

from .elements import symbols
from .representation import detect_spacegroup

ATTEMPTS = 4


def random_symmetric(atomic_numbers, spacegroup: int, seed: int = 0, attempts: int = ATTEMPTS,
                     volume_factor: float = 1.1) -> Structure | None:
    """A random crystal with exactly these cell contents (primitive cell) in ``spacegroup``, or None when pyxtal
    finds no placement in ``attempts`` tries (or the formula cannot have the group). ``seed`` makes it
    reproducible; ``volume_factor`` scales pyxtal's volume estimate from atomic radii."""
    from pyxtal import pyxtal

    counts = Counter(int(z) for z in atomic_numbers)
    names = symbols()
    species = [names[z - 1] for z in sorted(counts)]
    numbers = [counts[z] for z in sorted(counts)]
    for attempt in range(int(attempts)):
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, int(spacegroup), species, numbers, factor=volume_factor, conventional=False,
                                    random_state=int(seed) * 7919 + attempt)
                if not crystal.valid:
                    continue
                structure = crystal.to_pymatgen().get_primitive_structure()
        except Exception:  # pyxtal raises its own errors for formulas the group cannot hold
            continue
        if sorted(site.specie.Z for site in structure) != sorted(int(z) for z in atomic_numbers):
            continue
        if detect_spacegroup(structure) == int(spacegroup):
            return structure
    return None


__all__ = ["random_symmetric"]
