"""DDIM sampler (Song et al. 2021) over a model trained with :class:`DDPMScheduler` (same ε network)."""

from __future__ import annotations

import math

import torch

from .ddpm import DDPMScheduler


class DDIMScheduler(DDPMScheduler):
    """Deterministic (``eta = 0``) or stochastic DDIM steps on the DDPM noise schedule."""

    def __init__(self, *args, eta: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.eta = eta

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        t = int(timestep)
        abar_t, abar_prev = self._alphas(t)
        x0 = self.predict_x0(model_output, t, sample)
        eps = (sample - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)
        sigma = self.eta * math.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
        direction = math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
        prev = math.sqrt(abar_prev) * x0 + direction
        if sigma > 0 and t - self.step_ratio >= 0:
            prev = prev + sigma * torch.randn(sample.shape, generator=generator, dtype=sample.dtype,
                                              device=sample.device)
        return prev
