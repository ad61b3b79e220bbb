"""Reference mode 'ml': the MP/WBM structures of a system relaxed with the same potential, cached on disk."""

from __future__ import annotations

import json

import pytest
from crystal_fixtures import CSV_COLUMNS, diamond_si, missing_data, write_csv_gz
from pymatgen.core import Lattice, Structure

from explorer.config import data_dir
from explorer.errors import ExplorerInputError
from explorer.relax import MLReferences, hull_analysis, reference_entries
from explorer.relax.corrections import mp2020_correction_per_atom
from explorer.relax.ml_references import system_rows

WBM_COLUMNS = ["id", "formula", "nsites", "formation_energy_per_atom", "split", "cif"]


def _row(row_id: str, structure: Structure, id_column: str = "material_id") -> dict:
    return {id_column: row_id, "formula": structure.composition.reduced_formula, "nsites": len(structure),
            "spacegroup": 1, "formation_energy_per_atom": "-1.0", "split": "train", "cif": structure.to(fmt="cif")}


@pytest.fixture
def tiny_data(tmp_path, crystals):
    """Na-Cl: rock salt and CsCl-type NaCl (MP), a strained rock salt (WBM); Si and elemental Na are left out."""
    folder = tmp_path / "data"
    folder.mkdir()
    cscl_type = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    sodium = Structure(Lattice.cubic(4.23), ["Na", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    mp_rows = [_row("mp-rs", crystals.nacl(5.64)), _row("mp-cscl", cscl_type), _row("mp-si", diamond_si()),
               _row("mp-na", sodium)]
    write_csv_gz(folder / "mp_structures.csv.gz", mp_rows, CSV_COLUMNS)
    write_csv_gz(folder / "wbm_structures.csv.gz", [_row("wbm-1", crystals.nacl(5.8), "id")], WBM_COLUMNS)
    return folder


def test_system_rows(tiny_data):
    keys = [key for key, _, _ in system_rows(["Na", "Cl"], tiny_data)]
    assert keys == ["mp:mp-rs", "mp:mp-cscl", "wbm:wbm-1"]
    assert system_rows(["Na", "Cl", "Si"], tiny_data)[-1][0] == "wbm:wbm-1"
    with pytest.raises(ExplorerInputError, match="no mp_structures.csv.gz or wbm_structures.csv.gz"):
        system_rows(["Na", "Cl"], tiny_data / "missing")


def test_ml_references_relax_once_and_are_cached(m3gnet, references, tiny_data, tmp_path, monkeypatch):
    cache = tmp_path / "ml-cache"
    ml = MLReferences(m3gnet, data=tiny_data, steps=15, cache=cache, references=references)
    found = {r.key: r for r in ml.structures("Na-Cl")}
    assert set(found) == {"mp:mp-rs", "mp:mp-cscl", "wbm:wbm-1"}
    assert all(r.usable and r.formula == "NaCl" for r in found.values())
    rock_salt = found["mp:mp-rs"]
    expected = rock_salt.energy_per_atom - (references.energy_per_atom("Na") + references.energy_per_atom("Cl")) / 2 \
        + mp2020_correction_per_atom("NaCl")
    assert rock_salt.formation_energy_per_atom == pytest.approx(expected, abs=1e-9)
    assert rock_salt.formation_energy_per_atom == pytest.approx(-2.13, abs=0.05)  # as relaxed NaCl elsewhere
    assert found["mp:mp-cscl"].formation_energy_per_atom > rock_salt.formation_energy_per_atom
    stored = json.loads(ml.path.read_text())
    assert ml.path.parent == cache and m3gnet.fingerprint in ml.path.name
    assert set(stored["structures"]) == set(found) and "Cl-Na" in stored["systems"]

    import explorer.relax.relaxation as relaxation

    def no_relaxing(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(relaxation, "irelax", no_relaxing)
    again = MLReferences(m3gnet, data=tiny_data, steps=15, cache=cache, references=references)
    assert [r.energy_per_atom for r in again.structures("Na-Cl")] == [r.energy_per_atom for r in found.values()]
    entries = again.pd_entries("Na-Cl")
    assert sorted(e.attribute for e in entries) == ["Cl (element)", "Na (element)", "mp:mp-cscl", "mp:mp-rs",
                                                    "wbm:wbm-1"]
    analysis = hull_analysis([("cand", "NaCl", -1.0)], "Na-Cl", "ml", entries=entries)
    assert analysis.candidates[0].e_above_hull == pytest.approx(-1.0 - rock_salt.formation_energy_per_atom, abs=0.02)
    stable = {entry.attribute for entry in analysis.phase_diagram.stable_entries}
    assert "mp:mp-cscl" not in stable


def test_too_many_structures(m3gnet, references, tiny_data, tmp_path):
    ml = MLReferences(m3gnet, data=tiny_data, max_structures=2, cache=tmp_path, references=references)
    with pytest.raises(ExplorerInputError, match="3 MP/WBM reference structures, more than max_structures=2"):
        ml.structures("Na-Cl")
    with pytest.raises(ExplorerInputError, match="max_structures must be >= 1"):
        MLReferences(m3gnet, max_structures=0, cache=False, references=references)


@pytest.mark.skipif(not (data_dir() / "wbm_structures.csv.gz").is_file(), reason=missing_data("wbm_structures.csv.gz"))
def test_ml_mode_on_the_shared_data(m3gnet):
    """Ni-Pd has one MP and one WBM structure (2 atoms each) in the shared files."""
    entries = reference_entries("Ni-Pd", "ml", potential=m3gnet, steps=30)
    assert sorted(e.attribute for e in entries) == ["Ni (element)", "Pd (element)", "mp:mp-1220057", "wbm:wbm-1779"]
    analysis = hull_analysis([("cand", "NiPd", 0.2)], "Ni-Pd", "ml", entries=entries)
    for row in analysis.references:
        assert abs(row.formation_energy_per_atom) < 0.2  # a weakly mixing alloy
    assert analysis.candidates[0].e_above_hull > 0
