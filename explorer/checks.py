"""Physical checks of a structure, with the reason in words: atoms too close for their elements, overlapping
atoms, isolated atoms. One place for every part that judges a structure (candidates, uploads, relaxation).

*Too close*: two atoms nearer than ``COVALENT_FACTOR`` (0.6) × the sum of their covalent radii (Cordero et al.
2008, as in ``ase.data.covalent_radii``) or than ``MIN_DISTANCE`` (0.5 Å, the paper's structural validity).
Measured on 3,000 random MP training structures: the smallest ratio of a nearest-neighbour distance to the
sum of covalent radii was 0.65 (0.1 % quantile 0.68), so 0.6 rejects no known structure, while, e.g., Ta and B
1.07 Å apart (ratio 0.42; forces of 170 eV/Å) are rejected.

*Isolated*: an atom with no neighbour within ``ISOLATION_DISTANCE`` (5 Å, M3GNet's cutoff): its energy is that
of a free atom, not of a solid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .representation import MIN_DISTANCE

COVALENT_FACTOR = 0.6
ISOLATION_DISTANCE = 5.0  # Å


def smact_valid(composition) -> bool:
    """SMACT charge neutrality and electronegativity screening of a composition (an element alone is valid)."""
    from smact.screening import smact_validity

    if len(composition.elements) == 1:
        return True
    try:
        return bool(smact_validity(composition.reduced_formula))
    except Exception:  # SMACT has no data for some elements: not shown to be valid
        return False


def _radii() -> np.ndarray:
    from ase.data import covalent_radii

    return np.asarray(covalent_radii, dtype=float)


@dataclass(frozen=True)
class PairCheck:
    """The closest pair relative to its covalent radii: distance (Å), the pair's elements, the ratio to the sum
    of their covalent radii; ``reason`` is "" when the structure passes; ``degenerate``: no atoms, or a cell that
    is not finite or thinner than the shortest allowed distance (no pair was measured)."""

    distance: float
    elements: tuple[str, str]
    ratio: float
    reason: str
    degenerate: bool = False

    @property
    def ok(self) -> bool:
        return not self.reason


def closest_pair(structure, factor: float = COVALENT_FACTOR) -> PairCheck:
    """The pair of atoms (periodic images included) closest relative to the sum of their covalent radii."""
    n = len(structure)
    if n == 0:
        return PairCheck(float("inf"), ("", ""), float("inf"), "no atoms", degenerate=True)
    matrix = structure.lattice.matrix
    if not np.isfinite(matrix).all():
        return PairCheck(0.0, ("", ""), 0.0, "the cell is not finite", degenerate=True)
    areas = np.linalg.norm(np.cross(matrix[[1, 2, 0]], matrix[[2, 0, 1]]), axis=1)
    thickness = abs(np.linalg.det(matrix)) / areas.max()  # the smallest distance between lattice planes
    if thickness < MIN_DISTANCE:  # atoms this close to their own images; a neighbour list would need huge image counts
        symbol = structure[0].specie.symbol
        return PairCheck(float(thickness), (symbol, symbol), 0.0,
                         f"degenerate cell: only {thickness:.2g} Å thick, atoms overlap their own images",
                         degenerate=True)
    radii = _radii()
    z = np.array([site.specie.Z for site in structure])
    cutoff = 2 * factor * float(radii[z].max()) + 0.1
    centres, points, _, distances = structure.get_neighbor_list(cutoff)
    if len(distances) == 0:
        return PairCheck(float("inf"), ("", ""), float("inf"), "")
    sums = radii[z[centres]] + radii[z[points]]
    ratios = distances / sums
    k = int(np.argmin(ratios))

    def named(i: int) -> tuple[str, str]:  # the lower site index first, whatever order pymatgen lists pairs in
        a, b = sorted((int(centres[i]), int(points[i])))
        return structure[a].specie.symbol, structure[b].specie.symbol

    symbols = named(k)
    distance, ratio = float(distances[k]), float(ratios[k])
    shortest = float(distances.min())
    if shortest < MIN_DISTANCE:
        j = int(np.argmin(distances))
        pair = named(j)
        return PairCheck(shortest, pair, float(ratios[j]),
                         f"{pair[0]}–{pair[1]} {shortest:.2f} Å apart (overlapping: < {MIN_DISTANCE} Å)")
    if ratio < factor:
        return PairCheck(distance, symbols, ratio,
                         f"{symbols[0]}–{symbols[1]} {distance:.2f} Å apart (< {factor} × covalent radii "
                         f"{sums[k]:.2f} Å)")
    return PairCheck(distance, symbols, ratio, "")


def isolated_atoms(structure, distance: float = ISOLATION_DISTANCE) -> list[int]:
    """Indices of the atoms without any neighbour (periodic images included) within ``distance`` Å."""
    if len(structure) == 0:
        return []
    centres, _, _, _ = structure.get_neighbor_list(distance)
    return sorted(set(range(len(structure))) - {int(i) for i in centres})


def isolation_warning(structure, distance: float = ISOLATION_DISTANCE) -> str:
    """"" or a sentence saying which atoms are isolated and what that means for the energy."""
    lonely = isolated_atoms(structure, distance)
    if not lonely:
        return ""
    names = sorted({structure[i].specie.symbol for i in lonely})
    what = "every atom" if len(lonely) == len(structure) else f"{len(lonely)} atom(s) ({', '.join(names)})"
    return (f"isolated: {what} without a neighbour within {distance:g} Å — the energy is that of free atoms, "
            "not of a solid")


__all__ = ["COVALENT_FACTOR", "ISOLATION_DISTANCE", "PairCheck", "closest_pair", "isolated_atoms", "smact_valid",
           "isolation_warning"]
