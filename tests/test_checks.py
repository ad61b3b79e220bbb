import pytest
from pymatgen.core import Lattice, Structure

from explorer.candidates import make_candidate
from explorer.checks import closest_pair, isolated_atoms, isolation_warning


def test_atoms_too_close_for_their_covalent_radii_are_invalid_and_say_why():
    crowded = Structure(Lattice.hexagonal(3.0, 3.2), ["Ta", "B"], [[0, 0, 0], [0.357, 0, 0]])  # 1.07 Å
    check = closest_pair(crowded)
    assert not check.ok and check.elements == ("Ta", "B") and check.distance == pytest.approx(1.071, abs=1e-3)
    assert check.reason == "Ta–B 1.07 Å apart (< 0.6 × covalent radii 2.54 Å)"
    candidate = make_candidate(crowded, 191, -0.4)
    assert candidate.min_distance > 0.5 and not candidate.valid  # the 0.5 Å rule alone would pass it
    assert candidate.invalid_reason == check.reason and candidate.summary()["invalid_reason"] == check.reason


def test_real_structures_pass(nacl, si, srtio3):
    for structure in (nacl, si, srtio3):
        assert closest_pair(structure).ok and make_candidate(structure, 0, None).valid
    overlapping = Structure(Lattice.cubic(5.0), ["Na", "Na"], [[0, 0, 0], [0.02, 0, 0]])
    assert "overlapping" in closest_pair(overlapping).reason


def test_a_flat_cell_from_an_untrained_network_is_invalid_not_an_error():
    flat = Structure(Lattice([[50, -50, -50], [0, -8, 1.2], [50, -50, -50]]), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    check = closest_pair(flat)
    assert check.degenerate and "degenerate cell" in check.reason
    candidate = make_candidate(flat, 225, None)
    assert not candidate.valid and candidate.invalid_reason == check.reason


def test_isolated_atoms():
    lonely = Structure(Lattice.cubic(100.0), ["Na"], [[0, 0, 0]])
    assert isolated_atoms(lonely) == [0]
    assert isolation_warning(lonely).startswith("isolated: every atom without a neighbour within 5 Å")
    assert isolated_atoms(Structure(Lattice.cubic(4.0), ["Na"], [[0, 0, 0]])) == []
