import itertools

import numpy as np
import pytest
from crystal_fixtures import diamond_si, rock_salt_nacl
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from explorer.errors import ExplorerInputError
from explorer.generators.langevin.wyckoff import (
    SplitPrior,
    _element_options,
    asymmetric_unit,
    multiplicities,
    positions,
    site_splits,
    split_pattern,
)
from explorer.prototypes import best_substitution
from explorer.spacegroups import lattice_points


def rutile() -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                     [[0, 0, 0], [0.305, 0.305, 0]])


@pytest.mark.parametrize("spacegroup", [1, 2, 12, 62, 136, 166, 191, 225, 227, 230])
def test_positions_map_generic_points_onto_their_orbits(spacegroup):
    table = positions(spacegroup)
    assert table[0].dof == 3 and table[0].multiplicity == max(w.multiplicity for w in table)
    assert multiplicities(spacegroup) == tuple(w.multiplicity for w in table)
    point = np.array([0.137, 0.261, 0.419])
    for wp in table:
        atoms = np.mod(wp.rotations @ point + wp.translations, 1.0)
        # the copies are distinct atoms and the general position's operations permute them
        gaps = atoms[:, None] - atoms[None]
        assert (np.abs(gaps - np.rint(gaps)).max(-1) + np.eye(len(atoms)) > 1e-6).all()
        general = table[0]
        images = np.einsum("gij,j->gi", general.rotations, atoms[0]) + general.translations
        for atom in atoms:
            d = images - atom
            assert np.abs(d - np.rint(d)).max(-1).min() < 1e-8


def test_lattice_points_are_the_pure_translations_of_the_general_position():
    for group in range(1, 231):
        general = positions(group)[0]
        assert lattice_points(group) == sum(np.allclose(r, np.eye(3)) for r in general.rotations), group


@pytest.mark.parametrize("structure", [rock_salt_nacl(), diamond_si(), rutile()], ids=["NaCl", "Si", "TiO2"])
def test_asymmetric_unit_round_trip(structure):
    unit = asymmetric_unit(structure)
    assert unit is not None
    assert StructureMatcher().fit(unit.structure(), structure)
    assert len(unit.numbers) == len(set(structure.species))  # one inequivalent site per element here


def test_element_options_are_every_multiset_best_first():
    table = positions(221)  # Pm-3m: 1a 1b 3c 3d 6e 6f 8g 12h ... 48n
    logp = np.log(np.linspace(1, 2, len(table)) / np.linspace(1, 2, len(table)).sum())
    found = _element_options(table, 4, logp, None, limit=1000)
    mult = [w.multiplicity for w in table]
    brute = set()
    for k in range(1, 5):
        for combo in itertools.combinations_with_replacement(range(len(table)), k):
            if sum(mult[j] for j in combo) == 4 and all(combo.count(j) == 1 for j in combo if table[j].dof == 0):
                brute.add(combo)
    assert {tuple(sorted(c)) for _, c in found} == brute
    scores = [s for s, _ in found]
    assert scores == sorted(scores, reverse=True)
    assert all(abs(s - sum(logp[j] for j in c)) < 1e-9 for s, c in found)


def test_site_splits_rank_by_prior_and_honour_site_counts():
    species = [11, 17]  # NaCl primitive cell -> 4 + 4 atoms in Fm-3m
    uniform = site_splits(species, 225)
    assert all(sum(positions(225)[w].multiplicity for w in s.wyckoff) == 8 for s in uniform)
    assert len(uniform[0].numbers) == 2
    # a prior that has seen rock salt (Na 4a, Cl 4b) puts that split first
    # pyxtal's indices in Fm-3m: 4b = 10, 4a = 11; the element statistics decide which element goes where
    prior = SplitPrior({(225, 10): 5, (225, 11): 5}, {(225, 10, 11): 5, (225, 11, 17): 5},
                       {(225, split_pattern([11, 17], [10, 11])): 5})
    best = site_splits(species, 225, prior)[0]
    assert dict(zip(best.numbers, best.wyckoff)) == {11: 10, 17: 11}
    swapped = SplitPrior({(225, 10): 5, (225, 11): 5}, {(225, 11, 11): 5, (225, 10, 17): 5}, prior.patterns)
    best = site_splits(species, 225, swapped)[0]
    assert dict(zip(best.numbers, best.wyckoff)) == {11: 11, 17: 10}
    two = site_splits([11] * 2 + [17] * 2, 225, sites={11: 2})
    assert all(sum(1 for z in s.numbers if z == 11) == 2 for s in two)
    with pytest.raises(ExplorerInputError, match="no Wyckoff positions of space group 225 hold Na1Cl1 with Na:3"):
        site_splits(species, 225, sites={11: 3})


def test_split_prior_puts_the_split_of_chemically_similar_known_crystals_first():
    # the position statistics alone put Na on 4a (11) and Cl on 4b (10); a known crystal of the group with the
    # same counts, KBr with K on 4b and Br on 4a, maps K -> Na and Br -> Cl (nearest elements) and wins
    positions_ = {(225, 10): 5, (225, 11): 5}
    elements = {(225, 11, 11): 5, (225, 10, 17): 5}
    examples = {(225, (4, 4)): [((19, 35), (10, 11), 50)]}  # 50 structures
    without = SplitPrior(positions_, elements, {}, examples, neighbour_weight=0.0)
    first = site_splits([11, 17], 225, without)[0]
    assert dict(zip(first.numbers, first.wyckoff)) == {11: 11, 17: 10}
    prior = SplitPrior(positions_, elements, {}, examples, neighbour_tau=5.0, neighbour_weight=3.0)
    assert prior.neighbours([11, 17], 225) == pytest.approx({((11, 10), (17, 11)): 50 * np.exp(
        -best_substitution([19] * 4 + [35] * 4, [11] * 4 + [17] * 4)[0] / prior.neighbour_tau)})
    best = site_splits([11, 17], 225, prior)[0]
    assert dict(zip(best.numbers, best.wyckoff)) == {11: 10, 17: 11}
    assert prior.neighbours([11, 17, 17], 225) == {}  # other counts: no neighbours
    again = SplitPrior.from_json(prior.to_json())
    assert again.examples == prior.examples
    assert (again.neighbour_tau, again.neighbour_weight) == (prior.neighbour_tau, prior.neighbour_weight)


def test_split_prior_json_round_trip():
    prior = SplitPrior({(225, 10): 3}, {(225, 10, 11): 2}, {(225, ((9,), (10,))): 4})
    again = SplitPrior.from_json(prior.to_json())
    assert again.positions == prior.positions and again.elements == prior.elements
    assert again.patterns == prior.patterns and again.examples == {}
    assert np.allclose(again.log_position(225, 11), prior.log_position(225, 11))
    assert np.isclose(np.exp(prior.log_position(225, 11)).sum(), 1.0)
