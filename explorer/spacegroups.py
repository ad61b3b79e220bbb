"""Space-group conditions: the padded 192×4×4 stack of affine symmetry operations (pymatgen, standard
setting), plus names for display."""

from __future__ import annotations

from functools import cache

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


@cache
def symbol(number: int) -> str:
    """Hermann–Mauguin symbol, e.g. 225 -> 'Fm-3m' (pymatgen's table lookup; the same symbol as
    ``SpaceGroup.from_int_number(number).symbol``, which builds the group's operations: 16 ms per group)."""
    from pymatgen.symmetry.groups import sg_symbol_from_int_number

    return sg_symbol_from_int_number(check_spacegroup(number))


_LATTICE_POINTS = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "F": 4, "R": 3}  # R: hexagonal axes


def lattice_points(number: int) -> int:
    """Lattice points per conventional cell: 1 for P, 2 for A/B/C/I, 3 for R (hexagonal axes), 4 for F."""
    return _LATTICE_POINTS[symbol(number)[0]]


def crystal_system(number: int) -> str:
    n = check_spacegroup(number)
    for upper, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
                        (167, "trigonal"), (194, "hexagonal"), (230, "cubic")):
        if n <= upper:
            return name
    raise AssertionError(n)


# ---------------------------------------------------------------------------------------- Wyckoff orbits

# The most frequent space groups of the Materials Project structures (the app's default short list and
# ``explorer screen --spacegroups common``).
COMMON_SPACEGROUPS = (1, 2, 4, 8, 11, 12, 14, 15, 62, 63, 65, 71, 123, 129, 139, 140, 141, 148, 164, 166, 167, 176,
                      186, 187, 189, 191, 194, 216, 221, 225, 227, 229)
_GRID = 24  # every fixed Wyckoff position of the standard settings has coordinates in multiples of 1/24


@cache
def wyckoff_orbits(number: int) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Site multiplicities of a space group in its primitive cell (the cell ``explorer`` generates):
    ``(fixed, free)`` with ``fixed`` = ((multiplicity, number of Wyckoff positions without free
    parameter), ...), each usable by one element once, and ``free`` = multiplicities of the positions with
    free parameters (usable any number of times).

    Found numerically: the orbits of the points of a 24×24×24 grid of the conventional cell under the
    symmetry operations, divided by the number of centring translations."""
    ops = _operations(check_spacegroup(number))
    ops = ops[np.abs(ops).sum((1, 2)) > 0].astype(np.float64)
    rotations, translations = ops[:, :3, :3], ops[:, :3, 3]
    centring = int(sum(np.allclose(r, np.eye(3)) for r in rotations))
    axis = np.arange(_GRID)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3).astype(np.float64)  # 1/24
    images = np.mod(np.rint(np.tensordot(points, rotations, axes=([1], [2])) + translations * _GRID), _GRID)
    weights = np.array([_GRID * _GRID, _GRID, 1.0])
    codes = (images @ weights).astype(np.int32)  # (points, ops): grid index of each image
    own = np.rint(points @ weights).astype(np.int32)
    _, first = np.unique(codes.min(1), return_index=True)  # one representative point per orbit
    codes, own = codes[first], own[first]
    ordered = np.sort(codes, axis=1)
    sizes = (1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1)) // centring
    masks, inverse = np.unique(codes == own[:, None], axis=0, return_inverse=True)  # stabilizers
    rigid = np.array([np.linalg.matrix_rank((rotations[m] - np.eye(3)).reshape(-1, 3)) == 3 for m in masks])
    rigid = rigid[inverse.ravel()]  # no free parameter
    fixed: dict[int, int] = {}
    for size in sizes[rigid]:
        fixed[int(size)] = fixed.get(int(size), 0) + 1
    free = {int(size) for size in sizes[~rigid]}
    return tuple(sorted(fixed.items())), tuple(sorted(free))


def sites_compatible(counts, number: int) -> bool:
    """Whether a primitive cell with ``counts`` atoms of each element (e.g. ``[1, 1, 6]`` for TaWB6) can have
    space group ``number``: every count a sum of Wyckoff multiplicities, each fixed position used once."""
    fixed, free = wyckoff_orbits(check_spacegroup(number))
    counts = tuple(sorted((int(c) for c in counts), reverse=True))
    largest = max(counts, default=0)
    reachable = np.zeros(largest + 1, dtype=bool)  # sums of free multiplicities
    reachable[0] = True
    for total in range(1, largest + 1):
        reachable[total] = any(size <= total and reachable[total - size] for size in free)
    sizes = [size for size, _ in fixed]

    @cache
    def place(element: int, left: tuple[int, ...]) -> bool:
        if element == len(counts):
            return True
        return any(place(element + 1, rest) for rest in _fixed_choices(counts[element], sizes, left, reachable))

    return place(0, tuple(n for _, n in fixed))


def _fixed_choices(count: int, sizes: list[int], left: tuple[int, ...], reachable: np.ndarray):
    """The fixed positions still ``left`` after one element with ``count`` atoms took some of them (the rest
    of its atoms on free positions)."""

    def walk(i: int, remaining: int, taken: tuple[int, ...]):
        if i == len(sizes):
            if reachable[remaining]:
                yield tuple(n - k for n, k in zip(left, taken))
            return
        for k in range(min(left[i], remaining // sizes[i]) + 1):
            yield from walk(i + 1, remaining - k * sizes[i], (*taken, k))

    yield from walk(0, count, ())


def check_sites(atomic_numbers, number: int) -> None:
    """One-line :class:`ExplorerInputError` when a cell with these atoms (atomic numbers, e.g. the primitive cell
    the models generate) cannot have space group ``number``: no assignment of its atoms to Wyckoff positions
    exists. The message names the groups of the common list that can hold it."""
    from collections import Counter

    from .elements import symbols

    by_element = Counter(int(z) for z in atomic_numbers)
    counts = list(by_element.values())
    if sites_compatible(counts, number):
        return
    names = symbols()
    cell = " ".join(f"{names[z - 1]}{n if n > 1 else ''}" for z, n in sorted(by_element.items()))
    fixed, free = wyckoff_orbits(number)
    sizes = sorted({size for size, _ in fixed} | set(free))
    fitting = sorted(compatible_spacegroups(counts), reverse=True)[:8]
    fits = ", ".join(f"{n} {symbol(n)}" for n in fitting) or "none of the common groups"
    raise ExplorerInputError(f"space group {number} ({symbol(number)}) cannot hold a cell of {cell}: its Wyckoff "
                             f"positions hold {', '.join(map(str, sizes))} atoms each in the primitive cell; "
                             f"groups that can: {fits}")


def compatible_spacegroups(counts, numbers=COMMON_SPACEGROUPS) -> list[int]:
    """The space groups of ``numbers`` whose Wyckoff positions can hold ``counts`` atoms per element."""
    return [n for n in numbers if sites_compatible(counts, n)]
