"""The denoiser of the descriptor family: a residual MLP over the (transformed, standardised) StructRepDiff
vector, conditioned on the diffusion time by scale-and-shift. The paper uses a 1-D UNet with attention over the
vector's entries (appendix A.3.2); on this CPU a compact MLP of the same role is used (README states it)."""

from __future__ import annotations

import math

import torch
from torch import nn


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of continuous times t in [0, 1] (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


class Block(nn.Module):
    def __init__(self, hidden: int, emb: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(emb, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, h, e):
        scale, shift = self.film(e).chunk(2, dim=1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class VectorDenoiser(nn.Module):
    """eps-prediction network: (noisy vector (B, D), time (B,) in [0, 1]) -> predicted noise (B, D)."""

    def __init__(self, size: int, hidden: int = 384, blocks: int = 3, emb: int = 128):
        super().__init__()
        self.size, self.emb = size, emb
        self.time = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Linear(size, hidden)
        self.blocks = nn.ModuleList(Block(hidden, emb) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, size))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e = self.time(time_embedding(t, self.emb))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(h)


__all__ = ["VectorDenoiser", "time_embedding"]
