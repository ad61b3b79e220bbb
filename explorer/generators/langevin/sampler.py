"""Annealed Langevin dynamics on asymmetric units (the scheduler; the network is :mod:`.model`).

``set_timesteps(levels, steps_per_level)`` lays out the noise ladder (levels geometric from the largest to the
smallest sigma of :mod:`.noise`); at each level ``k`` the positions and then the lattice make
``steps_per_level`` Langevin moves with step sizes ``eps_k = gamma * sigma_k**2`` (the paper's
``gamma sigma_k^2 / sigma_F^2`` with ``gamma`` absorbing ``1 / sigma_F^2``), separate for positions and
lattice, the lattice noise scaled by its temperature (paper: 0.15):

    x <- x + eps_k / 2 * score_x + sqrt(eps_k) * xi            (within each Wyckoff position's free moves)
    z <- z + eps_L / 2 * score_z + sqrt(eps_L * T_L) * xi      (free lattice entries only)

The network returns ``sigma * score`` for positions and the lattice noise to undo, ``dz = sigma_L^2 *
score_z``; :meth:`LangevinScheduler.step` takes those. After the last level one denoising step (Tweedie:
``x + sigma^2 score``) removes the remaining noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .noise import SIGMA_LATTICE, SIGMA_POSITIONS, sigmas


@dataclass
class LangevinScheduler:
    gamma_positions: float = 0.8  # chosen on 150 val rows (0.2, 0.4, 0.8, 1.6)
    gamma_lattice: float = 0.8
    temperature_lattice: float = 0.15
    levels: torch.Tensor = field(default_factory=lambda: torch.linspace(0, 1, 20))
    steps_per_level: int = 10

    def set_timesteps(self, levels: int, steps_per_level: int) -> None:
        """``levels`` noise levels (>= 1), ``steps_per_level`` moves at each (>= 1)."""
        self.levels = torch.linspace(0, 1, int(levels)) if levels > 1 else torch.ones(1)
        self.steps_per_level = int(steps_per_level)

    @property
    def timesteps(self) -> list[tuple[int, float]]:
        """(level index, level in [0, 1]) of every move, in order."""
        return [(k, float(level)) for k, level in enumerate(self.levels) for _ in range(self.steps_per_level)]

    @property
    def num_steps(self) -> int:
        return len(self.levels) * self.steps_per_level

    @staticmethod
    def sigma(level: float) -> tuple[float, float]:
        """(positions sigma in Å, lattice sigma) at ``level``."""
        t = torch.tensor(float(level))
        return float(sigmas(t, SIGMA_POSITIONS)), float(sigmas(t, SIGMA_LATTICE))

    def step_positions(self, scaled_score: torch.Tensor, level: float, noise: torch.Tensor) -> torch.Tensor:
        """Cartesian move of each site (S, 3) from ``scaled_score`` = sigma * score (projected) and ``noise``
        (standard normal, already projected onto the free moves)."""
        sigma, _ = self.sigma(level)
        eps = self.gamma_positions * sigma**2
        return 0.5 * eps * scaled_score / sigma + eps**0.5 * noise

    def step_lattice(self, dz: torch.Tensor, level: float, noise: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """Change of z (B, 6) from the estimated noise to undo ``dz`` (= sigma_L^2 * score)."""
        _, sigma = self.sigma(level)
        eps = self.gamma_lattice * sigma**2
        return (0.5 * eps * dz / sigma**2 + (eps * self.temperature_lattice) ** 0.5 * noise) * free

    def denoise(self, scaled_score: torch.Tensor, dz: torch.Tensor, level: float) -> tuple[torch.Tensor,
                                                                                           torch.Tensor]:
        """The final Tweedie step: (Cartesian move of each site, change of z)."""
        sigma, _ = self.sigma(level)
        return sigma * scaled_score, dz
