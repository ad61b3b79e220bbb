"""The diffcsp family: DiffCSP (Jiao et al. 2023) as a learned peer, trained here on our train split and CPU
budget. The network (CSPNet: a periodic E(3)-invariant message-passing network over the fully connected graph
of each cell) and the joint diffusion (DDPM on the lattice matrix, wrapped-normal score matching on fractional
coordinates, predictor-corrector sampling) are the registry package ``chemeleon-dng``'s, which ships them
without weights; this folder supplies the data, the training in the shared loop, the export and the
:class:`~explorer.generators.base.Generator` interface. It takes a formula only (DiffCSP's CSP task).

| module    | what                                                                              |
|-----------|-----------------------------------------------------------------------------------|
| network   | the chemeleon-dng diffusion module of a config (CSP task), batches of cells       |
| dataset   | training cells (primitive, Niggli, canonical orientation) as flat arrays, cached  |
| training  | the diffusion loss in the shared loop, warm start, export                        |
| generator | :class:`DiffCSPGenerator` (the interface; predictor-corrector sampling loop)      |
"""

from ..base import class_lookup
from .generator import DiffCSPGenerator

generator_class = class_lookup("diffcsp", {"generation": DiffCSPGenerator})

__all__ = ["DiffCSPGenerator", "generator_class"]
