"""Hull references beyond the MP snapshot: AFLOW's AFLUX API (the real client, run against a response in AFLUX's
format that the tests ship; no test touches the network) and a user's CSV."""

import io
import json
from pathlib import Path
from urllib.error import URLError

import pytest

from explorer.cli import main
from explorer.errors import ExplorerInputError
from explorer.relax import external_references as ext
from explorer.relax import hull_analysis, reference_entries

RECORDED = Path(__file__).parent / "data" / "aflux_Ta_W.json"


@pytest.fixture(autouse=True)
def _own_cache(_session_cache, tmp_path, monkeypatch):
    """Each test starts without a cached AFLOW answer (the relax tests otherwise share one cache folder)."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def aflow_server(monkeypatch):
    """urlopen answers the Ta-W summons with the recorded response; every request is kept."""
    requests = []

    def fake_urlopen(request, timeout):
        requests.append((request.full_url, dict(request.header_items()), timeout))
        assert request.full_url.startswith("https://aflow.org/API/aflux/v1.0/?species(Ta,W),nspecies(2)")
        return FakeResponse(RECORDED.read_bytes())

    monkeypatch.setattr(ext, "urlopen", fake_urlopen)
    return requests


def test_one_summons_per_subsystem_of_two_or_more_elements():
    summonses = ext.aflux_summonses(["Ta", "W", "B"])
    assert len(summonses) == 4
    assert summonses[0] == "species(B,Ta),nspecies(2),enthalpy_formation_atom(*),prototype,compound,auid,$paging(0)"
    assert summonses[-1].startswith("species(B,Ta,W),nspecies(3)")


def test_the_client_parses_the_answer_and_caches_it(aflow_server, monkeypatch):
    rows = ext.aflow_rows(["W", "Ta"])
    assert [r["compound"] for r in rows] == ["Ta1W1", "Ta1W3", "Ta3W1"]  # the entry without an energy is left out
    url, headers, timeout = aflow_server[0]
    assert "User-agent" in headers and timeout == ext.TIMEOUT_S and url.endswith("$paging(0)")
    monkeypatch.setattr(ext, "urlopen", lambda *a, **k: pytest.fail("the cached system was fetched again"))
    assert ext.aflow_rows(["Ta", "W"]) == rows


def test_the_aflow_hull_holds_the_elements_and_aflows_entries(aflow_server):
    entries = reference_entries("Ta-W", "aflow")
    assert sorted(e.composition.reduced_formula for e in entries) == ["Ta", "Ta3W", "TaW", "TaW3", "W"]
    analysis = hull_analysis([("cand", "TaW", -0.08)], "Ta-W", reference="aflow")
    assert analysis.candidates[0].e_above_hull == pytest.approx(-0.08 + 0.0412, abs=1e-6)
    assert any(r.label.startswith("AFLOW B2 aflow:") for r in analysis.references)


def test_offline_without_a_cache_says_what_works_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(ext, "urlopen", offline)
    with pytest.raises(ExplorerInputError, match="needs the network to reach aflow.org.*--reference mp"):
        reference_entries("Ta-W", "aflow")


def test_a_users_csv_is_a_reference_and_bad_ones_are_one_line_errors(tmp_path, capsys, nacl):
    good = tmp_path / "mine.csv"
    good.write_text("composition,formation_energy_per_atom,id\nNaCl,-2.1,lab-1\nNa2Cl,-0.5,lab-2\nKCl,-2.2,x\n")
    entries = reference_entries("Na-Cl", str(good))
    labels = sorted(e.attribute or e.name for e in entries)
    assert labels == ["Cl (element)", "Na (element)", "lab-1", "lab-2"]  # KCl is of another system
    nacl.to(filename=str(tmp_path / "nacl.cif"))
    code = main(["hull", str(tmp_path / "nacl.cif"), "--chemsys", "Na-Cl", "--reference", str(good),
                 "--formation", "eform", "--out", str(tmp_path / "hull"), "--json"])
    if code == 2 and "weights" in capsys.readouterr().err:
        pytest.skip("M3GNet Eform weights not here")
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["reference"] == str(good)
    bad = tmp_path / "bad.csv"
    bad.write_text("formula,energy\nNaCl,-2\n")
    with pytest.raises(ExplorerInputError, match="needs a 'composition'"):
        reference_entries("Na-Cl", str(bad))
    with pytest.raises(ExplorerInputError, match="no such file"):
        reference_entries("Na-Cl", str(tmp_path / "missing.csv"))
