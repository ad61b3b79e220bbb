"""The paper's crystal representation: a 64×3 matrix per structure.

Rows 0..59 hold fractional coordinates (sites sorted by atomic number, then by coordinates; unused rows
are zero), row 60 is padding, rows 61..63 are the lattice vectors. The lattice is stored in a canonical
lower-triangular orientation (a along x, b in the xy plane) and divided by
``LENGTH_SCALE * n_sites ** (1/3)`` so that every entry is of order one whatever the cell size.

Structures are first reduced to the spglib *primitive standard* cell (symprec 0.1), so that the same
crystal always maps to the same cell choice, origin and site order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure

from .elements import N_ELEMENTS
from .errors import ExplorerInputError

MAX_SITES = 60
MATRIX_ROWS = 64
PAD_ROW = 60
LATTICE_ROWS = slice(61, 64)
LENGTH_SCALE = 2.7  # Å; (2.7 Å)^3 ≈ 20 Å^3 per atom, a typical inorganic atomic volume
SYMPREC = 0.1
# StructureMatcher tolerances: the paper's (strict) and DiffCSP's (loose)
STRICT = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5}
LOOSE = {"ltol": 0.3, "stol": 0.5, "angle_tol": 10}
MIN_LATTICE_DIAGONAL = 0.05  # normalised units; keeps decoded cells non-degenerate
MIN_DISTANCE = 0.5  # Å: structures with two atoms closer than this are labelled invalid


def wrap_coordinates(x):
    """Batched matrices (B, 64, 3) with the fractional-coordinate rows taken modulo 1 (lattice rows untouched);
    a torch tensor or a numpy array, returned as a new one of the same kind."""
    out = x.clone() if hasattr(x, "clone") else np.array(x, copy=True)
    out[:, : MATRIX_ROWS - 3] = out[:, : MATRIX_ROWS - 3] % 1.0
    return out


def minimum_image(delta):
    """Fractional displacement mapped into [-0.5, 0.5) (the torus' shortest path; torch or numpy)."""
    return delta - delta.round()


@dataclass
class CrystalMatrix:
    """One encoded crystal: ``matrix`` (64, 3) float32, ``atomic_numbers`` (n,), ``spacegroup``."""

    matrix: np.ndarray
    atomic_numbers: np.ndarray
    spacegroup: int

    @property
    def n_sites(self) -> int:
        return len(self.atomic_numbers)


def lattice_scale(n_sites: int) -> float:
    """Å per normalised lattice unit for a cell of ``n_sites`` atoms."""
    return LENGTH_SCALE * float(n_sites) ** (1.0 / 3.0)


def canonical_lattice_matrix(lattice: Lattice) -> np.ndarray:
    """(3, 3) lower-triangular lattice rows (Å) with the same lengths and angles as ``lattice``."""
    a, b, c = lattice.abc
    alpha, beta, gamma = np.radians(lattice.angles)
    cos_a, cos_b, cos_g, sin_g = np.cos(alpha), np.cos(beta), np.cos(gamma), np.sin(gamma)
    cx = c * cos_b
    cy = c * (cos_a - cos_b * cos_g) / sin_g
    cz = np.sqrt(max(c * c - cx * cx - cy * cy, 1e-12))
    return np.array([[a, 0.0, 0.0], [b * cos_g, b * sin_g, 0.0], [cx, cy, cz]])


def canonical_structure(structure: Structure, symprec: float = SYMPREC) -> tuple[Structure, int]:
    """Primitive standard cell and its space-group number (falls back to the Niggli cell, P1)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        number = analyzer.get_space_group_number()
        primitive = analyzer.get_primitive_standard_structure()
    except Exception:  # spglib gives up on some distorted cells
        return structure.get_reduced_structure(), 1
    if len(primitive) > len(structure):
        primitive = structure.get_reduced_structure()
    return primitive, number


def detect_spacegroup(structure: Structure, symprec: float = SYMPREC) -> int:
    """spglib space-group number of ``structure`` (1 when spglib fails)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:
        return 1


def check_site_count(n_sites: int) -> None:
    if n_sites < 1:
        raise ExplorerInputError("a structure needs at least one atom")
    if n_sites > MAX_SITES:
        raise ExplorerInputError(f"{n_sites} atoms in the cell; the models support at most {MAX_SITES}")


def sorted_sites(atomic_numbers: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Order of sites: by atomic number, then x, y, z (rounded so that ties are stable)."""
    rounded = np.round(frac, 4)
    return np.lexsort((rounded[:, 2], rounded[:, 1], rounded[:, 0], atomic_numbers))


def encode(structure: Structure, spacegroup: int | None = None, canonicalize: bool = True) -> CrystalMatrix:
    """Structure -> CrystalMatrix (optionally reducing to the canonical primitive standard cell first)."""
    if canonicalize:
        structure, detected = canonical_structure(structure)
        spacegroup = spacegroup or detected
    z = np.array([site.specie.Z for site in structure], dtype=np.int64)
    check_site_count(len(z))
    if z.max() > N_ELEMENTS:
        raise ExplorerInputError("elements beyond Lr (Z > 103) are not supported")
    frac = np.mod(structure.frac_coords, 1.0)
    frac[frac > 1 - 1e-6] = 0.0
    order = sorted_sites(z, frac)
    matrix = np.zeros((MATRIX_ROWS, 3), dtype=np.float32)
    matrix[: len(z)] = frac[order]
    matrix[LATTICE_ROWS] = canonical_lattice_matrix(structure.lattice) / lattice_scale(len(z))
    return CrystalMatrix(matrix, z[order], int(spacegroup or 1))


def decode_lattice(rows: np.ndarray, n_sites: int) -> Lattice:
    """Normalised (3, 3) lattice rows -> pymatgen Lattice (Å), lower triangle only, positive volume."""
    rows = np.array(rows, dtype=np.float64)
    tri = np.tril(rows)
    diagonal = np.maximum(np.abs(np.diag(tri)), MIN_LATTICE_DIAGONAL)
    np.fill_diagonal(tri, diagonal)
    return Lattice(tri * lattice_scale(n_sites))


def decode(matrix: np.ndarray, atomic_numbers) -> Structure:
    """64×3 matrix + atomic numbers -> Structure (fractional coordinates wrapped into [0, 1))."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if not np.all(np.isfinite(matrix)):
        raise ExplorerInputError("the structure matrix contains NaN or infinite values")
    z = [int(v) for v in atomic_numbers]
    lattice = decode_lattice(matrix[LATTICE_ROWS], len(z))
    frac = np.mod(matrix[: len(z)], 1.0)
    return Structure(lattice, z, frac, coords_are_cartesian=False)


def min_interatomic_distance(structure: Structure) -> float:
    """Shortest distance (Å) between two atoms, periodic images included (inf for a 1-atom cell
    whose images are far apart is handled by pymatgen's distance matrix)."""
    if len(structure) == 1:
        return float(min(structure.lattice.abc))
    dm = structure.distance_matrix.copy()
    np.fill_diagonal(dm, np.inf)
    self_image = min(structure.lattice.abc)
    return float(min(dm.min(), self_image))


SYMMETRIZE_TOLERANCES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4)  # Å, tried in order


def symmetrize(structure: Structure, spacegroup: int, tolerances=SYMMETRIZE_TOLERANCES) -> Structure | None:
    """Snap a generated structure onto ``spacegroup``: the primitive standard cell refined at the smallest
    spglib tolerance (Å) at which the structure's space group is ``spacegroup``; None when none is.

    The composition is unchanged; the cell may be reduced to a smaller primitive cell."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    for tolerance in tolerances:
        try:
            analyzer = SpacegroupAnalyzer(structure, symprec=tolerance)
            if analyzer.get_space_group_number() != spacegroup:
                continue
            refined = analyzer.get_primitive_standard_structure()
        except Exception:
            continue
        if refined.composition.reduced_composition == structure.composition.reduced_composition:
            return refined
    return None
