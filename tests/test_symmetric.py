"""Crystals with an exact space group: random symmetric ones, and known ones distorted into a subgroup
(explorer.symmetric)."""

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from explorer.representation import LOOSE, detect_spacegroup
from explorer.symmetric import is_subgroup, lower_symmetry, random_symmetric, subgroup_paths


@pytest.mark.parametrize("numbers, group", [([11, 17], 225), ([73, 74] + [5] * 6, 191), ([26, 26, 8, 8, 8], 12)])
def test_a_random_symmetric_crystal_has_the_group_and_the_cell_contents(numbers, group):
    structure = random_symmetric(numbers, group, seed=0)
    assert structure is not None
    assert sorted(site.specie.Z for site in structure) == sorted(numbers)
    assert detect_spacegroup(structure) == group
    assert random_symmetric(numbers, group, seed=0).matches(structure)  # reproducible


def test_no_random_symmetric_crystal_where_the_group_cannot_hold_the_formula():
    assert random_symmetric([8, 8, 12, 12], 62, seed=0) is None  # Pnma's smallest orbit holds 4 atoms


def test_subgroup_paths_follow_the_group_subgroup_tables():
    assert is_subgroup(139, 225) and is_subgroup(87, 225)  # Fm-3m > I4/mmm > I4/m
    assert not is_subgroup(225, 87) and not is_subgroup(194, 221)  # the other way; hexagonal is not under Pm-3m
    assert subgroup_paths(221, 221) == ()
    (step,) = subgroup_paths(221, 123)[0]  # Pm-3m > P4/mmm in one step: three choices of the fourfold axis
    assert step[0] == "t" and len(step[1]) == 3


def perovskite() -> Structure:
    return Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.mark.parametrize("group", [99, 123, 47])  # atoms displaced (P4mm); lattice strained (P4/mmm, Pmmm)
def test_a_cubic_perovskite_distorted_into_a_subgroup_has_it_and_stays_recognisable(group):
    cubic = perovskite()
    state = np.random.get_state()
    lowered = lower_symmetry(cubic, group, seed=1)
    assert np.all(np.random.get_state()[1] == state[1])  # numpy's global generator left as it was
    assert lowered is not None and detect_spacegroup(lowered) == group
    assert sorted(s.specie.Z for s in lowered) == sorted(s.specie.Z for s in cubic)
    assert StructureMatcher(**LOOSE).fit(lowered, cubic)
    again = lower_symmetry(cubic, group, seed=1)  # reproducible: the same cell and coordinates, not a look-alike
    assert np.allclose(again.lattice.matrix, lowered.lattice.matrix) and np.allclose(again.frac_coords,
                                                                                    lowered.frac_coords)


def test_no_distortion_into_a_group_that_is_not_a_subgroup():
    assert lower_symmetry(perovskite(), 194) is None
    assert lower_symmetry(perovskite(), 221) is not None  # already in the group: itself


@pytest.mark.parametrize("parent", [225, 191, 62])
def test_the_quick_no_agrees_with_pyxtals_path_search(parent):
    """is_subgroup answers no from the reachable groups alone; pyxtal's own search agrees for every group."""
    from explorer.symmetric import MAX_LAYERS, _subgroup_paths

    for child in range(1, 231):
        assert is_subgroup(child, parent) == bool(child != parent and _subgroup_paths(parent, child, MAX_LAYERS))


@pytest.mark.parametrize("kinds, ids", [(("t",), (0,)), (("t", "t"), (0, 1)), (("k",), (0,))])
def test_the_lowering_with_cached_splitters_is_pyxtals_subgroup_by_path(kinds, ids):
    """The same structure from the same draws as pyxtal's subgroup_by_path, whose splitters it caches and whose
    copies share the group tables."""
    from pyxtal import pyxtal

    from explorer.symmetric import _by_path, _crystal_class

    ours, theirs = _crystal_class()(), pyxtal()
    ours.from_seed(perovskite(), tol=0.05)
    theirs.from_seed(perovskite(), tol=0.05)
    for _ in range(2):  # the second time from the cache
        np.random.seed(3)
        expected = theirs.subgroup_by_path(list(kinds), list(ids), eps=0.3)[0].to_pymatgen()
        np.random.seed(3)
        lowered = _by_path(ours, kinds, ids, 0.3).to_pymatgen()
        assert lowered.species == expected.species
        assert np.array_equal(lowered.lattice.matrix, expected.lattice.matrix)
        assert np.array_equal(lowered.frac_coords, expected.frac_coords)
