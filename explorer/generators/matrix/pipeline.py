"""Sampling: a trained denoiser + a sampler -> batches of 64×3 matrices (diffusers-style pipeline).

:class:`GenerationPipeline` is the one sampling loop of the matrix family; the modification models run
through it too (:class:`ModificationPipeline`): Palette is the DDPM loop, palette-cfm the Euler loop from
N(0, 1) and cfm the periodic Euler loop started from the initial structure, each with the initial structure
among the conditions. Only the regression model, one network step, has no loop.
"""

from __future__ import annotations

import torch
from torch import nn

from ...devices import resolve_device
from ...models.conditioning import Conditions
from ...representation import wrap_coordinates
from ...schedulers import make_scheduler
from .objectives import sample_source

# modification method -> (the generation method whose loop samples it, start from the initial structure?)
MODIFICATION_LOOPS = {"palette": ("ddpm", False), "palette-cfm": ("cfm-normal", False), "cfm": ("cfm-uniform", True)}
MODIFICATION_METHODS = ("regression", *MODIFICATION_LOOPS)


class GenerationPipeline:
    """Runs the reverse process of ``model`` (trained with ``method``) with ``sampler``."""

    def __init__(self, model: nn.Module, method: str, sampler: str | None = None, device="cpu"):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.method = method
        self.scheduler = make_scheduler(method, sampler)

    @torch.no_grad()
    def __call__(self, cond: Conditions, steps: int = 100, generator: torch.Generator | None = None,
                 callback=None, start: torch.Tensor | None = None) -> torch.Tensor:
        """Sample one structure matrix per row of ``cond``; returns (B, 64, 3) on the CPU with coordinates
        wrapped into [0, 1). ``start`` replaces the method's noise source (x at t = 0 of a flow).
        ``callback(i, n)`` is called after every step (progress; it may raise to cancel)."""
        batch = cond.energy.shape[0]
        cond = cond.to(self.device)
        self.scheduler.set_timesteps(steps)
        x = sample_source(self.method, (batch, 64, 3), generator=generator) if start is None else start.clone()
        rows = cond.row_mask().unsqueeze(-1).float()
        x = x.to(self.device) * rows
        for i, t in enumerate(self.scheduler.timesteps):
            model_t = self.scheduler.model_time(t).expand(batch).to(self.device)
            output = self.model(x, model_t, cond)
            x = self.scheduler.step(output, t, x, generator=None if self.device.type != "cpu" else generator)
            x = x * rows
            if callback is not None:
                callback(i + 1, len(self.scheduler.timesteps))
        return wrap_coordinates(x.float().cpu())


def regression_step(model, cond: Conditions) -> torch.Tensor:
    """One-step prediction of the target as a displacement of the initial structure (the network starts as
    the identity map, which is already close for similar polymorphs)."""
    zeros = torch.zeros(cond.initial.shape[0], device=cond.initial.device)
    return cond.initial + model(cond.initial, zeros, cond)


class ModificationPipeline:
    """Samples target structures from initial ones (``cond.initial``) with a trained modification model."""

    def __init__(self, model: nn.Module, method: str, device="cpu"):
        if method not in MODIFICATION_METHODS:
            raise ValueError(f"unknown modification method {method!r}; choose from {MODIFICATION_METHODS}")
        self.method = method
        loop, self.from_initial = MODIFICATION_LOOPS.get(method, (None, False))
        self.loop = GenerationPipeline(model, loop, device=device) if loop else None
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, cond: Conditions, steps: int = 100, generator: torch.Generator | None = None,
                 callback=None) -> torch.Tensor:
        if self.loop is not None:
            return self.loop(cond, steps, generator, callback, start=cond.initial if self.from_initial else None)
        cond = cond.to(self.device)
        rows = cond.row_mask().unsqueeze(-1).float()
        x = regression_step(self.model, cond)
        if callback is not None:
            callback(1, 1)
        return wrap_coordinates((x * rows).float().cpu())
