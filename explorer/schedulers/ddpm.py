"""DDPM sampler (Ho et al. 2020) with the cosine ``squaredcos_cap_v2`` schedule, diffusers-style:
``set_timesteps(n)`` then ``step(model_output, t, sample)`` for each t in ``timesteps``."""

from __future__ import annotations

import math

import torch


def cosine_betas(num_train_timesteps: int, max_beta: float = 0.999) -> torch.Tensor:
    """Betas of the ``squaredcos_cap_v2`` schedule (Nichol & Dhariwal 2021)."""
    def alpha_bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps), max_beta)
             for i in range(num_train_timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


class DDPMScheduler:
    """Noise schedule for training (``add_noise``) and ancestral sampling (``step``)."""

    prediction_type = "epsilon"

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 beta_start: float = 1e-4, beta_end: float = 0.02, clip_sample_range: float = 3.0):
        if beta_schedule == "squaredcos_cap_v2":
            betas = cosine_betas(num_train_timesteps)
        elif beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
        else:
            raise ValueError(f"unknown beta_schedule {beta_schedule!r}")
        self.num_train_timesteps = num_train_timesteps
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self.clip_sample_range = clip_sample_range
        self.set_timesteps(num_train_timesteps)

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Evenly spaced ("leading") timesteps, from noisy to clean."""
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"steps must be in 1..{self.num_train_timesteps}, got {num_inference_steps}")
        ratio = self.num_train_timesteps // num_inference_steps
        self.num_inference_steps = num_inference_steps
        self.step_ratio = ratio
        self.timesteps = (torch.arange(num_inference_steps) * ratio).flip(0).long()

    def model_time(self, timestep: int | torch.Tensor) -> torch.Tensor:
        """Continuous time in [0, 1] that the network is conditioned on."""
        return torch.as_tensor(timestep, dtype=torch.float32) / self.num_train_timesteps

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod.to(x0.device)[timesteps].float().view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def _alphas(self, t: int):
        prev = t - self.step_ratio
        abar_t = self.alphas_cumprod[t].item()
        abar_prev = self.alphas_cumprod[prev].item() if prev >= 0 else 1.0
        return abar_t, abar_prev

    def predict_x0(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        abar_t = self.alphas_cumprod[t].item()
        x0 = (sample - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
        return x0.clamp(-self.clip_sample_range, self.clip_sample_range)

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One reverse step x_t -> x_{t-Δ} from the predicted noise."""
        t = int(timestep)
        abar_t, abar_prev = self._alphas(t)
        beta_t = 1 - abar_t / abar_prev
        x0 = self.predict_x0(model_output, t, sample)
        mean = (math.sqrt(abar_prev) * beta_t / (1 - abar_t)) * x0 \
            + (math.sqrt(1 - beta_t) * (1 - abar_prev) / (1 - abar_t)) * sample
        if t - self.step_ratio < 0:
            return mean
        variance = max((1 - abar_prev) / (1 - abar_t) * beta_t, 1e-20)
        noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=sample.device)
        return mean + math.sqrt(variance) * noise
