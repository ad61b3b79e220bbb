"""Formation energies of relaxed structures (eV/atom), for :func:`explorer.relax.irelax`.

Modes: ``"references"`` (energy per atom minus the elemental references relaxed with the same potential,
:class:`~explorer.relax.references.ElementalReferences`, cached on disk), ``"eform"`` (the M3GNet Eform model
on the relaxed structure) or ``"none"``.
"""

from __future__ import annotations

import math

from .results import ReferenceDone

FORMATION_MODES = ("references", "eform", "none")


def formation_function(mode: str, potential, references=None, structures=()):
    """Generator: sets up formation energies for ``mode`` and *returns* a function of a
    :class:`~explorer.relax.RelaxResult` giving its formation energy (eV/atom) or None
    (``energy = yield from formation_function(...)``). In ``"references"`` mode it yields a
    :class:`ReferenceDone` for the reference of every element of ``structures`` (pymatgen Structures, None
    entries skipped) that ``potential`` supports; ``references``: an ElementalReferences to use instead of
    the potential's default one."""
    if mode == "none":
        return lambda result: None
    if mode == "eform":
        from .potentials import load_formation_model

        model = load_formation_model()
        return lambda result: _none_if_nan(model.predict(result.structure))
    from .references import ElementalReferences

    refs = references if references is not None else ElementalReferences(potential)
    elements = sorted({e.symbol for s in structures if s is not None for e in s.composition})
    for element in elements:
        if potential.unsupported_elements([element]):
            continue
        entry = refs.get(element)
        if entry is not None:
            yield ReferenceDone(element, entry["energy_per_atom"], entry["source"])
    def formation(result):
        note = refs.notes(result.structure.composition)
        if note:
            result.warning = "; ".join(part for part in (result.warning, note) if part)
        return refs.formation_energy_per_atom(result.structure.composition, result.energy_per_atom)

    return formation


def _none_if_nan(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = ["FORMATION_MODES", "formation_function"]
