"""The descriptor family (paper 001, StructRepDiff): a
crystal as an invariant vector (pooled embedded-atom density, shortest distance, composition, atom count,
lattice), a DDPM over the vectors and a basin-hopping reconstruction of positions from a vector.

| module         | what                                                                   |
|----------------|------------------------------------------------------------------------|
| ead            | the EAD descriptor in torch (periodic, batched, differentiable)        |
| vector         | the vector layout, structures -> vectors, vectors -> composition + cell |
| reconstruction | basin-hopping reconstruction of positions (``irun`` reports per hop)   |
| dataset        | the mp / perov / carbon datasets and their cached vectors               |
| model          | the residual-MLP denoiser                                               |
| pipeline       | network space and the DDPM loop with inpainting of known entries       |
| training       | DDPM training in the shared loop, export                                |
| generator      | :class:`DescriptorGenerator` (the interface)                            |
"""

from ..base import class_lookup
from .generator import DescriptorGenerator

generator_class = class_lookup("descriptor", {"generation": DescriptorGenerator})

__all__ = ["DescriptorGenerator", "generator_class"]
