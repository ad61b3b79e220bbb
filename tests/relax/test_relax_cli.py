"""``explorer relax`` and ``explorer hull``: outputs, the JSON line, failures in a batch, exit codes."""

from __future__ import annotations

import csv
import json

import pytest
from crystal_fixtures import missing_data
from pymatgen.core import Lattice, Structure

from explorer.cli import main
from explorer.config import data_dir


@pytest.fixture
def files(tmp_path, crystals):
    folder = tmp_path / "in"
    folder.mkdir()
    crystals.rattled(crystals.nacl(5.64)).to(filename=str(folder / "nacl.cif"))
    (folder / "broken.cif").write_text(crystals.malformed_cif)
    crystals.overlapping().to(filename=str(folder / "overlap.cif"))
    Structure(Lattice.cubic(3.2), ["Ta", "W"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(folder / "taw.cif"))
    Structure.from_spacegroup("Im-3m", Lattice.cubic(3.17), ["W"], [[0, 0, 0]]).to(filename=str(folder / "w.cif"))
    return folder


def last_json(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def test_relax_batch_with_failures(m3gnet, files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["relax", str(files / "nacl.cif"), str(files / "broken.cif"), str(files / "overlap.cif"), "--out",
            str(out), "--json"]
    assert main(argv) == 0
    summary = last_json(capsys)
    assert set(summary) == {"results", "seconds"}
    nacl, broken, overlap = summary["results"]
    assert nacl["status"] == "ok" and nacl["file"].endswith("nacl.cif")
    assert nacl["energy_per_atom"] == pytest.approx(-3.3675, abs=0.01)
    # MP's NaCl (mp-22862): -2.110 eV/atom; M3GNet's raw -1.82 plus the MP2020 Cl correction (-0.307 per atom)
    assert nacl["formation_energy_per_atom"] == pytest.approx(-2.13, abs=0.05)
    assert nacl["a"] == pytest.approx(5.69, abs=0.03) and nacl["volume"] > 0 and nacl["steps"] > 0
    assert set(nacl) >= {"file", "status", "energy_per_atom", "formation_energy_per_atom", "steps", "a", "b", "c",
                         "volume"}
    assert broken["status"] == "failed" and "malformed CIF" in broken["error"]
    assert overlap["status"] == "failed" and broken["energy_per_atom"] is None
    relaxed = Structure.from_file(out / "nacl_relaxed.cif")
    assert relaxed.composition.reduced_formula == "NaCl"
    assert not (out / "broken_relaxed.cif").exists()
    with open(out / "results.csv") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["ok", "failed", "failed"]


def test_relax_without_corrections_gives_the_raw_formation_energy(m3gnet, files, tmp_path, capsys):
    argv = ["relax", str(files / "nacl.cif"), "--out", str(tmp_path / "raw"), "--corrections", "none", "--json"]
    assert main(argv) == 0
    (nacl,) = last_json(capsys)["results"]
    assert nacl["formation_energy_per_atom"] == pytest.approx(-1.82, abs=0.05)  # M3GNet's own, no Cl correction
    assert main(["relax", str(files / "nacl.cif"), "--out", str(tmp_path / "x"), "--formation", "none",
                 "--corrections", "none"]) == 2
    assert "--corrections applies to --formation references only" in capsys.readouterr().err


def test_relax_exit_codes(m3gnet, files, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["relax", str(files / "broken.cif"), "--out", out, "--formation", "none"]) == 1  # nothing relaxed
    capsys.readouterr()
    for argv in (["relax", str(files / "missing.cif"), "--out", out],
                 ["relax", str(files / "nacl.cif"), "--out", out, "--fmax", "0"],
                 ["relax", str(files / "nacl.cif"), "--out", out, "--steps", "-1"],
                 ["relax", str(files / "nacl.cif"), "--out", out, "--batch-size", "0"],
                 ["relax", str(files / "nacl.cif"), "--out", out, "--potential", str(tmp_path / "no-such-model")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("explorer: error:") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["relax", str(files / "nacl.cif"), "--out", out, "--formation", "dft"])
    assert exit_info.value.code == 2


def test_hull_command(m3gnet, files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "no-data"))  # elements mode needs no data
    out = tmp_path / "hull"
    argv = ["hull", str(files / "taw.cif"), str(files / "w.cif"), str(files / "nacl.cif"), str(files / "broken.cif"),
            "--chemsys", "Ta-W", "--reference", "elements", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = last_json(capsys)
    taw, w, nacl, broken = summary["candidates"]
    assert taw["status"] == "ok" and taw["formula"] == "TaW"
    assert taw["e_above_hull"] == pytest.approx(taw["formation_energy_per_atom"], abs=1e-9)
    assert w["formation_energy_per_atom"] == pytest.approx(0.0, abs=0.02)  # W near its own reference
    assert nacl["status"] == "failed" and "not in the chemical system" in nacl["error"]
    assert broken["status"] == "failed"
    assert (out / "hull.html").is_file()
    with open(out / "hull.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["ok", "ok", "failed", "failed"]
    assert rows[0]["decomposition"]

    for argv in (["hull", str(files / "w.cif"), "--chemsys", "Ta-W", "--reference", "mp", "--out", str(out)],
                 ["hull", str(files / "w.cif"), "--chemsys", "Ta-W", "--reference", "ml", "--out", str(out)],
                 ["hull", str(files / "w.cif"), "--chemsys", "Ta-Qq", "--out", str(out)]):
        assert main(argv) == 2  # no MP data here / no MP/WBM structures for 'ml' / unknown element
    capsys.readouterr()
    assert main(["hull", str(files / "nacl.cif"), "--chemsys", "Ta-W", "--reference", "elements",
                 "--out", str(out)]) == 1  # no candidate in the system


@pytest.mark.skipif(not (data_dir() / "wbm_structures.csv.gz").is_file(), reason=missing_data("wbm_structures.csv.gz"))
def test_hull_command_ml_references(m3gnet, tmp_path, capsys):
    """--reference ml: Ni-Pd's MP and WBM structures relaxed with the same potential as the candidate."""
    nipd = tmp_path / "nipd.cif"
    Structure(Lattice.cubic(2.95), ["Ni", "Pd"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(nipd))
    out = tmp_path / "hull-ml"
    argv = ["hull", str(nipd), "--chemsys", "Ni-Pd", "--reference", "ml", "--relax", "--steps", "30", "--out",
            str(out), "--json"]
    assert main(argv) == 0
    summary = last_json(capsys)
    (row,) = summary["candidates"]
    assert summary["reference"] == "ml" and row["formula"] == "NiPd" and row["status"] != "failed"
    assert row["decomposition"] and (out / "hull.html").is_file()
    assert main([*argv[:-3], "--formation", "eform", "--out", str(out)]) == 2
    assert "--reference ml needs --formation references" in capsys.readouterr().err
    assert main([*argv[:-3], "--max-structures", "1", "--out", str(out)]) == 2
    assert "more than max_structures=1" in capsys.readouterr().err


def test_relax_warns_about_isolated_atoms(m3gnet, tmp_path, capsys):
    lonely = tmp_path / "lonely.cif"
    Structure(Lattice.cubic(100.0), ["Na"], [[0, 0, 0]]).to(filename=str(lonely))
    assert main(["relax", str(lonely), "--out", str(tmp_path / "out"), "--steps", "2", "--formation", "none"]) == 0
    printed = capsys.readouterr().out
    assert "warning: isolated: every atom without a neighbour within 5 Å" in printed
    with open(tmp_path / "out" / "results.csv") as handle:
        assert "isolated" in next(csv.DictReader(handle))["warning"]
