"""Samplers, one per file (diffusers-style ``set_timesteps`` + ``step``)."""

from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler, cosine_betas
from .flow_euler import FlowEulerScheduler, minimum_image, wrap_coordinates

__all__ = ["DDIMScheduler", "DDPMScheduler", "FlowEulerScheduler", "cosine_betas", "minimum_image",
           "wrap_coordinates"]
