"""The space-group multigraph of a batch of asymmetric units, built batched in torch.

Nodes are the symmetry-inequivalent sites (one per Wyckoff site); an edge joins a site's representative atom
(its destination) to any atom of the crystal — a symmetric copy of some site under the group's operations, in
any periodic image — closer than ``cutoff`` (the nearest ``max_neighbors`` of them), so one node carries many
edges to another, and to itself (the paper's multigraph). An edge whose source atom is a copy ``g(x_j)`` of
site ``j`` sees the neighbourhood of ``j`` turned by ``g``: the triplets (k -> j -> i) of DimeNet++ take the
edges into ``j`` and turn their vectors by ``g`` (``turn``), so angles are those of the full crystal while
only the asymmetric unit is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .lattice import LatticeMap, expected_volume
from .wyckoff import cell_counts, positions

MAX_IMAGES = 4  # periodic images per axis at most (cells thinner than cutoff / 4 are not resolved further)


@dataclass
class Crystals:
    """A batch of asymmetric units: per site (S) its structure, atomic number and Wyckoff maps; per atom of
    the conventional cells (A) its site and map; ``points`` (S, 3) and ``z`` (B, 6) are the state."""

    spacegroups: list[int]
    lattice: LatticeMap
    site_batch: torch.Tensor  # (S,)
    site_numbers: torch.Tensor  # (S,)
    site_first: torch.Tensor  # (S,) index of each site's first atom
    site_rotation: torch.Tensor  # (S, 3, 3) R_0 of the site's Wyckoff position
    site_dof: torch.Tensor  # (S,)
    atom_site: torch.Tensor  # (A,)
    atom_rotation: torch.Tensor  # (A, 3, 3)
    atom_translation: torch.Tensor  # (A, 3)
    atom_operation: torch.Tensor  # (A, 3, 3) rotation part of the group operation onto the atom
    atom_ptr: torch.Tensor  # (B + 1,)

    @classmethod
    def build(cls, spacegroups, numbers, wyckoff, scale) -> Crystals:
        """From per structure: space group, site atomic numbers and Wyckoff position indices; ``scale`` (B,)
        the length scale of each lattice (Å)."""
        site_batch, site_numbers, site_first, site_rotation, site_dof = [], [], [], [], []
        atom_site, atom_r, atom_t, atom_g, atom_ptr = [], [], [], [], [0]
        s = a = 0
        for b, (sg, zs, ws) in enumerate(zip(spacegroups, numbers, wyckoff)):
            table = positions(int(sg))
            for z, w in zip(zs, ws):
                wp = table[int(w)]
                site_batch.append(b)
                site_numbers.append(int(z))
                site_first.append(a)
                site_rotation.append(wp.rotations[0])
                site_dof.append(wp.dof)
                atom_site += [s] * wp.multiplicity
                atom_r.append(wp.rotations)
                atom_t.append(wp.translations)
                atom_g.append(wp.operations)
                a += wp.multiplicity
                s += 1
            atom_ptr.append(a)
        dtype = torch.get_default_dtype()
        return cls([int(g) for g in spacegroups], LatticeMap(spacegroups, scale), torch.tensor(site_batch),
                   torch.tensor(site_numbers), torch.tensor(site_first),
                   torch.tensor(np.array(site_rotation), dtype=dtype), torch.tensor(site_dof),
                   torch.tensor(atom_site), torch.tensor(np.concatenate(atom_r), dtype=dtype),
                   torch.tensor(np.concatenate(atom_t), dtype=dtype),
                   torch.tensor(np.concatenate(atom_g), dtype=dtype), torch.tensor(atom_ptr))

    @classmethod
    def of(cls, units, volumes) -> Crystals:
        """The batch of asymmetric units or templates (anything with ``spacegroup``, ``numbers``, ``wyckoff``),
        each lattice's scale the cube root of the volume its atoms are expected to take (``volumes``)."""
        scale = [expected_volume(cell_counts(u.spacegroup, u.numbers, u.wyckoff), volumes) ** (1 / 3)
                 for u in units]
        return cls.build([u.spacegroup for u in units], [u.numbers for u in units], [u.wyckoff for u in units],
                         scale)

    @property
    def n_structures(self) -> int:
        return len(self.spacegroups)

    def atom_coords(self, points: torch.Tensor) -> torch.Tensor:
        """(A, 3) fractional coordinates of every atom of the conventional cells."""
        return torch.einsum("aij,aj->ai", self.atom_rotation, points[self.atom_site]) + self.atom_translation

    def projector(self, matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per site: the Cartesian projector onto the moves its Wyckoff position allows (S, 3, 3), and the map
        from such a Cartesian move (row vector) to the move of its generic point (S, 3, 3)."""
        jac = torch.einsum("sji,sjk->sik", matrices[self.site_batch], self.site_rotation)  # M^T R_0
        pinv = torch.linalg.pinv(jac, rtol=1e-6)
        return jac @ pinv, pinv


@dataclass
class Graph:
    dst: torch.Tensor  # (E,) site
    src: torch.Tensor  # (E,) site whose copy is the source atom
    vectors: torch.Tensor  # (E, 3) Cartesian, destination -> source
    distances: torch.Tensor  # (E,)
    frac: torch.Tensor  # (E, 3) fractional vector (for the lattice derivative)
    batch: torch.Tensor  # (E,)
    idx_kj: torch.Tensor  # (T,) triplets: edge into the source's site
    idx_ji: torch.Tensor  # (T,) ... and the edge it feeds
    angles: torch.Tensor  # (T,)


def _image_range(matrices: torch.Tensor, cutoff: float) -> torch.Tensor:
    """(B, 3) images per axis needed to see every atom within ``cutoff`` of a point (after minimum-image
    wrapping of fractional differences)."""
    volume = torch.det(matrices).abs()
    heights = torch.stack([volume / torch.linalg.cross(matrices[:, (i + 1) % 3], matrices[:, (i + 2) % 3]).norm(dim=1)
                           for i in range(3)], 1)
    return torch.floor(cutoff / heights.clamp_min(1e-6) + 0.5).clamp(0, MAX_IMAGES).long()


def multigraph(crystals: Crystals, points: torch.Tensor, matrices: torch.Tensor, cutoff: float,
               max_neighbors: int) -> Graph:
    """The multigraph of the batch at ``points`` (S, 3) with lattices ``matrices`` (B, 3, 3, rows)."""
    with torch.no_grad():
        coords = crystals.atom_coords(points)
        site_coords = coords[crystals.site_first]
        counts = crystals.atom_ptr[1:] - crystals.atom_ptr[:-1]  # atoms per structure
        per_site = counts[crystals.site_batch]
        pair_dst = torch.repeat_interleave(torch.arange(len(site_coords)), per_site)
        start = torch.repeat_interleave(torch.cumsum(per_site, 0) - per_site, per_site)
        pair_src = crystals.atom_ptr[crystals.site_batch[pair_dst]] + torch.arange(len(pair_dst)) - start
        diff = coords[pair_src] - site_coords[pair_dst]
        diff = diff - torch.round(diff)
        pair_batch = crystals.site_batch[pair_dst]
        ranges = _image_range(matrices, cutoff)[pair_batch]  # (P, 3)
        found = []
        for key in torch.unique(ranges, dim=0):
            rows = torch.nonzero((ranges == key).all(1)).squeeze(1)
            axes = [torch.arange(-int(k), int(k) + 1) for k in key]
            images = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).to(diff.dtype)
            frac = diff[rows, None, :] + images[None]  # (P', I, 3)
            cart = torch.einsum("pij,pjk->pik", frac, matrices[pair_batch[rows]])
            dist = cart.norm(dim=-1)
            keep = (dist < cutoff) & (dist > 1e-4)
            p_idx, i_idx = torch.nonzero(keep, as_tuple=True)
            found.append((rows[p_idx], frac[p_idx, i_idx], cart[p_idx, i_idx], dist[p_idx, i_idx]))
        pair = torch.cat([f[0] for f in found])
        frac = torch.cat([f[1] for f in found])
        cart = torch.cat([f[2] for f in found])
        dist = torch.cat([f[3] for f in found])
        dst = pair_dst[pair]
        # the nearest max_neighbors per destination, edges sorted by destination
        order = torch.argsort(dist, stable=True)
        order = order[torch.argsort(dst[order], stable=True)]
        dst, pair, frac, cart, dist = dst[order], pair[order], frac[order], cart[order], dist[order]
        n_sites = len(site_coords)
        degree = torch.bincount(dst, minlength=n_sites)
        first = torch.cumsum(degree, 0) - degree
        rank = torch.arange(len(dst)) - first[dst]
        keep = rank < max_neighbors
        dst, pair, frac, cart, dist = dst[keep], pair[keep], frac[keep], cart[keep], dist[keep]
        atom = pair_src[pair]
        src = crystals.atom_site[atom]
        batch = crystals.site_batch[dst]
        degree = torch.bincount(dst, minlength=n_sites)
        ptr = torch.cumsum(degree, 0) - degree
        # triplets: for edge e (j -> i), every edge f into j, turned by the operation taking j onto e's source
        m = matrices[batch]
        turn = torch.linalg.solve(m, crystals.atom_operation[atom].transpose(1, 2) @ m)  # M^-1 G^T M
        n_in = degree[src]
        idx_ji = torch.repeat_interleave(torch.arange(len(dst)), n_in)
        offset = torch.repeat_interleave(torch.cumsum(n_in, 0) - n_in, n_in)
        idx_kj = ptr[src[idx_ji]] + torch.arange(len(idx_ji)) - offset
        turned = torch.einsum("ti,tij->tj", cart[idx_kj], turn[idx_ji])
        back = -cart[idx_ji]
        not_back = (turned - back).norm(dim=1) > 1e-3
        idx_kj, idx_ji, turned, back = idx_kj[not_back], idx_ji[not_back], turned[not_back], back[not_back]
        angles = torch.atan2(torch.linalg.cross(back, turned).norm(dim=1), (back * turned).sum(1))
    return Graph(dst, src, cart, dist, frac, batch, idx_kj, idx_ji, angles)
