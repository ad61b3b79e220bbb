"""MP2020 energy corrections for ML formation energies.

M3GNet-MP-2021.2.8 and CHGNet were trained on the Materials Project's *raw* GGA / GGA+U energies; the formation
energies MP publishes (the reference data of ``explorer hull`` and the targets of the evaluation files) carry
MP's MaterialsProject2020Compatibility corrections: anion corrections (oxide, chloride, nitride, …) and the
GGA/GGA+U mixing corrections of oxides and fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W. Without them an ML
formation energy sits off MP's by the correction (NaCl: −0.31 eV/atom): on the first 50 val rows of
mp_structures, the M3GNet formation energies of the rows' own structures, relaxed, are off MP's by a mean
0.143 eV/atom raw and 0.032 eV/atom corrected (README, "Energy fidelity").

The correction needs only the composition: a :class:`~pymatgen.entries.computed_entries.ComputedEntry` with the
run type MP would have used (GGA+U with MP's U values where its rules ask for U) goes through pymatgen's
``MaterialsProject2020Compatibility`` (no POTCAR check: there was no DFT run); the sum of its energy adjustments
per atom is the correction. Compositions pymatgen cannot correct (e.g. an oxidation state it cannot assign)
get 0 and stay as computed.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

CORRECTIONS = ("mp2020", "none")


@lru_cache(maxsize=1)
def _compatibility():
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


@lru_cache(maxsize=4096)
def _correction(formula: str) -> float:
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    composition = Composition(formula)
    compatibility = _compatibility()
    anion = next((a for a in ("O", "F") if a in composition), None)
    hubbards = {}
    if anion is not None:
        hubbards = {element.symbol: compatibility.u_settings[anion].get(element.symbol, 0.0)
                    for element in composition}
    plus_u = any(value > 0 for value in hubbards.values())
    entry = ComputedEntry(composition, 0.0, parameters={"run_type": "GGA+U" if plus_u else "GGA",
                                                        "hubbards": hubbards if plus_u else {}})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adjustments = compatibility.get_adjustments(entry)
    except Exception:  # CompatibilityError: a composition MP2020 does not correct
        return 0.0
    return float(sum(a.value for a in adjustments)) / composition.num_atoms


def mp2020_correction_per_atom(composition) -> float:
    """MP2020 correction (eV/atom) of a composition (a pymatgen Composition or a formula); 0 for an element."""
    from pymatgen.core import Composition

    composition = Composition(composition)
    if len(composition.elements) < 2:
        return 0.0
    return _correction(composition.formula)


__all__ = ["CORRECTIONS", "mp2020_correction_per_atom"]
