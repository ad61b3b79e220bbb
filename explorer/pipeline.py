"""Sampling: a trained denoiser + a sampler -> batches of 64×3 matrices (diffusers-style pipeline)."""

from __future__ import annotations

import torch
from torch import nn

from .models.conditioning import Conditions
from .objectives import make_scheduler, sample_source
from .schedulers import wrap_coordinates


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        from .errors import ExplorerInputError

        raise ExplorerInputError(f"unknown device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        from .errors import ExplorerInputError

        raise ExplorerInputError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    return resolved


class GenerationPipeline:
    """Runs the reverse process of ``model`` (trained with ``method``) with ``sampler``."""

    def __init__(self, model: nn.Module, method: str, sampler: str | None = None, device="cpu"):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.method = method
        self.scheduler = make_scheduler(method, sampler)

    @torch.no_grad()
    def __call__(self, cond: Conditions, steps: int = 100, generator: torch.Generator | None = None,
                 callback=None) -> torch.Tensor:
        """Sample one structure matrix per row of ``cond``; returns (B, 64, 3) on the CPU with
        coordinates wrapped into [0, 1). ``callback(i, n)`` is called after every step (progress)."""
        batch = cond.energy.shape[0]
        cond = cond.to(self.device)
        self.scheduler.set_timesteps(steps)
        x = sample_source(self.method, (batch, 64, 3), generator=generator).to(self.device)
        rows = cond.row_mask().unsqueeze(-1).float()
        x = x * rows
        for i, t in enumerate(self.scheduler.timesteps):
            model_t = self.scheduler.model_time(t).expand(batch).to(self.device)
            output = self.model(x, model_t, cond)
            x = self.scheduler.step(output, t, x, generator=None if self.device.type != "cpu" else generator)
            x = x * rows
            if callback is not None:
                callback(i + 1, len(self.scheduler.timesteps))
        return wrap_coordinates(x.float().cpu())
