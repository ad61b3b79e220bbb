"""The chemeleon-dng diffusion module (CSPNet + DDPM lattice + score-matched fractional coordinates) built from
a plain config, and batches of cells in its :class:`CrystalBatch` form."""

from __future__ import annotations

import math
import threading

import numpy as np
import torch

# DiffCSP's CSP settings (its conf/model/diffusion.yaml) with the width and depth of the config
DEFAULTS = {"hidden_dim": 192, "num_layers": 4, "time_dim": 256, "num_freqs": 128, "max_atoms": 100,
            "timesteps": 1000, "sigma_begin": 0.005, "sigma_end": 0.5, "step_lr": 1e-5}


def network_config(**overrides) -> dict:
    """DEFAULTS with ``overrides`` (unknown keys are a programming error)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"unknown diffcsp settings: {sorted(unknown)}")
    return {**DEFAULTS, **overrides}


_PATCH_LOCK = threading.Lock()  # build_module swaps a function of chemeleon-dng for the time of one construction


def sigma_norm(sigmas, *_, points: int = 2048) -> torch.Tensor:
    """E[|d log p_σ(x) / dx|²] for x drawn from the wrapped normal of width σ on [0, 1), per σ in ``sigmas``: the
    normaliser of DiffCSP's fractional-coordinate score targets. chemeleon-dng (like DiffCSP) estimates it from
    10,000 random draws per σ each time a module is built (10 s for 1,000 noise levels on this CPU, and another
    estimate each time, within about 1.4 %); here it is the integral itself, by the trapezoidal rule on a periodic
    grid (exact to rounding for these smooth periodic integrands once the spacing is below σ / 3: 2,048 points
    for σ ≥ 0.005), with chemeleon-dng's 21 periodic images."""
    sigma = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    x = torch.arange(points, dtype=torch.float64) / points
    shifted = x[:, None] + torch.arange(-10, 11, dtype=torch.float64)  # (P, 21) images
    out = torch.empty_like(sigma)
    for start in range(0, len(sigma), 64):
        s = sigma[start : start + 64, None, None]
        exponent = -shifted**2 / (2 * s**2)  # (S, P, 21)
        top = exponent.max(-1, keepdim=True).values
        weight = torch.exp(exponent - top)
        score = (shifted * weight).sum(-1) / s[..., 0] ** 2  # the score times the density (over its largest image)
        density = weight.sum(-1)
        integrand = score**2 / density * torch.exp(top[..., 0]) / (math.sqrt(2 * math.pi) * s[..., 0])
        out[start : start + 64] = integrand.mean(-1)
    return out.float()


def build_module(config: dict):
    """A chemeleon-dng ``DiffusionModule`` for the CSP task (atom types given, lattice and positions sampled), its
    score normaliser :func:`sigma_norm` (not chemeleon-dng's random estimate)."""
    from chemeleon_dng.diffusion.models import dsm
    from chemeleon_dng.script_util import create_diffusion_module

    c = network_config(**config)
    model = {"hidden_dim": c["hidden_dim"], "time_dim": c["time_dim"], "num_layers": c["num_layers"],
             "max_atoms": c["max_atoms"], "act_fn": "silu", "dis_emb": "sin", "num_freqs": c["num_freqs"],
             "ln": True, "ip": True, "smooth": False, "cond_dim": 0, "pred_atom_types": False}
    # the optimiser settings are Lightning's; training here runs in explorer's own loop and ignores them
    optimizer = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0, "scheduler": "constant", "patience": 1,
                 "early_stopping": 1}
    with _PATCH_LOCK:
        estimate, dsm.get_sigma_norm = dsm.get_sigma_norm, sigma_norm
        try:
            return create_diffusion_module(task="csp", model_configs=model, optimizer_configs=optimizer,
                                           num_timesteps=c["timesteps"], beta_schedule_ddpm="cosine",
                                           beta_schedule_d3pm="cosine", max_atoms=c["max_atoms"],
                                           d3pm_hybrid_coeff=0.01, sigma_begin=c["sigma_begin"],
                                           sigma_end=c["sigma_end"])
        finally:
            dsm.get_sigma_norm = estimate


def crystal_batch(numbers, frac_coords, lattices, sizes, device="cpu"):
    """A chemeleon-dng ``CrystalBatch`` of cells: ``numbers`` (N,) and ``frac_coords`` (N, 3) of all atoms,
    ``lattices`` (B, 3, 3) row vectors, ``sizes`` (B,) atoms per cell."""
    from chemeleon_dng.schema import CrystalBatch

    sizes = torch.as_tensor(np.asarray(sizes), dtype=torch.long, device=device)
    return CrystalBatch(atom_types=torch.as_tensor(np.asarray(numbers), dtype=torch.long, device=device),
                        lattices=torch.as_tensor(np.asarray(lattices), dtype=torch.float32, device=device),
                        frac_coords=torch.as_tensor(np.asarray(frac_coords), dtype=torch.float32, device=device),
                        num_atoms=sizes, batch=torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes),
                        num_graphs=len(sizes), num_nodes=int(sizes.sum()))


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())
