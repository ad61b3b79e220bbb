import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from explorer.errors import ExplorerInputError
from explorer.representation import (
    LATTICE_ROWS,
    MATRIX_ROWS,
    MAX_SITES,
    PAD_ROW,
    canonical_lattice_matrix,
    check_site_count,
    decode,
    decode_lattice,
    encode,
    lattice_scale,
    min_interatomic_distance,
)

STRUCTURES = ["nacl", "si", "srtio3"]
EXPECTED = {"nacl": (225, [11, 17]), "si": (227, [14, 14]), "srtio3": (221, [8, 8, 8, 22, 38])}


@pytest.mark.parametrize("name", STRUCTURES)
def test_encode_layout(name, request):
    structure = request.getfixturevalue(name)
    crystal = encode(structure)
    spacegroup, species = EXPECTED[name]
    assert crystal.matrix.shape == (MATRIX_ROWS, 3) and crystal.matrix.dtype == np.float32
    assert crystal.spacegroup == spacegroup
    assert crystal.atomic_numbers.tolist() == species  # primitive cell, sorted by Z
    n = crystal.n_sites
    coords = crystal.matrix[:n]
    assert np.all(coords >= 0) and np.all(coords < 1)
    np.testing.assert_array_equal(crystal.matrix[n:MAX_SITES + 1], 0.0)  # empty rows and the pad row
    assert np.all(crystal.matrix[PAD_ROW] == 0)
    lattice = crystal.matrix[LATTICE_ROWS]
    np.testing.assert_array_equal(lattice[np.triu_indices(3, 1)], 0.0)  # lower-triangular rows
    assert np.all(np.diag(lattice) > 0)
    # normalised: entries of order one
    assert 0.3 < np.abs(lattice).max() < 3


@pytest.mark.parametrize("name", STRUCTURES)
def test_encode_decode_round_trip(name, request):
    structure = request.getfixturevalue(name)
    crystal = encode(structure)
    decoded = decode(crystal.matrix, crystal.atomic_numbers)
    assert decoded.volume > 0
    assert decoded.composition.reduced_formula == structure.composition.reduced_formula
    np.testing.assert_allclose(decoded.volume / len(decoded), structure.volume / len(structure), rtol=1e-5)
    assert StructureMatcher().fit(decoded, structure)
    assert StructureMatcher(ltol=0.01, stol=0.01, angle_tol=0.1).fit(decoded, structure)


@pytest.mark.parametrize("name", STRUCTURES)
def test_encoding_ignores_rotation_translation_and_site_order(name, request):
    structure = request.getfixturevalue(name)
    reference = encode(structure)
    moved = structure.copy()
    moved.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))
    order = np.random.default_rng(1).permutation(len(moved))
    moved = Structure.from_sites([moved[i] for i in order])
    moved.translate_sites(list(range(len(moved))), [0.13, 0.2, 0.31])
    again = encode(moved)
    assert again.spacegroup == reference.spacegroup
    np.testing.assert_array_equal(again.atomic_numbers, reference.atomic_numbers)
    np.testing.assert_allclose(again.matrix, reference.matrix, atol=1e-5)


def test_canonical_lattice_matrix_keeps_lengths_and_angles():
    lattice = Lattice.from_parameters(3.1, 4.2, 5.3, 75, 85, 100)
    rows = canonical_lattice_matrix(lattice)
    assert np.allclose(np.triu(rows, 1), 0)
    rebuilt = Lattice(rows)
    np.testing.assert_allclose(rebuilt.abc, lattice.abc, rtol=1e-10)
    np.testing.assert_allclose(rebuilt.angles, lattice.angles, rtol=1e-10)
    np.testing.assert_allclose(rebuilt.volume, lattice.volume, rtol=1e-10)


def test_decode_lattice_is_lower_triangular_with_positive_volume():
    rows = np.array([[-0.9, 0.4, 0.2], [0.3, -0.01, 0.7], [0.1, 0.2, 0.0]])  # negative / tiny diagonal
    lattice = decode_lattice(rows, n_sites=4)
    matrix = lattice.matrix
    assert np.allclose(np.triu(matrix, 1), 0)
    assert np.all(np.diag(matrix) > 0)
    assert lattice.volume > 0
    np.testing.assert_allclose(matrix[1, 0], 0.3 * lattice_scale(4))


def test_decode_wraps_coordinates_and_rejects_nan():
    matrix = np.zeros((MATRIX_ROWS, 3), dtype=np.float32)
    matrix[0] = [1.25, -0.25, 0.5]
    matrix[LATTICE_ROWS] = np.eye(3)
    structure = decode(matrix, [11])
    assert np.all((structure.frac_coords >= 0) & (structure.frac_coords < 1))
    np.testing.assert_allclose(structure.frac_coords[0], [0.25, 0.75, 0.5])
    matrix[0, 0] = np.nan
    with pytest.raises(ExplorerInputError):
        decode(matrix, [11])


def test_too_many_atoms_is_an_input_error():
    big = Structure(Lattice.cubic(20.0), ["Na"] * 61, np.random.default_rng(0).random((61, 3)))
    with pytest.raises(ExplorerInputError):
        encode(big, canonicalize=False)
    with pytest.raises(ExplorerInputError):
        check_site_count(MAX_SITES + 1)
    with pytest.raises(ExplorerInputError):
        check_site_count(0)
    check_site_count(MAX_SITES)


def test_elements_beyond_lr_are_rejected():
    structure = Structure(Lattice.cubic(4.0), ["Rf"], [[0, 0, 0]])
    with pytest.raises(ExplorerInputError):
        encode(structure, canonicalize=False)


def test_min_interatomic_distance(nacl):
    assert min_interatomic_distance(nacl) == pytest.approx(5.64 / 2)
    single = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    assert min_interatomic_distance(single) == pytest.approx(3.0)
