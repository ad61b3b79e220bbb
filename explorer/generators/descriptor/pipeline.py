"""Sampling StructRepDiff vectors: the network's space (EAD entries log1p-transformed, every entry standardised
with the training set's mean and spread) and the DDPM loop, with inpainting of known entries (the composition
and atom count of a requested formula: replaced at every step by their noised true values, then exactly at the
end)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...schedulers import DDPMScheduler
from .vector import Layout


@dataclass
class VectorTransform:
    """Vector <-> network space: ``log1p`` on the EAD block (its entries are >= 0 and span decades), then
    ``(x - mean) / std`` per entry."""

    layout: Layout
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, layout: Layout, vectors: np.ndarray) -> VectorTransform:
        raw = cls(layout, np.zeros(vectors.shape[1]), np.ones(vectors.shape[1]))
        x = raw.forward(vectors)
        std = x.std(0)
        return cls(layout, x.mean(0), np.where(std > 1e-6, std, 1.0))

    def forward(self, vectors: np.ndarray) -> np.ndarray:
        x = np.array(vectors, dtype=np.float64)
        n = self.layout.n_ead
        x[:, :n] = np.log1p(np.clip(x[:, :n], 0, None))
        return (x - self.mean) / self.std

    def inverse(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, dtype=np.float64) * self.std + self.mean
        n = self.layout.n_ead
        v[:, :n] = np.expm1(np.clip(v[:, :n], 0, 50))
        return v

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, layout: Layout, data: dict) -> VectorTransform:
        return cls(layout, np.asarray(data["mean"]), np.asarray(data["std"]))


class VectorPipeline:
    """DDPM ancestral sampling of vectors with ``network`` (eps prediction) and ``scheduler``."""

    def __init__(self, network, transform: VectorTransform, scheduler: DDPMScheduler, device="cpu"):
        self.network, self.transform, self.scheduler, self.device = network, transform, scheduler, device

    @torch.no_grad()
    def __call__(self, count: int, known: np.ndarray | None = None, known_mask: np.ndarray | None = None,
                 generator: torch.Generator | None = None, callback=None) -> np.ndarray:
        """``count`` vectors (count, D); ``known`` (count, D) vectors whose entries under ``known_mask``
        (count, D, bool) are fixed (inpainting). ``callback(step, steps)`` after each step."""
        size = self.transform.layout.size
        x = torch.randn(count, size, generator=generator).to(self.device)
        fixed = None
        if known is not None and known_mask is not None and known_mask.any():
            fixed = torch.tensor(self.transform.forward(known), dtype=torch.float32, device=self.device)
            where = torch.tensor(known_mask, device=self.device)
        timesteps = self.scheduler.timesteps
        for k, t in enumerate(timesteps):
            if fixed is not None:  # the known entries at this step's noise level
                abar = float(self.scheduler.alphas_cumprod[int(t)])
                noise = torch.randn(x.shape, generator=generator).to(self.device)
                x = torch.where(where, abar**0.5 * fixed + (1 - abar) ** 0.5 * noise, x)
            eps = self.network(x, self.scheduler.model_time(torch.full((count,), int(t))).to(self.device))
            x = self.scheduler.step(eps, int(t), x, generator=generator)
            if callback is not None:
                callback(k + 1, len(timesteps))
        if fixed is not None:
            x = torch.where(where, fixed, x)
        return self.transform.inverse(x.cpu().double().numpy())


__all__ = ["VectorPipeline", "VectorTransform"]
