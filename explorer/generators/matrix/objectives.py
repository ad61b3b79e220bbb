"""Training objectives and their matching samplers, one per generative method.

| method       | source x0           | network predicts | sampler                         |
|--------------|---------------------|------------------|---------------------------------|
| ddpm         | N(0, 1)             | noise ε          | DDPMScheduler / DDIMScheduler   |
| cfm-normal   | N(0, 1)             | velocity x1 − x0 | FlowEulerScheduler              |
| cfm-uniform  | U(0, 1)             | velocity         | FlowEulerScheduler(periodic)    |

(:func:`explorer.schedulers.make_scheduler` builds the sampler of a method.)

For ``cfm-uniform`` the coordinate rows are interpolated on the torus: x_t = x0 + t·mi(x1 − x0) (mod 1),
mi = minimum image, so the flow takes the shortest periodic path (the hard-minimum limit of the paper's
PBC-aware loss); the paper interpolated in [0, 1)^3 without wrapping. For ``ddpm`` and ``cfm-normal`` the
paper's soft-minimum PBC loss (A.4) is added on the predicted clean coordinates.
"""

from __future__ import annotations

import torch

from ...models.conditioning import Conditions
from ...representation import MATRIX_ROWS, minimum_image, wrap_coordinates
from ...schedulers import DDPMScheduler
from .losses import masked_mse, pbc_loss

METHODS = ("ddpm", "cfm-normal", "cfm-uniform")
SITE_ROWS = slice(0, MATRIX_ROWS - 3)


def sample_source(method: str, shape, generator: torch.Generator | None = None) -> torch.Tensor:
    """x0 / x_T for sampling: N(0, 1) or U(0, 1) noise of ``shape``."""
    if method == "cfm-uniform":
        return torch.rand(shape, generator=generator)
    return torch.randn(shape, generator=generator)


class Objective:
    """Computes the training loss of ``model`` on a batch of clean structures ``x1``."""

    def __init__(self, method: str, pbc_weight: float = 0.1, num_train_timesteps: int = 1000):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
        self.method = method
        self.pbc_weight = pbc_weight
        self.ddpm = DDPMScheduler(num_train_timesteps) if method == "ddpm" else None

    def __call__(self, model, x1: torch.Tensor, cond: Conditions) -> tuple[torch.Tensor, dict]:
        batch = x1.shape[0]
        rows = cond.row_mask()
        if self.method == "ddpm":
            steps = torch.randint(0, self.ddpm.num_train_timesteps, (batch,))
            noise = torch.randn_like(x1)
            xt = self.ddpm.add_noise(x1, noise, steps)
            eps = model(xt, self.ddpm.model_time(steps), cond)
            mse = masked_mse(eps, noise, rows)
            abar = self.ddpm.alphas_cumprod[steps].float().view(-1, 1, 1)
            x1_hat = (xt - (1 - abar).sqrt() * eps) / abar.sqrt()
            weight = abar.view(-1)  # trust x̂0 only where little noise was added
        else:
            t = torch.rand(batch)
            tt = t.view(-1, 1, 1)
            x0 = sample_source(self.method, x1.shape)
            if self.method == "cfm-uniform":
                delta = x1 - x0
                delta[:, SITE_ROWS] = minimum_image(delta[:, SITE_ROWS])
                xt = wrap_coordinates(x0 + tt * delta)
            else:
                delta = x1 - x0
                xt = x0 + tt * delta
            velocity = model(xt, t, cond)
            mse = masked_mse(velocity, delta, rows)
            x1_hat = xt + (1 - tt) * velocity
            weight = torch.ones(batch)
        logs = {"mse": float(mse.detach())}
        loss = mse
        if self.pbc_weight and self.method != "cfm-uniform":
            pbc = pbc_loss(x1_hat * weight.view(-1, 1, 1) + x1 * (1 - weight.view(-1, 1, 1)), x1, cond.site_mask)
            loss = loss + self.pbc_weight * pbc
            logs["pbc"] = float(pbc.detach())
        return loss, logs
