"""DiffCSP's predictor-corrector sampler on any subsequence of the model's timesteps.

With every timestep (``set_timesteps(T)``) a step is exactly chemeleon-dng's ``DiffusionModule.p_sample``: the
DDPM posterior step of the lattice, the reverse-diffusion predictor of the fractional coordinates (variance
exploding, wrapped) and one Langevin corrector step at the same noise level. With fewer steps a step jumps from
timestep ``t`` to the next one ``s < t``:

- lattice: the DDPM posterior ``q(x_s | x_t, x0)`` of the skipped interval (ancestral sampling with strides,
  DDIM with eta = 1), ``x0`` from the predicted noise, clipped to +-``lattice_bound`` Å when one is given
  (DDPM's "clip denoised"): near t = T the posterior mean multiplies the error of the predicted noise by up to
  1 / sqrt(alpha_t) = 100, and an imprecise network then throws the lattice to 1000 Å, where it stays;
- coordinates: the predictor moves the noise level from sigma_t to sigma_s (step ``sigma_t**2 - sigma_s**2``,
  noise ``sigma_s * sqrt(1 - sigma_s**2 / sigma_t**2)``), the corrector's step is ``step_lr`` scaled by
  ``corrector_scale`` (a stride makes the corrector's total Langevin time shorter; chosen on val).

Model and scheduler are separate (diffusers): the sampler holds the noise tables, the caller the network.
"""

from __future__ import annotations

import numpy as np
import torch

LATTICE_BOUND = 50.0  # Å: the largest lattice-matrix entry of the training cells is 46.7


def strided_timesteps(total: int, steps: int) -> list[int]:
    """``steps`` timesteps from ``total`` down to 1: ``total`` itself, then ``steps - 1`` evenly spaced from
    ``total - 1`` to 1. The first step is always a single one: the cosine schedule's last timestep has
    alpha-bar 2e-10, and a jump from it to any earlier timestep multiplies the error of the predicted noise by
    sqrt(alpha-bar ratio) (1000 for 1000 -> 990), which blows the lattice up."""
    if not 1 <= steps <= total:
        raise ValueError(f"steps must be in [1, {total}], got {steps}")
    if steps == 1:
        return [total]
    if steps == 2:
        return [total, 1] if total > 1 else [total]
    rest = np.linspace(total - 1, 1, steps - 1)
    return [total] + sorted({int(round(t)) for t in rest}, reverse=True)


class PredictorCorrectorSampler:
    """``set_timesteps(n)`` then, for each ``t`` in ``timesteps``, ``step(module, x, t)``."""

    def __init__(self, module, step_lr: float = 1e-5, corrector_scale: float = 1.0,
                 lattice_bound: float | None = None):
        self.lattice = module.diffusion_lattice
        self.coords = module.diffusion_frac_coord
        self.total = int(self.coords.timesteps)
        self.step_lr = float(step_lr)
        self.corrector_scale = float(corrector_scale)
        self.lattice_bound = lattice_bound
        self.alphas_cumprod = self.lattice.alphas_cumprod.double()  # index 0 = no noise
        self.sigmas = self.coords.sigmas.double()  # index 0 = 0
        self.sigmas_norm = self.coords.sigmas_norm.double()
        self.set_timesteps(self.total)

    def set_timesteps(self, steps: int) -> None:
        self.timesteps = strided_timesteps(self.total, int(steps))
        self._next = dict(zip(self.timesteps, self.timesteps[1:] + [0]))

    def _lattice_step(self, eps, x, t: int, s: int, noise):
        a_t, a_s = self.alphas_cumprod[t], self.alphas_cumprod[s]
        x0 = (x - torch.sqrt(1 - a_t) * eps) / torch.sqrt(a_t)
        if self.lattice_bound is not None:
            x0 = x0.clamp(-self.lattice_bound, self.lattice_bound)
        a_ts = a_t / a_s
        mean = (torch.sqrt(a_s) * (1 - a_ts) / (1 - a_t)) * x0 + (torch.sqrt(a_ts) * (1 - a_s) / (1 - a_t)) * x
        var = (1 - a_ts) * (1 - a_s) / (1 - a_t)
        return mean + torch.sqrt(var) * noise

    def _coord_predictor(self, out, x, t: int, s: int, noise):
        sigma_t, sigma_s = self.sigmas[t], self.sigmas[s]
        step = sigma_t**2 - sigma_s**2
        std = torch.sqrt(sigma_s**2 * step / sigma_t**2)
        return (x - step * out * torch.sqrt(self.sigmas_norm[t]) + std * noise) % 1.0

    def _coord_corrector(self, out, x, t: int, noise):
        step = self.corrector_scale * self.step_lr * (self.sigmas[t] / self.coords.sigma_begin) ** 2
        if t == self.timesteps[-1]:  # the last step adds no noise (as p_sample at t = 1)
            noise = torch.zeros_like(noise)
        return (x - step * out * torch.sqrt(self.sigmas_norm[t]) + torch.sqrt(2 * step) * noise) % 1.0

    def step(self, module, x, t: int):
        """One predictor and one corrector step from timestep ``t`` to the next of ``timesteps``
        (``x`` a chemeleon-dng ``CrystalBatch``; a new one is returned)."""
        s = self._next[t]
        tt = torch.full((int(x.num_graphs),), t, dtype=torch.long, device=x.lattices.device)
        out = _predict(module, x, tt)
        lattices = self._lattice_step(out.lattices.double(), x.lattices.double(), t, s,
                                      torch.randn_like(x.lattices).double())
        frac = self._coord_predictor(out.frac_coords.double(), x.frac_coords.double(), t, s,
                                     torch.randn_like(x.frac_coords).double())
        mid = x.model_copy(update={"lattices": lattices.to(x.lattices.dtype),
                                 "frac_coords": frac.to(x.frac_coords.dtype)})
        out = _predict(module, mid, tt)
        frac = self._coord_corrector(out.frac_coords.double(), frac, t,
                                     torch.randn_like(x.frac_coords).double())
        return mid.model_copy(update={"frac_coords": frac.to(x.frac_coords.dtype)})


def _predict(module, x, t):
    return module.model(atom_types=x.atom_types, lattices=x.lattices, frac_coords=x.frac_coords,
                        num_atoms=x.num_atoms, batch_idx=x.batch, t=t)
