"""Decoding a (generated) StructRepDiff vector's composition block: plain apportionment, or the closest
charge-neutral composition with few elements."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.errors import ExplorerInputError
from explorer.generators.descriptor.ead import EADParams
from explorer.generators.descriptor.vector import Layout, apportion, closest_composition, is_neutral

ELEMENTS = (3, 8, 9, 11, 17, 26)  # Li O F Na Cl Fe


def vector(layout: Layout, fractions, atoms: float) -> np.ndarray:
    out = np.zeros(layout.size)
    out[layout.composition] = fractions
    out[layout.atoms] = atoms
    out[layout.lattice] = [4, 4, 4, 90, 90, 90]
    return out


def test_apportion_sums_to_the_atom_count():
    assert apportion(np.array([0.5, 0.3, 0.2]), 4).tolist() == [2, 1, 1]
    assert apportion(np.array([0.34, 0.33, 0.33]), 7).sum() == 7


def test_plain_decode_spreads_atoms_over_small_fractions():
    layout = Layout(EADParams(), ELEMENTS)
    # NaCl with a little noise on Li, F and Fe: largest remainders give Li an atom of the 4
    noisy = [0.15, 0.0, 0.05, 0.4, 0.36, 0.04]
    numbers, lattice = layout.decode(vector(layout, noisy, 4.2))
    assert len(numbers) == 4 and 3 in numbers
    assert lattice.tolist() == [4, 4, 4, 90, 90, 90]


def test_neutral_decode_picks_the_closest_charge_neutral_composition():
    layout = Layout(EADParams(), ELEMENTS)
    noisy = [0.15, 0.0, 0.05, 0.4, 0.36, 0.04]
    numbers, _ = layout.decode(vector(layout, noisy, 4.2), neutral=True)
    assert sorted(numbers) == [11, 11, 17, 17]  # NaCl
    assert is_neutral(apportion(np.array([0, 0, 0, 0.5, 0.5, 0]), 2), ELEMENTS)
    assert not is_neutral(np.array([0, 0, 0, 1, 3, 0]), ELEMENTS)  # NaCl3
    # an element alone never stands in for a compound
    counts = closest_composition(np.array([0.0, 0.1, 0.0, 0.0, 0.0, 0.9]), 10, ELEMENTS, neutral=True)
    assert np.count_nonzero(counts) == 2 and counts.sum() == 10


def test_element_penalty_drops_elements_with_small_fractions():
    fractions = np.array([0.1, 0.3, 0.0, 0.3, 0.0, 0.3])  # 10 atoms: Li O3 Na3 Fe3 or without Li
    plain = closest_composition(fractions, 10, ELEMENTS, neutral=False)
    fewer = closest_composition(fractions, 10, ELEMENTS, neutral=False, element_penalty=0.3)
    assert np.count_nonzero(plain) == 4 and np.count_nonzero(fewer) == 3
    assert fewer.sum() == plain.sum() == 10


def test_decode_rejects_a_vector_of_the_wrong_length():
    layout = Layout(EADParams(), ELEMENTS)
    with pytest.raises(ExplorerInputError, match=f"has {layout.size} entries"):
        layout.decode(np.zeros(layout.size + 1), neutral=True)
