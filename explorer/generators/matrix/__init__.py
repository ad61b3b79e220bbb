"""The matrix family (paper 002, AIRI): a crystal as a 64×3 matrix (:mod:`explorer.representation`), a
transformer or 1-D UNet denoiser (:mod:`explorer.models`) conditioned on per-site element features, the space
group's operation stack and a formation energy, sampled by DDPM/DDIM or conditional flow matching
(:mod:`explorer.schedulers`); modification models (regression, Palette, CFM, Palette-CFM) take the initial
structure as a further condition.

| module          | what                                                                |
|-----------------|---------------------------------------------------------------------|
| generator       | :class:`MatrixGenerator`, :class:`MatrixModifier` (the interface)    |
| pipeline        | the one sampling loop (generation and modification)                 |
| objectives      | generation training objectives (+ losses)                           |
| modification    | modification pair tensors and objectives                            |
| training        | the resumable training loop, warm starts, checkpoint export         |
| checkpoints     | safe loading of shipped checkpoints                                 |
"""

from ..base import class_lookup
from .generator import MatrixGenerator, MatrixModifier

generator_class = class_lookup("matrix", {"generation": MatrixGenerator, "modification": MatrixModifier})

__all__ = ["MatrixGenerator", "MatrixModifier", "generator_class"]
