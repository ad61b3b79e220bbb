"""Elemental references: lowest relaxed candidate, ASE fallback without data, on-disk cache, formation energies."""

from __future__ import annotations

import json

import pytest

from explorer.errors import ExplorerInputError
from explorer.relax import ElementalReferences, relax
from explorer.relax.corrections import mp2020_correction_per_atom
from explorer.relax.references import ase_candidate, dimer_candidate, mp_candidates


def test_candidates_from_data_and_ase(tmp_path):
    si = mp_candidates("Si", polymorphs=2)
    if si:  # the shared structure file has metastable Si polymorphs but not diamond
        assert len(si) == 2 and all(relax_cell for _, _, relax_cell in si)
    assert mp_candidates("Si", data=tmp_path) == []  # no data directory: nothing from MP
    source, structure, relax_cell = ase_candidate("Si")
    assert source == "ase.build.bulk" and structure.composition.reduced_formula == "Si" and relax_cell
    assert ase_candidate("O") is None  # ASE has no crystal for the diatomic gases
    source, dimer, relax_cell = dimer_candidate("O")
    assert len(dimer) == 2 and not relax_cell
    assert dimer_candidate("Si") is None


def test_reference_is_the_lowest_candidate_and_is_cached(m3gnet, tmp_path):
    cache = tmp_path / "cache"
    references = ElementalReferences(m3gnet, polymorphs=1, cache=cache)
    entry = references.get("Si")
    energies = [c["energy_per_atom"] for c in entry["candidates"] if c["energy_per_atom"] is not None]
    assert entry["energy_per_atom"] == min(energies)
    assert entry["energy_per_atom"] == pytest.approx(-5.419, abs=0.01)  # diamond, from ase.build.bulk
    stored = json.loads(references.path.read_text())
    assert references.path.parent == cache and m3gnet.fingerprint in references.path.name
    assert stored["elements"]["Si"]["energy_per_atom"] == entry["energy_per_atom"]
    assert ElementalReferences(m3gnet, polymorphs=1, cache=cache).get("Si") == entry
    stored["elements"]["Si"]["energy_per_atom"] = -1.0  # a value no relaxation gives: proves the file is read
    references.path.write_text(json.dumps(stored))
    assert ElementalReferences(m3gnet, polymorphs=1, cache=cache).energy_per_atom("Si") == -1.0


def test_references_without_a_data_directory(m3gnet, tmp_path):
    references = ElementalReferences(m3gnet, data=tmp_path / "no-data", cache=False)
    entry = references.get("W")
    assert entry["source"] == "ase.build.bulk"
    assert references.path is None
    with pytest.raises(ExplorerInputError, match="no elemental reference"):
        references.energy_per_atom("Am")  # M3GNet has no Am: every candidate fails


def test_formation_energies(m3gnet, references, crystals):
    nacl, si = relax([crystals.nacl(5.64), crystals.si()], potential=m3gnet, references=references)
    expected = nacl.energy_per_atom - (references.energy_per_atom("Na") + references.energy_per_atom("Cl")) / 2
    assert nacl.formation_energy_per_atom == pytest.approx(expected + mp2020_correction_per_atom("NaCl"), abs=1e-9)
    # raw -1.82 (M3GNet learnt MP's uncorrected energies) plus MP2020's Cl correction: MP's own is -2.110
    assert nacl.formation_energy_per_atom == pytest.approx(-2.13, abs=0.05)
    assert si.formation_energy_per_atom == pytest.approx(0.0, abs=0.005)
    assert references.formation_energy_per_atom("NaCl", float("nan")) is None


def test_eform_formation_energies(m3gnet, eform_path, crystals):
    """``formation="eform"``: the M3GNet Eform model on the relaxed structure (MP-fitted, so about -2.1)."""
    (nacl,) = relax([crystals.nacl(5.64)], potential=m3gnet, formation="eform")
    assert nacl.formation_energy_per_atom == pytest.approx(-2.10, abs=0.05)


def test_an_element_without_a_known_structure_gets_an_approximate_reference(m3gnet, tmp_path):
    """Br: no crystal in ASE, none in an empty data directory — the lowest generic structure, flagged, and the
    formation energies that use it say so (the KBr screen used to stop here)."""
    references = ElementalReferences(m3gnet, data=tmp_path / "no-data", cache=tmp_path)
    entry = references.get("Br")
    assert entry is not None and entry["approximate"] and entry["source"].startswith("generic")
    assert entry["energy_per_atom"] < 0
    assert "approximate reference for Br" in references.notes("KBr") and references.notes("K") == ""
    (result,) = relax([_kbr()], potential=m3gnet, steps=3, references=references)
    assert result.formation_energy_per_atom is not None and "approximate reference for Br" in result.warning


def _kbr():
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.6), ["K", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
