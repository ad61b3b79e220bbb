"""Noise levels of the langevin family: one continuous ladder for positions (Å) and one for the lattice
(latent units of :mod:`.lattice`), indexed by ``level`` in [0, 1] (0: the largest noise)."""

from __future__ import annotations

import torch

SIGMA_POSITIONS = (2.5, 0.01)  # Å: largest, smallest
SIGMA_LATTICE = (0.5, 0.005)


def sigmas(level: torch.Tensor, ladder=SIGMA_POSITIONS) -> torch.Tensor:
    """Geometric ladder: sigma_max * (sigma_min / sigma_max) ** level."""
    high, low = ladder
    return high * (low / high) ** level
