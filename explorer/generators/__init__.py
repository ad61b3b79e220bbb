"""Generator families behind one interface and one registry.

- :mod:`~explorer.generators.base`: :class:`Generator` (name, family, task, the conditions it takes,
  ``sample(request, n, seed, device, callback)``) and :class:`GenerationRequest`;
- :mod:`~explorer.generators.registry`: ``pretrained/manifest.json`` -> generators (:func:`get_generator`,
  :func:`list_generators`), read by the CLI, the app, evaluation and benchmarks;
- one folder per family: :mod:`~explorer.generators.matrix` (64×3 matrix DDPM/DDIM/CFM generation and
  modification models).
"""

from .base import CONDITIONS, TASKS, GenerationRequest, Generator
from .registry import (
    ModelInfo,
    available_models,
    default_model,
    get_generator,
    list_generators,
    model_info,
    model_infos,
    read_manifest,
)

__all__ = ["CONDITIONS", "TASKS", "GenerationRequest", "Generator", "ModelInfo", "available_models",
           "default_model", "get_generator", "list_generators", "model_info", "model_infos", "read_manifest"]
