"""Relaxation and stability of candidate structures (library; no UI imports).

::

    from explorer.relax import relax, hull_analysis
    results = relax(["a.cif", "b.cif"], potential="m3gnet", fmax=0.05)
    for r in results:
        print(r.label, r.status, r.energy_per_atom, r.formation_energy_per_atom)

Modules, lowest first: ``results`` (RelaxResult and the events), ``potentials``/``compat``, ``single`` (one
structure, FIRE + FrechetCellFilter, and the structure checks), ``batched`` (many in lockstep), ``references``
(elemental references), ``formation`` (formation energies), ``relaxation`` (``irelax``/``relax``),
``ml_references`` and ``hull`` (the convex hull), ``hull_report`` (structure files placed on a hull) and
``hull_plotting`` (HoloViews/Bokeh figures).

Heavy dependencies (matgl, torch, ASE, HoloViews) are imported when first used.
"""

from .batched import DEFAULT_BATCH_SIZE, BatchEvaluator, relax_batched, supports_batching
from .formation import FORMATION_MODES, formation_function
from .hull import HullAnalysis, HullRow, hull_analysis, reference_entries
from .hull_plotting import hull_figure, save_hull, save_plot
from .hull_report import HullReport, place_on_hull
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
from .relaxation import irelax, relax
from .results import STATUS_FAILED, STATUS_OK, STATUS_UNCONVERGED, ReferenceDone, RelaxDone, RelaxResult, RelaxStep
from .single import check_structure, relax_one, relax_steps

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FORMATION_MODES",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_UNCONVERGED",
    "BatchEvaluator",
    "ElementalReferences",
    "FormationEnergyModel",
    "HullAnalysis",
    "HullReport",
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
    "formation_function",
    "hull_analysis",
    "hull_figure",
    "irelax",
    "load_formation_model",
    "load_potential",
    "place_on_hull",
    "reference_entries",
    "relax",
    "relax_batched",
    "relax_one",
    "relax_steps",
    "save_hull",
    "save_plot",
    "shared_potential",
    "supports_batching",
]
