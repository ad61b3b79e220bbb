"""The score network: DimeNet++ on the space-group multigraph with per-edge outputs.

torch_geometric's DimeNet++ blocks (Bessel and spherical bases, embedding, interaction) are fed the periodic
edge list and triplets of :mod:`.graph` (built in plain torch: torch_geometric's own radius graph and
triplets need pyg-lib and torch-sparse). The output blocks are DimeNet++'s with the pooling removed: each
edge ``e`` gets two numbers,

* ``w_e``: the position score of a site is ``sum_e w_e r_e / |r_e|`` over its edges (Cartesian, projected onto
  the moves its Wyckoff position allows), times 1 / sigma_X;
* ``dd_e``: how much the noise changed the edge's length; the lattice change that explains these changes
  best is the least-squares solution of ``G_e . dz = dd_e`` with ``G_e = d|r_e| / dz`` (exact, from the
  lattice map), i.e. the paper's per-edge contraction/dilation times dd/dL, solved jointly instead of averaged
  per edge (the average is ill-conditioned for edges that barely feel a lattice parameter).

One network for all noise levels: the log noise level enters as an embedding added to every edge's features.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bases import spherical_basis_layer
from .graph import Crystals, multigraph
from .lattice import matrix_jacobian

DEFAULTS = {"hidden": 96, "int_emb": 48, "basis_emb": 8, "out_emb": 96, "blocks": 3, "num_spherical": 6,
            "num_radial": 6, "cutoff": 5.0, "max_neighbors": 24, "envelope_exponent": 5, "output_layers": 2}
MAX_Z = 94  # DimeNet++'s embedding table
MIN_DISTANCE = 0.5  # Å


class EdgeOutput(nn.Module):
    """DimeNet++'s output block without the pooling onto atoms: per-edge outputs."""

    def __init__(self, num_radial, hidden, out_emb, out, layers, act):
        super().__init__()
        self.act = act
        self.lin_rbf = nn.Linear(num_radial, hidden, bias=False)
        self.lin_up = nn.Linear(hidden, out_emb, bias=False)
        self.lins = nn.ModuleList(nn.Linear(out_emb, out_emb) for _ in range(layers))
        self.lin = nn.Linear(out_emb, out, bias=False)
        nn.init.zeros_(self.lin.weight)

    def forward(self, x, rbf):
        x = self.lin_up(self.lin_rbf(rbf) * x)
        for lin in self.lins:
            x = self.act(lin(x))
        return self.lin(x)


class NoiseEmbedding(nn.Module):
    def __init__(self, hidden, frequencies=8):
        super().__init__()
        self.register_buffer("freq", 2.0 ** torch.arange(frequencies) * math.pi)
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, level):  # level in [0, 1] (0: the largest noise)
        angles = level[:, None] * self.freq
        return self.mlp(torch.cat([torch.sin(angles), torch.cos(angles)], 1))


class ScoreNetwork(nn.Module):
    def __init__(self, **config):
        super().__init__()
        from torch_geometric.nn.models.dimenet import (
            BesselBasisLayer,
            EmbeddingBlock,
            InteractionPPBlock,
        )

        self.config = {**DEFAULTS, **config}
        c = self.config
        act = nn.SiLU()
        self.rbf = BesselBasisLayer(c["num_radial"], c["cutoff"], c["envelope_exponent"])
        self.sbf = spherical_basis_layer(c["num_spherical"], c["num_radial"], c["cutoff"], c["envelope_exponent"])
        self.embedding = EmbeddingBlock(c["num_radial"], c["hidden"], act)
        self.noise = nn.ModuleList(NoiseEmbedding(c["hidden"]) for _ in range(c["blocks"] + 1))
        self.interactions = nn.ModuleList(
            InteractionPPBlock(c["hidden"], c["int_emb"], c["basis_emb"], c["num_spherical"], c["num_radial"], 1, 2,
                               act) for _ in range(c["blocks"]))
        self.outputs = nn.ModuleList(EdgeOutput(c["num_radial"], c["hidden"], c["out_emb"], 2, c["output_layers"],
                                                act) for _ in range(c["blocks"] + 1))

    def forward(self, crystals: Crystals, points: torch.Tensor, z: torch.Tensor, level: torch.Tensor,
                sigma_lattice: torch.Tensor):
        """Position scores times sigma_X per site (S, 3, Cartesian, projected) and the estimated lattice noise
        to undo, ``dz`` (B, 6, zero where not free), at noise ``level`` (B,) in [0, 1]."""
        c = self.config
        matrices = crystals.lattice.matrices(z)
        graph = multigraph(crystals, points, matrices, c["cutoff"], c["max_neighbors"])
        # the radial bases diverge as 1/d: closer pairs (noisy states) are seen at MIN_DISTANCE
        seen = graph.distances.clamp_min(MIN_DISTANCE)
        rbf = self.rbf(seen)
        sbf = self.sbf(seen, graph.angles, graph.idx_kj)
        numbers = crystals.site_numbers.clamp(max=MAX_Z)
        x = self.embedding(numbers, rbf, graph.dst, graph.src)
        x = x + self.noise[0](level)[graph.batch]
        out = self.outputs[0](x, rbf)
        for k, interaction in enumerate(self.interactions):
            x = interaction(x, rbf, sbf, graph.idx_kj, graph.idx_ji)
            x = x + self.noise[k + 1](level)[graph.batch]
            out = out + self.outputs[k + 1](x, rbf)
        n_sites = len(points)
        unit = graph.vectors / graph.distances[:, None]
        scores = torch.zeros(n_sites, 3, dtype=x.dtype).index_add_(0, graph.dst, out[:, :1] * unit)
        projector, _ = crystals.projector(matrices)
        scores = torch.einsum("sij,sj->si", projector, scores)
        # lattice: least squares of G_e . dz = dd_e per structure
        jac = matrix_jacobian(crystals.lattice, z)  # (B, 3, 3, 6)
        grads = torch.einsum("ei,eijk,ej->ek", graph.frac, jac[graph.batch], unit)  # (E, 6)
        scale = crystals.lattice.scale.to(x)[graph.batch] * sigma_lattice[graph.batch]
        change = out[:, 1] * scale
        n = crystals.n_structures
        gram = torch.zeros(n, 6, 6, dtype=x.dtype).index_add_(0, graph.batch, grads[:, :, None] * grads[:, None, :])
        rhs = torch.zeros(n, 6, dtype=x.dtype).index_add_(0, graph.batch, grads * change[:, None])
        free = crystals.lattice.free.to(x.device)
        ridge = 1e-3 * gram.diagonal(dim1=1, dim2=2).sum(1) / free.sum(1) + 1e-8
        eye = torch.eye(6, dtype=x.dtype)
        gram = gram + ridge[:, None, None] * eye + (~free).to(x.dtype)[:, :, None] * eye
        dz = torch.linalg.solve(gram, rhs * free) * free
        return scores, dz, graph
