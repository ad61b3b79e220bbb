"""Matcher: StructureMatcher's answers with each structure reduced once."""

import pytest
from crystal_fixtures import cesium_chloride, diamond_si, rock_salt_nacl
from pymatgen.analysis.structure_matcher import StructureMatcher

from explorer.matching import Matcher
from explorer.representation import LOOSE, STRICT


@pytest.mark.parametrize("tolerances", [STRICT, LOOSE])
def test_fits_of_reduced_structures_are_structurematchers(tolerances):
    nacl = rock_salt_nacl()
    shaken = nacl.copy()
    shaken.perturb(0.15, 0.1)
    far = nacl.copy()
    far.perturb(0.6, 0.5)
    supercell = nacl * (2, 1, 1)
    strained = nacl.copy()
    strained.apply_strain([0.12, 0.0, -0.05])
    structures = [nacl, shaken, far, supercell, strained, cesium_chloride(), diamond_si()]
    matcher = Matcher(**tolerances)
    reduced = [matcher.reduced(s) for s in structures]
    plain = StructureMatcher(**tolerances)
    answers = [[matcher.fit(a, b) for b in reduced] for a in reduced]
    assert answers == [[bool(plain.fit(a, b)) for b in structures] for a in structures]
    assert answers[0][3] and not answers[0][5]  # a supercell is the same crystal, CsCl is not rock salt
    assert len(reduced[3]) == 2  # the primitive cell
