"""Relaxation and stability of candidate structures (library; no UI imports).

::

    from explorer.relax import relax, hull_analysis
    results = relax(["a.cif", "b.cif"], potential="m3gnet", fmax=0.05)
    for r in results:
        print(r.label, r.status, r.energy_per_atom, r.formation_energy_per_atom)

Heavy dependencies (matgl, torch, ASE, HoloViews) are imported when first used.
"""

from .batched import BatchEvaluator, relax_batched, supports_batching
from .hull import HullAnalysis, HullRow, hull_analysis, hull_plot, reference_entries
from .ml_references import MLReference, MLReferences
from .potentials import (
    FormationEnergyModel,
    Potential,
    PotentialSpec,
    load_formation_model,
    load_potential,
    shared_potential,
)
from .references import ElementalReferences
from .relaxation import (
    ReferenceDone,
    RelaxDone,
    RelaxResult,
    RelaxStep,
    check_structure,
    irelax,
    load_structure,
    relax,
    relax_one,
)

__all__ = [
    "BatchEvaluator",
    "ElementalReferences",
    "FormationEnergyModel",
    "HullAnalysis",
    "HullRow",
    "MLReference",
    "MLReferences",
    "Potential",
    "PotentialSpec",
    "ReferenceDone",
    "RelaxDone",
    "RelaxResult",
    "RelaxStep",
    "check_structure",
    "hull_analysis",
    "hull_plot",
    "irelax",
    "load_formation_model",
    "load_potential",
    "shared_potential",
    "load_structure",
    "relax",
    "relax_batched",
    "relax_one",
    "reference_entries",
    "supports_batching",
]
