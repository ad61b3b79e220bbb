"""explorer: conditional design of inorganic crystals.

Public API::

    import explorer
    candidates = explorer.generate("TaWB6", spacegroup=191, energy=-0.45, n=16, model="cfm-uniform")
    candidates[0].structure.to(filename="candidate.cif")
    result = explorer.screen(explorer.ScreenConfig(formulas=["TaWB6"], spacegroups="common",
                                                   energies="-0.6:-0.4:0.05", out="run"))
"""

import os

# spglib's C library prints its internal notes ("spglib: ssm_get_exact_positions failed.") to the terminal; they
# are not the user's business (the Python results say when symmetry search fails).
os.environ.setdefault("SPGLIB_WARNING", "OFF")

from .candidates import Candidate  # noqa: E402
from .coverage import evaluate_coverage
from .errors import ExplorerInputError
from .evaluation import evaluate_generation
from .generation import generate, generation_request, parse_formula
from .generators import (
    GenerationRequest,
    Generator,
    available_models,
    default_model,
    get_generator,
    list_generators,
)
from .modification import evaluate_modification, modify
from .prototypes import Prototype, PrototypeLibrary, load_prototype_library
from .reconstruction import evaluate_reconstruction, reconstruct
from .representation import CrystalMatrix, decode, encode, symmetrize
from .screening import ScreenCandidate, ScreenConfig, ScreenResult, iscreen, screen

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "CrystalMatrix",
    "ExplorerInputError",
    "GenerationRequest",
    "Generator",
    "Prototype",
    "PrototypeLibrary",
    "ScreenCandidate",
    "ScreenConfig",
    "ScreenResult",
    "available_models",
    "decode",
    "default_model",
    "encode",
    "evaluate_coverage",
    "evaluate_generation",
    "evaluate_modification",
    "evaluate_reconstruction",
    "generate",
    "generation_request",
    "get_generator",
    "iscreen",
    "list_generators",
    "load_prototype_library",
    "modify",
    "parse_formula",
    "reconstruct",
    "screen",
    "symmetrize",
]
