import numpy as np
import pytest

from explorer.errors import ExplorerInputError
from explorer.spacegroups import MAX_OPERATIONS, check_spacegroup, crystal_system, operations, symbol


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
    assert [crystal_system(n) for n in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230)] == [
        "triclinic", "triclinic", "monoclinic", "monoclinic", "orthorhombic", "orthorhombic", "tetragonal",
        "tetragonal", "trigonal", "trigonal", "hexagonal", "hexagonal", "cubic", "cubic"]
    with pytest.raises(ExplorerInputError):
        crystal_system(231)
