"""Space-group conditions: the padded 192×4×4 stack of affine symmetry operations (pymatgen, standard
setting), plus names for display."""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from .errors import ExplorerInputError

MAX_OPERATIONS = 192


def check_spacegroup(number) -> int:
    """Validate an international space-group number (1..230) and return it as int."""
    try:
        value = int(number)
        if value != float(number):
            raise ValueError
    except (TypeError, ValueError):
        raise ExplorerInputError(f"space group must be an integer 1..230, got {number!r}") from None
    if not 1 <= value <= 230:
        raise ExplorerInputError(f"space group must be in 1..230, got {value}")
    return value


@cache
def _operations(number: int) -> np.ndarray:
    from pymatgen.symmetry.groups import SpaceGroup

    ops = SpaceGroup.from_int_number(number).symmetry_ops
    stack = np.zeros((MAX_OPERATIONS, 4, 4), dtype=np.float32)
    for i, op in enumerate(ops):
        stack[i] = op.affine_matrix
    return stack


def operations(number: int) -> np.ndarray:
    """(192, 4, 4) float32 affine operations of space group ``number`` (zero-padded)."""
    return _operations(check_spacegroup(number))


@lru_cache(maxsize=1)
def all_operations() -> np.ndarray:
    """(231, 192, 4, 4): index by space-group number (row 0 unused)."""
    table = np.zeros((231, MAX_OPERATIONS, 4, 4), dtype=np.float32)
    for n in range(1, 231):
        table[n] = _operations(n)
    return table


@cache
def symbol(number: int) -> str:
    """Hermann–Mauguin symbol, e.g. 225 -> 'Fm-3m'."""
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup.from_int_number(check_spacegroup(number)).symbol


def crystal_system(number: int) -> str:
    n = check_spacegroup(number)
    for upper, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
                        (167, "trigonal"), (194, "hexagonal"), (230, "cubic")):
        if n <= upper:
            return name
    raise AssertionError(n)
