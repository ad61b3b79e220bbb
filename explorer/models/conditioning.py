"""Condition encoders shared by every denoiser (paper Fig. 2a): space group (conv2d over the 192×4×4
operation stack), elements (conv1d over per-site one-hot + properties), formation energy (scalar MLP) and
the sinusoidal time embedding. Their sum is the global condition vector ``c``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..elements import ELEMENT_FEATURES, feature_matrix
from ..representation import MATRIX_ROWS, MAX_SITES
from ..spacegroups import MAX_OPERATIONS, operations


@dataclass
class Conditions:
    """Batched conditions. ``elements`` (B, 64, 125) per-row features (zero on padding and lattice rows);
    ``site_mask`` (B, 64) True on occupied coordinate rows; ``spacegroup`` (B, 192, 4, 4);
    ``energy`` (B,) eV/atom (formation energy, or the energy change for modification);
    ``initial`` (B, 64, 3) the starting structure for modification models, else None."""

    elements: torch.Tensor
    site_mask: torch.Tensor
    spacegroup: torch.Tensor
    energy: torch.Tensor
    initial: torch.Tensor | None = None

    def to(self, device) -> Conditions:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Conditions(*(move(getattr(self, f)) for f in self.__dataclass_fields__))

    @property
    def n_sites(self) -> torch.Tensor:
        return self.site_mask.sum(1)

    def row_mask(self) -> torch.Tensor:
        """(B, 64) True on rows that carry data: occupied sites and the three lattice rows."""
        mask = self.site_mask.clone()
        mask[:, MATRIX_ROWS - 3 :] = True
        return mask


_FEATURES = None


def make_conditions(species: np.ndarray, spacegroup: np.ndarray, energy: np.ndarray,
                    initial: np.ndarray | None = None) -> Conditions:
    """Conditions from numpy arrays: ``species`` (B, ≤60) atomic numbers with 0 for empty rows."""
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = np.concatenate([np.zeros((1, ELEMENT_FEATURES), np.float32), feature_matrix()])
    species = np.asarray(species, dtype=np.int64)
    batch = len(species)
    padded = np.zeros((batch, MATRIX_ROWS), dtype=np.int64)
    padded[:, : species.shape[1]] = species[:, :MAX_SITES]
    elements = torch.from_numpy(_FEATURES[padded])
    site_mask = torch.from_numpy(padded > 0)
    # per-number cached stacks: building all 230 groups up front costs seconds on the first request
    ops = torch.from_numpy(np.stack([operations(int(n)) for n in np.asarray(spacegroup).reshape(-1)]))
    energy_t = torch.as_tensor(np.asarray(energy, dtype=np.float32))
    init = None if initial is None else torch.as_tensor(np.asarray(initial, dtype=np.float32))
    return Conditions(elements, site_mask, ops, energy_t, init)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer positional encoding of continuous time ``t`` in [0, 1] (scaled to 0..1000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SpaceGroupEncoder(nn.Module):
    """Conv2d encoder of the (192, 4, 4) stack of affine operations -> (B, dim)."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(MAX_OPERATIONS, hidden, kernel_size=3, padding=1), nn.SiLU(),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(hidden * 16, dim),
        )

    def forward(self, ops: torch.Tensor) -> torch.Tensor:
        return self.net(ops)


class ElementEncoder(nn.Module):
    """Conv1d encoder of the per-site element features -> per-row features (B, 64, dim) and a masked
    mean-pooled composition vector (B, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(ELEMENT_FEATURES, dim, kernel_size=1), nn.SiLU(),
            nn.Conv1d(dim, dim, kernel_size=1),
        )
        self.pool = nn.Linear(dim, dim)

    def forward(self, elements: torch.Tensor, site_mask: torch.Tensor):
        per_site = self.net(elements.transpose(1, 2)).transpose(1, 2)
        mask = site_mask.unsqueeze(-1).float()
        pooled = (per_site * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return per_site * mask, self.pool(pooled)


class ConditionEncoder(nn.Module):
    """Global condition vector c = time + space group + composition + energy (+ n_sites), and per-site
    element features."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.spacegroup = SpaceGroupEncoder(dim)
        self.elements = ElementEncoder(dim)
        self.energy = nn.Sequential(nn.Linear(2, dim), nn.SiLU(), nn.Linear(dim, dim))

    def static(self, cond: Conditions):
        """The time-independent part: (space group + composition + energy vector, per-site features)."""
        per_site, composition = self.elements(cond.elements, cond.site_mask)
        scalars = torch.stack([cond.energy.float(), cond.n_sites.float() / 20.0], dim=-1)
        return self.spacegroup(cond.spacegroup) + composition + self.energy(scalars), per_site

    def forward(self, t: torch.Tensor, cond: Conditions):
        if torch.is_grad_enabled() or self.training:
            static, per_site = self.static(cond)
        else:  # sampling calls the network many times with the same conditions: encode them once
            # (conditions, encoding) in one attribute, read once: two sessions sampling at once with this shared
            # network never take each other's encoding (two attributes, set one after the other, could pair
            # one call's conditions with the other's tensors)
            cache = getattr(self, "_encoded", None)
            if cache is None or cache[0] is not cond:
                cache = (cond, self.static(cond))
                self._encoded = cache
            static, per_site = cache[1]
        return self.time(timestep_embedding(t, self.dim)) + static, per_site
