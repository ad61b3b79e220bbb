"""Atom-permutation-equivariant transformer denoiser with periodic features.

Tokens: one per occupied site (element features + Fourier features of its fractional coordinates) and
one for the lattice. Attention gets a learned bias from Fourier features of the pairwise fractional
offsets (invariant to a global translation, periodic in each coordinate). Every block is modulated by the
global condition vector (adaLN, as in DiT). Input and output are the paper's 64×3 matrix, so the
transformer is a drop-in replacement for the 1-D UNet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..representation import MATRIX_ROWS
from .conditioning import ConditionEncoder, Conditions

N_FREQ = 4
N_PAIR_FREQ = 3


def fourier(x: torch.Tensor, n_freq: int) -> torch.Tensor:
    """[sin 2πkx, cos 2πkx] for k = 1..n_freq, on the last axis."""
    k = torch.arange(1, n_freq + 1, device=x.device, dtype=x.dtype)
    angles = 2 * math.pi * x.unsqueeze(-1) * k
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))
        self.modulation = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).unsqueeze(1).chunk(6, dim=-1)
        x = self.norm1(h) * (1 + scale1) + shift1
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + gate1 * self.proj(attn.transpose(1, 2).reshape(b, n, d))
        x = self.norm2(h) * (1 + scale2) + shift2
        return h + gate2 * self.mlp(x)


class CrystalTransformer(nn.Module):
    """Denoiser f(x_t, t, conditions) -> (B, 64, 3): noise, velocity or clean structure, by training."""

    def __init__(self, dim: int = 192, depth: int = 6, heads: int = 6, with_initial: bool = False):
        super().__init__()
        self.config = {"arch": "transformer", "dim": dim, "depth": depth, "heads": heads,
                       "with_initial": with_initial}
        self.heads = heads
        n_in = 3 + 6 * N_FREQ
        self.conditions = ConditionEncoder(dim)
        self.site_in = nn.Linear(n_in * (2 if with_initial else 1), dim)
        self.lattice_in = nn.Linear(9 * (2 if with_initial else 1), dim)
        self.lattice_token = nn.Parameter(torch.zeros(dim))
        self.pair_bias = nn.Sequential(nn.Linear(6 * N_PAIR_FREQ, 64), nn.SiLU(), nn.Linear(64, heads * depth))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False)
        self.out_modulation = nn.Linear(dim, 2 * dim)
        self.site_out = nn.Linear(dim, 3)
        self.lattice_out = nn.Linear(dim, 9)
        for layer in (self.site_out, self.lattice_out, self.out_modulation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _site_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, fourier(x, N_FREQ)], dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
        batch = x.shape[0]
        n = int(cond.site_mask.sum(1).max().item())
        coords = x[:, :n]
        lattice = x[:, MATRIX_ROWS - 3 :].reshape(batch, 9)
        site_in = self._site_features(coords)
        lattice_in = lattice
        if cond.initial is not None:
            site_in = torch.cat([site_in, self._site_features(cond.initial[:, :n])], dim=-1)
            lattice_in = torch.cat([lattice, cond.initial[:, MATRIX_ROWS - 3 :].reshape(batch, 9)], dim=-1)
        c, per_site = self.conditions(t, cond)
        sites = self.site_in(site_in) + per_site[:, :n]
        lat = (self.lattice_in(lattice_in) + self.lattice_token).unsqueeze(1)
        h = torch.cat([sites, lat], dim=1)  # (B, n + 1, dim)

        mask = torch.cat([cond.site_mask[:, :n], torch.ones(batch, 1, dtype=torch.bool, device=x.device)], 1)
        offsets = coords.unsqueeze(2) - coords.unsqueeze(1)  # (B, n, n, 3)
        pair = self.pair_bias(fourier(offsets, N_PAIR_FREQ))  # (B, n, n, heads * depth)
        full = torch.zeros(batch, n + 1, n + 1, pair.shape[-1], device=x.device, dtype=pair.dtype)
        full[:, :n, :n] = pair
        key_mask = torch.zeros(batch, 1, 1, n + 1, device=x.device, dtype=pair.dtype)
        key_mask = key_mask.masked_fill(~mask[:, None, None, :], float("-inf"))
        full = full.permute(0, 3, 1, 2) + key_mask  # (B, heads * depth, n+1, n+1)

        for i, block in enumerate(self.blocks):
            h = block(h, c, full[:, i * self.heads : (i + 1) * self.heads])
        shift, scale = self.out_modulation(c).unsqueeze(1).chunk(2, dim=-1)
        h = self.norm_out(h) * (1 + scale) + shift
        out = torch.zeros_like(x)
        out[:, :n] = self.site_out(h[:, :n]) * cond.site_mask[:, :n, None]
        out[:, MATRIX_ROWS - 3 :] = self.lattice_out(h[:, n]).view(batch, 3, 3)
        return out
