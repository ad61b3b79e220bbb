"""Samplers, one per file (diffusers-style ``set_timesteps`` + ``step``), and :func:`make_scheduler`, the one
place that says which sampler fits a model trained with a given method."""

from ..representation import minimum_image, wrap_coordinates
from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler, cosine_betas
from .flow_euler import FlowEulerScheduler

# training method -> (samplers that fit it, the default one)
SAMPLERS = {
    "ddpm": (("ddpm", "ddim"), "ddpm"),
    "cfm-normal": (("euler",), "euler"),
    "cfm-uniform": (("euler",), "euler"),
}


def make_scheduler(method: str, sampler: str | None = None, num_train_timesteps: int = 1000):
    """The sampler for a model trained with ``method`` ('ddpm': ``sampler`` 'ddpm' or 'ddim'; 'cfm-normal' and
    'cfm-uniform': Euler, on the torus for 'cfm-uniform')."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown method {method!r}; choose from {tuple(SAMPLERS)}")
    fitting, default = SAMPLERS[method]
    sampler = sampler or default
    if sampler not in fitting:
        kind = "diffusion" if method == "ddpm" else "flow-matching"
        raise ValueError(f"sampler {sampler!r} does not fit a {kind} model (use {' or '.join(fitting)})")
    if sampler == "ddpm":
        return DDPMScheduler(num_train_timesteps)
    if sampler == "ddim":
        return DDIMScheduler(num_train_timesteps)
    return FlowEulerScheduler(periodic=method == "cfm-uniform")


__all__ = ["DDIMScheduler", "DDPMScheduler", "FlowEulerScheduler", "SAMPLERS", "cosine_betas", "make_scheduler",
           "minimum_image", "wrap_coordinates"]
