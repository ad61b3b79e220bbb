"""The embedded-atom-density (EAD) descriptor (Zhang et al. 2019; paper 001, appendix A.2) in torch: periodic,
batched over crystals, differentiable with respect to fractional positions and lattice.

For atom i, angular momentum L and Gaussian centre r_s:

    rho_i(L, r_s) = sum_{lx+ly+lz=L} L!/(lx! ly! lz!) [ sum_j w_j f_c(r_ij) x^lx y^ly z^lz exp(-eta (r_ij - r_s)^2) ]^2

over every neighbour j (any periodic image) within the cutoff r_c; (x, y, z) = r_j - r_i in Å, w_j the
neighbour's atomic number / 10 and f_c(r) = (cos(pi r / r_c) + 1) / 2 the cosine cutoff. The paper's appendix
A.3.1 lost its numbers in extraction; the values here (L = 0..3, 12 centres from 0.5 to r_c - 0.5 Å, eta = 2 / Å²,
r_c = 6 Å) were chosen on validation reconstructions (README, "Descriptor family").

Neighbours are found once per :class:`PairList` (no gradient) with a skin, so that a position optimisation can
reuse the list for a while; the descriptor itself is then a gather / scatter over the listed pairs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class EADParams:
    lmax: int = 3
    n_centres: int = 12
    eta: float = 2.0
    cutoff: float = 6.0

    @property
    def centres(self) -> torch.Tensor:
        return torch.linspace(0.5, self.cutoff - 0.5, self.n_centres)

    @property
    def size(self) -> int:
        """Features per atom."""
        return (self.lmax + 1) * self.n_centres

    def to_json(self) -> dict:
        return asdict(self)


def _monomials(lmax: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(powers (M, 3), multinomial coefficient (M,), angular momentum L (M,)) of every x^lx y^ly z^lz, L <= lmax."""
    powers, coefficients, orders = [], [], []
    for order in range(lmax + 1):
        for lx, ly in itertools.product(range(order + 1), repeat=2):
            lz = order - lx - ly
            if lz < 0:
                continue
            powers.append((lx, ly, lz))
            coefficients.append(math.factorial(order) / (math.factorial(lx) * math.factorial(ly) * math.factorial(lz)))
            orders.append(order)
    return torch.tensor(powers), torch.tensor(coefficients), torch.tensor(orders)


def image_range(lattice: np.ndarray, reach: float) -> np.ndarray:
    """Integer image shifts (S, 3) that can hold a point within ``reach`` Å of any point of the cell (fractional
    positions in [0, 1))."""
    volume = abs(np.linalg.det(lattice))
    cross = [np.cross(lattice[(k + 1) % 3], lattice[(k + 2) % 3]) for k in range(3)]
    heights = [volume / max(np.linalg.norm(c), 1e-12) for c in cross]
    n = [int(math.ceil(reach / h)) + 1 for h in heights]
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1).reshape(-1, 3)
    return grid.astype(np.float64)


@dataclass
class PairList:
    """Neighbour pairs of a batch of C crystals padded to N atoms: ``crystal``, ``first``, ``second`` (atom
    indices within the crystal), integer image ``shift`` of the second atom, sorted by central atom, and each
    pair's ``slot`` among its central atom's neighbours (the dense layout :class:`EAD` sums over); ``reach`` =
    cutoff + skin."""

    crystal: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    shift: torch.Tensor
    slot: torch.Tensor
    slots: int
    reach: float

    @classmethod
    def build(cls, frac: torch.Tensor, lattice: torch.Tensor, mask: torch.Tensor, reach: float) -> PairList:
        """Every pair (i, j, image) closer than ``reach`` Å (i == j only in other images), from fractional
        positions ``frac`` (C, N, 3), ``lattice`` (C, 3, 3, rows = vectors) and atom ``mask`` (C, N)."""
        frac = frac.detach().double().cpu()
        lattice = lattice.detach().double().cpu()
        mask = mask.cpu()
        crystals, firsts, seconds, shifts = [], [], [], []
        for c in range(frac.shape[0]):
            n = int(mask[c].sum())
            f = frac[c, :n]
            shift = torch.from_numpy(image_range(lattice[c].numpy(), reach))
            delta = f[None, :, None, :] - f[:, None, None, :] + shift[None, None]  # (i, j, s, 3)
            distance = (delta @ lattice[c]).norm(dim=-1)
            keep = (distance < reach) & (distance > 1e-8)
            i, j, s = keep.nonzero(as_tuple=True)  # row-major: sorted by i
            crystals.append(torch.full_like(i, c))
            firsts.append(i)
            seconds.append(j)
            shifts.append(shift[s])
        crystal, first = torch.cat(crystals), torch.cat(firsts)
        atom = crystal * frac.shape[1] + first
        counts = torch.bincount(atom, minlength=frac.shape[0] * frac.shape[1])
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(len(atom)) - starts[atom]
        return cls(crystal, first, torch.cat(seconds), torch.cat(shifts), slot, int(counts.max()) if len(atom) else 1,
                   reach)


