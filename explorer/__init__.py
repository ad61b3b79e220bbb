"""explorer: conditional design of inorganic crystals.

Public API::

    import explorer
    candidates = explorer.generate("TaWB6", spacegroup=191, energy=-0.45, n=16, model="cfm-uniform")
    candidates[0].structure.to(filename="candidate.cif")
    result = explorer.screen(explorer.ScreenConfig(formulas=["TaWB6"], spacegroups="common",
                                                   energies="-0.6:-0.4:0.05", out="run"))
"""

from .errors import ExplorerInputError
from .evaluation import evaluate_generation
from .generation import Candidate, generate, parse_formula
from .modification import evaluate_modification, modify
from .pretrained import available_models, default_model, load_pretrained
from .prototypes import Prototype, PrototypeLibrary, load_prototype_library
from .representation import CrystalMatrix, decode, encode, symmetrize
from .screening import ScreenCandidate, ScreenConfig, ScreenResult, iscreen, screen

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "CrystalMatrix",
    "ExplorerInputError",
    "Prototype",
    "PrototypeLibrary",
    "ScreenCandidate",
    "ScreenConfig",
    "ScreenResult",
    "available_models",
    "decode",
    "default_model",
    "encode",
    "evaluate_generation",
    "evaluate_modification",
    "generate",
    "iscreen",
    "load_pretrained",
    "load_prototype_library",
    "modify",
    "parse_formula",
    "screen",
    "symmetrize",
]
