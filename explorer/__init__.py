"""explorer: conditional design of inorganic crystals.

Public API::

    import explorer
    candidates = explorer.generate("TaWB6", spacegroup=191, energy=-0.45, n=16, model="cfm-uniform")
    candidates[0].structure.to(filename="candidate.cif")
"""

from .errors import ExplorerInputError
from .evaluation import evaluate_generation
from .generation import Candidate, generate, parse_formula
from .modification import evaluate_modification, modify
from .pretrained import available_models, default_model, load_pretrained
from .representation import CrystalMatrix, decode, encode, symmetrize

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "CrystalMatrix",
    "ExplorerInputError",
    "available_models",
    "decode",
    "default_model",
    "encode",
    "evaluate_generation",
    "evaluate_modification",
    "generate",
    "load_pretrained",
    "modify",
    "parse_formula",
    "symmetrize",
]