class EAD:
    """Per-atom EAD features and the pooled crystal-level block (max, min over atoms, shortest distance)."""

    def __init__(self, params: EADParams | None = None):
        self.params = params or EADParams()
        self.powers, self.coefficients, self.orders = _monomials(self.params.lmax)
        self.centres = self.params.centres

    def atoms(self, frac, lattice, weights, mask, pairs: PairList) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (C, N, size), shortest pair distance (C,)) of crystals with fractional positions ``frac``
        (C, N, 3), ``lattice`` (C, 3, 3), neighbour ``weights`` (C, N) and ``mask`` (C, N)."""
        p = self.params
        dtype = frac.dtype
        c, i, j = pairs.crystal, pairs.first, pairs.second
        delta = frac[c, j] - frac[c, i] + pairs.shift.to(dtype)
        vector = torch.einsum("pk,pkl->pl", delta, lattice[c])
        r = vector.norm(dim=-1).clamp_min(1e-6)
        inside = r < p.cutoff
        envelope = torch.where(inside, 0.5 * (torch.cos(math.pi * r / p.cutoff) + 1), torch.zeros_like(r))
        radial = torch.exp(-p.eta * (r[:, None] - self.centres.to(dtype)) ** 2)  # (P, K)
        ones = torch.ones_like(r)
        angular = ones[:, None]
        for axis in range(3):  # x^lx y^ly z^lz by selecting from each axis' powers 0..lmax
            component = vector[:, axis]
            table = [ones]
            for _ in range(p.lmax):
                table.append(table[-1] * component)
            angular = angular * torch.index_select(torch.stack(table, 1), 1, self.powers[:, axis].to(vector.device))
        w = weights[c, j] * envelope
        C, N = frac.shape[:2]
        atom = c * N + i
        # the pairs laid out densely per central atom, filled in place (index_put would copy the zeros first)
        dense_angular = torch.zeros(C * N, pairs.slots, angular.shape[1], dtype=dtype, device=frac.device)
        dense_angular.index_put_((atom, pairs.slot), angular * w[:, None])
        dense_radial = torch.zeros(C * N, pairs.slots, radial.shape[1], dtype=dtype, device=frac.device)
        dense_radial.index_put_((atom, pairs.slot), radial)
        sums = torch.bmm(dense_angular.transpose(1, 2), dense_radial)  # (C N, M, K)
        squared = sums**2 * self.coefficients.to(dtype)[None, :, None]
        per_order = torch.zeros(C * N, p.lmax + 1, radial.shape[1], dtype=dtype, device=frac.device)
        per_order = per_order.index_add(1, self.orders.to(frac.device), squared)
        features = per_order.reshape(C, N, -1)
        big = torch.full((C * N,), float("inf"), dtype=dtype, device=frac.device)
        shortest = big.scatter_reduce(0, atom, r, reduce="amin").reshape(C, N)
        shortest = shortest.masked_fill(~mask, float("inf")).amin(1)
        return features, shortest.clamp_max(p.cutoff)

    def pooled(self, frac, lattice, weights, mask, pairs: PairList) -> torch.Tensor:
        """(C, 2 * size + 1): max over atoms, min over atoms, shortest interatomic distance."""
        features, shortest = self.atoms(frac, lattice, weights, mask, pairs)
        m = mask[..., None]
        high = features.masked_fill(~m, float("-inf")).amax(1)
        low = features.masked_fill(~m, float("inf")).amin(1)
        return torch.cat([high, low, shortest[:, None]], 1)


def neighbour_weights(numbers: torch.Tensor) -> torch.Tensor:
    """Neighbour weights of the EAD sum: atomic number / 10 (0 for padding)."""
    return numbers.to(torch.get_default_dtype()) / 10.0


__all__ = ["EAD", "EADParams", "PairList", "image_range", "neighbour_weights"]
