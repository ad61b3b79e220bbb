"""MP2020 corrections of ML formation energies (explorer.relax.corrections)."""

import pytest

from explorer.errors import ExplorerInputError
from explorer.relax.corrections import mp2020_correction_per_atom


def test_anion_and_gga_u_corrections_as_mp_applies_them():
    assert mp2020_correction_per_atom("NaCl") == pytest.approx(-0.307, abs=1e-3)  # Cl anion correction / 2 atoms
    assert mp2020_correction_per_atom("MgO") == pytest.approx(-0.3435, abs=1e-3)  # oxide
    # Fe2O3: the oxide correction plus the GGA/GGA+U mixing correction of Fe in an oxide
    assert mp2020_correction_per_atom("Fe2O3") < mp2020_correction_per_atom("Al2O3") - 0.5
    assert mp2020_correction_per_atom("TaWB2") == 0.0 and mp2020_correction_per_atom("Cu") == 0.0
    assert mp2020_correction_per_atom("Na2Cl2") == mp2020_correction_per_atom("NaCl")  # per atom


def test_references_apply_the_correction_unless_told_not_to(references):
    from explorer.relax import ElementalReferences

    entries = {"Na": {"energy_per_atom": -1.3, "source": "test", "formula": "Na", "candidates": []},
               "Cl": {"energy_per_atom": -1.8, "source": "test", "formula": "Cl", "candidates": []}}
    spec = {**references.to_spec(), "cache": False, "entries": entries}
    raw = ElementalReferences.from_spec(references.potential, {**spec, "corrections": "none"})
    corrected = ElementalReferences.from_spec(references.potential, spec)
    assert corrected.corrections == "mp2020" and raw.formation_energy_per_atom("NaCl", -3.37) == pytest.approx(-1.82)
    assert corrected.formation_energy_per_atom("NaCl", -3.37) == pytest.approx(-1.82 - 0.307, abs=1e-3)
    assert corrected.formation_energy_per_atom("Na", -1.3) == pytest.approx(0.0)
    with pytest.raises(ExplorerInputError, match="corrections"):
        ElementalReferences(references.potential, cache=False, corrections="mp2021")
