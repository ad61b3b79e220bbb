import numpy as np
import pytest

from explorer.errors import ExplorerInputError
from explorer.spacegroups import (
    COMMON_SPACEGROUPS,
    MAX_OPERATIONS,
    check_spacegroup,
    compatible_spacegroups,
    crystal_system,
    lattice_points,
    operations,
    sites_compatible,
    symbol,
    wyckoff_orbits,
)


@pytest.mark.parametrize("value, expected", [(1, 1), ("225", 225), (230, 230), (221.0, 221)])
def test_check_spacegroup_accepts_1_to_230(value, expected):
    assert check_spacegroup(value) == expected


@pytest.mark.parametrize("value", [0, 231, -5, "231", "abc", 2.5, None, "nan"])
def test_check_spacegroup_rejects(value):
    with pytest.raises(ExplorerInputError):
        check_spacegroup(value)


def _n_ops(stack: np.ndarray) -> int:
    return int((np.abs(stack).sum((1, 2)) > 0).sum())


def test_operations_p1_is_identity_then_padding():
    ops = operations(1)
    assert ops.shape == (MAX_OPERATIONS, 4, 4) and ops.dtype == np.float32
    np.testing.assert_array_equal(ops[0], np.eye(4))
    assert _n_ops(ops) == 1


@pytest.mark.parametrize("number, count", [(2, 2), (221, 48), (225, 192), (227, 192)])
def test_operations_count_and_affine_form(number, count):
    ops = operations(number)
    assert _n_ops(ops) == count
    used = ops[:count]
    np.testing.assert_array_equal(used[:, 3], np.tile([0, 0, 0, 1], (count, 1)))
    # rotation parts are integer matrices with determinant +-1
    np.testing.assert_allclose(np.abs(np.linalg.det(used[:, :3, :3])), 1.0, atol=1e-6)


@pytest.mark.parametrize("number", [0, 231])
def test_operations_rejects_out_of_range(number):
    with pytest.raises(ExplorerInputError):
        operations(number)


def test_symbol_and_crystal_system():
    assert symbol(225) == "Fm-3m"
    assert symbol(221) == "Pm-3m"
    assert symbol(194) == "P6_3/mmc" and symbol(62) == "Pnma" and symbol(1) == "P1"
    assert [crystal_system(n) for n in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230)] == [
        "triclinic", "triclinic", "monoclinic", "monoclinic", "orthorhombic", "orthorhombic", "tetragonal",
        "tetragonal", "trigonal", "trigonal", "hexagonal", "hexagonal", "cubic", "cubic"]
    with pytest.raises(ExplorerInputError):
        crystal_system(231)


def test_lattice_points():
    assert [lattice_points(g) for g in (1, 12, 38, 44, 166, 225, 229)] == [1, 2, 2, 2, 3, 4, 2]
    with pytest.raises(ExplorerInputError):
        lattice_points(0)


# ------------------------------------------------------------------------- Wyckoff positions (screening)

@pytest.mark.parametrize("number, fixed, free", [
    (1, (), (1,)),
    (2, ((1, 8),), (2,)),
    (221, ((1, 2), (3, 2)), (6, 8, 12, 24, 48)),          # Pm-3m: 1a 1b 3c 3d fixed
    (225, ((1, 2), (2, 1), (6, 1)), (6, 8, 12, 24, 48)),  # Fm-3m primitive: 4a 4b, 8c, 24d (/4)
    (191, ((1, 2), (2, 2), (3, 2)), (2, 4, 6, 12, 24)),   # P6/mmm: 1a 1b, 2c 2d, 3f 3g
    (230, ((8, 2), (12, 2)), (16, 24, 48)),               # Ia-3d primitive: 16a 16b, 24c 24d (/2)
])
def test_wyckoff_orbits_in_the_primitive_cell(number, fixed, free):
    assert wyckoff_orbits(number) == (fixed, free)


@pytest.mark.parametrize("counts, number, expected", [
    ([1, 1], 225, True),       # rock salt
    ([2], 227, True),          # diamond
    ([1, 1, 3], 221, True),    # cubic perovskite
    ([1, 1, 6], 221, True),    # TaWB6: 1a, 1b, 3c + 3d
    ([1, 1, 5], 221, False),   # 5 is no sum of the free 6, 8, ... and one each of 1, 1, 3, 3
    ([3], 221, True),          # 3c
    ([1, 1, 6], 230, False),   # Ia-3d needs at least 8 atoms per element
    ([7, 5, 3], 1, True),      # P1 holds anything
])
def test_sites_compatible(counts, number, expected):
    assert sites_compatible(counts, number) is expected


def test_fixed_positions_are_used_once():
    assert sites_compatible([1, 1], 221) and not sites_compatible([1, 1, 1], 221)  # only 1a and 1b
    assert sites_compatible([3, 3], 221) and not sites_compatible([3, 3, 3], 221)  # only 3c and 3d


def test_compatible_spacegroups_subset_of_common():
    found = compatible_spacegroups([1, 1, 6])
    assert set(found) <= set(COMMON_SPACEGROUPS) and {1, 2, 191, 221}.issubset(found)
    assert 230 not in found and 227 not in found
    with pytest.raises(ExplorerInputError):
        sites_compatible([1], 231)
