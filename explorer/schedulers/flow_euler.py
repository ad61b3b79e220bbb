"""Euler sampler for conditional flow matching (Lipman et al. 2023; paper Algorithm 6).

The model predicts a velocity v(x_t, t); sampling integrates dx = v dt from t = 0 (source: N(0, 1),
U(0, 1) or an initial structure) to t = 1. With ``periodic=True`` the coordinate rows live on the torus
[0, 1)^3 and are wrapped after every step.
"""

from __future__ import annotations

import torch

from ..representation import wrap_coordinates


class FlowEulerScheduler:
    prediction_type = "velocity"

    def __init__(self, periodic: bool = False):
        self.periodic = periodic
        self.set_timesteps(100)

    def set_timesteps(self, num_inference_steps: int) -> None:
        if num_inference_steps < 1:
            raise ValueError(f"steps must be >= 1, got {num_inference_steps}")
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.arange(num_inference_steps, dtype=torch.float32) / num_inference_steps

    def model_time(self, timestep: float | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(timestep, dtype=torch.float32)

    def step(self, model_output: torch.Tensor, timestep: float, sample: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        x = sample + model_output / self.num_inference_steps
        return wrap_coordinates(x) if self.periodic else x
