"""Denoising networks. Every model maps (x_t (B, 64, 3), t (B,), Conditions) -> (B, 64, 3)."""

from __future__ import annotations

from torch import nn

from .conditioning import Conditions, make_conditions
from .transformer import CrystalTransformer
from .unet1d import UNet1D, paper_unet

ARCHITECTURES = {"transformer": CrystalTransformer, "unet1d": UNet1D}


def build_model(config: dict) -> nn.Module:
    """Instantiate a denoiser from its ``config`` dict (as stored in checkpoints)."""
    config = dict(config)
    arch = config.pop("arch")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**config)


__all__ = ["Conditions", "CrystalTransformer", "UNet1D", "build_model", "make_conditions", "paper_unet"]
