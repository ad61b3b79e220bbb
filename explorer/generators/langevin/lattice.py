"""Conventional lattices as a few free numbers.

A lattice is the 6-vector ``z`` = (softplus⁻¹(a/s), softplus⁻¹(b/s), softplus⁻¹(c/s), α, β, γ [radians]) with
``s`` the cube root of the cell volume expected from its atoms (:func:`expected_volume`). The crystal family
of the space group ties some entries and fixes others (:data:`FAMILY_FREE`): cubic a=b=c, tetragonal and
hexagonal (trigonal in hexagonal axes, R groups included) a=b, orthorhombic a, b, c; monoclinic (unique axis
b, pyxtal's standard setting) a, b, c, β; triclinic all six. Only the free entries are noised and denoised, so
every lattice has the metric its group needs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

FAMILIES = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "hexagonal", "cubic")
# free entries of z per family; tied lengths follow their source (LENGTH_SOURCE)
FAMILY_FREE = {
    "triclinic": (0, 1, 2, 3, 4, 5),
    "monoclinic": (0, 1, 2, 4),
    "orthorhombic": (0, 1, 2),
    "tetragonal": (0, 2),
    "hexagonal": (0, 2),
    "cubic": (0,),
}
LENGTH_SOURCE = {"cubic": (0, 0, 0), "tetragonal": (0, 0, 2), "hexagonal": (0, 0, 2)}
FIXED_ANGLES = {"hexagonal": (90.0, 90.0, 120.0)}
ANGLE_RANGE = (math.radians(55.0), math.radians(145.0))  # free angles are kept inside this range


def family(spacegroup: int) -> str:
    n = int(spacegroup)
    if n <= 2:
        return "triclinic"
    if n <= 15:
        return "monoclinic"
    if n <= 74:
        return "orthorhombic"
    if n <= 142:
        return "tetragonal"
    if n <= 194:
        return "hexagonal"  # trigonal groups are in hexagonal axes in the standard setting
    return "cubic"


def free_mask(spacegroups) -> torch.Tensor:
    """(B, 6) bool: the free entries of z for each space group."""
    mask = torch.zeros(len(spacegroups), 6, dtype=torch.bool)
    for row, sg in enumerate(spacegroups):
        mask[row, list(FAMILY_FREE[family(sg)])] = True
    return mask


def _sources(spacegroups) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per structure: which z entry each length reads (B, 3), and the fixed angles (B, 3, radians) with a mask
    of the free ones (B, 3)."""
    lengths = torch.tensor([LENGTH_SOURCE.get(family(sg), (0, 1, 2)) for sg in spacegroups], dtype=torch.long)
    fixed = torch.tensor([FIXED_ANGLES.get(family(sg), (90.0, 90.0, 90.0)) for sg in spacegroups],
                         dtype=torch.float64).deg2rad()
    free = free_mask(spacegroups)[:, 3:]
    return lengths, fixed, free


def softplus_inverse(x):
    x = torch.as_tensor(x)
    return x + torch.log(-torch.expm1(-x))


class LatticeMap:
    """z <-> lattice for a batch of space groups; ``scale`` (B,) Å is s."""

    def __init__(self, spacegroups, scale):
        self.spacegroups = [int(s) for s in spacegroups]
        self.scale = torch.as_tensor(scale, dtype=torch.get_default_dtype())
        self.length_source, self.fixed_angles, self.free_angles = _sources(self.spacegroups)
        self.free = free_mask(self.spacegroups)

    def tie(self, z: torch.Tensor) -> torch.Tensor:
        """z with the tied and fixed entries set from the free ones."""
        lengths = torch.gather(z[:, :3], 1, self.length_source.to(z.device))
        fixed = self.fixed_angles.to(z)
        free = self.free_angles.to(z.device)
        angles = torch.where(free, z[:, 3:].clamp(*ANGLE_RANGE), fixed)
        return torch.cat([lengths, angles], 1)

    def parameters(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 6): a, b, c (Å), alpha, beta, gamma (radians)."""
        z = self.tie(z)
        return torch.cat([torch.nn.functional.softplus(z[:, :3]) * self.scale.to(z)[:, None], z[:, 3:]], 1)

    def encode(self, parameters_deg) -> torch.Tensor:
        """z of lattice parameters (B, 6) in Å and degrees."""
        p = torch.as_tensor(np.asarray(parameters_deg, dtype=np.float64)).to(self.scale.dtype)
        lengths = softplus_inverse((p[:, :3] / self.scale[:, None]).clamp_min(1e-3))
        return torch.cat([lengths, p[:, 3:].deg2rad()], 1)

    def height2(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) squared height of c over the ab plane relative to |c|: 1 for right angles, 0 for a flat cell
        (every training cell has >= 0.5)."""
        angles = self.tie(z)[:, 3:]
        ca, cb, cg = angles.cos().unbind(1)
        cy = (ca - cb * cg) / angles[:, 2].sin()
        return 1 - cb**2 - cy**2

    def matrices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3) lattice vectors as rows (a along x, b in the xy plane)."""
        return lattice_matrices(self.parameters(z))


def lattice_matrices(parameters: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rows a, b, c from (B, 6) a, b, c, alpha, beta, gamma (radians)."""
    a, b, c, alpha, beta, gamma = parameters.unbind(1)
    ca, cb, cg, sg = torch.cos(alpha), torch.cos(beta), torch.cos(gamma), torch.sin(gamma)
    cy = (ca - cb * cg) / sg
    cz = torch.sqrt((1 - cb**2 - cy**2).clamp_min(1e-6))
    zero = torch.zeros_like(a)
    rows = [torch.stack([a, zero, zero], 1), torch.stack([b * cg, b * sg, zero], 1),
            torch.stack([c * cb, c * cy, c * cz], 1)]
    return torch.stack(rows, 1)


def matrix_jacobian(lattice: LatticeMap, z: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3, 6): d(lattice rows)/dz per structure (zero for entries that are not free)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        m = lattice.matrices(z)
        rows = []
        for k in range(9):
            (grad,) = torch.autograd.grad(m.reshape(len(z), 9)[:, k].sum(), z, retain_graph=k < 8)
            rows.append(grad)
    jac = torch.stack(rows, 1).reshape(len(z), 3, 3, 6)
    return jac * lattice.free.to(jac.device)[:, None, None, :]


def expected_volume(counts: dict, volumes: np.ndarray) -> float:
    """Cell volume (Å^3) expected from its atoms: sum of per-element volumes (``volumes`` indexed by atomic
    number, fitted on the training cells by :func:`fit_element_volumes`)."""
    return float(sum(n * volumes[z] for z, n in counts.items()))


def fit_element_volumes(counts: np.ndarray, cell_volumes: np.ndarray) -> np.ndarray:
    """(119,) per-element volumes (Å^3) by non-negative least squares of the cells' volumes on their atom
    counts ((S, 119) matrix); elements without data get the median."""
    from scipy.optimize import nnls

    used = counts.sum(0) > 0
    weights = 1.0 / cell_volumes  # relative errors
    solution, _ = nnls(counts[:, used] * weights[:, None], cell_volumes * weights)
    volumes = np.full(counts.shape[1], np.median(solution[solution > 0]))
    volumes[used] = np.where(solution > 0.5, solution, np.median(solution[solution > 0]))
    volumes[0] = 0.0
    return volumes
