"""The langevin family (paper 003, score-based generation with adaptive crystal cells): a crystal as its
asymmetric unit — space group, one (element, Wyckoff position, generic point) per symmetry-inequivalent site and
the conventional lattice's free parameters — denoised by annealed Langevin dynamics with a DimeNet++ score
network on the space-group multigraph. Every sample has the requested space group by construction.

| module     | what                                                                          |
|------------|-------------------------------------------------------------------------------|
| wyckoff    | Wyckoff positions as affine maps, asymmetric units, site splits of a formula  |
| lattice    | conventional lattices as free latent numbers per crystal family               |
| graph      | batched space-group multigraph (edges, triplets) in plain torch               |
| model      | the DimeNet++ score network with per-edge position and lattice outputs       |
| noise      | the noise ladders                                                             |
| sampler    | the annealed Langevin scheduler (``set_timesteps`` + step functions)          |
| pipeline   | the batched sampling loop, primitive cells                                    |
| dataset    | training data as asymmetric units (cached)                                    |
| training   | denoising score matching in the shared loop, prior, export                    |
| generator  | :class:`LangevinGenerator` (the interface)                                    |
"""

from ..base import class_lookup
from .generator import LangevinGenerator

generator_class = class_lookup("langevin", {"generation": LangevinGenerator})

__all__ = ["LangevinGenerator", "generator_class"]
