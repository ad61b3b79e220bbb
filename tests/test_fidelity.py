"""Energy fidelity: metrics by hand, and one tiny end-to-end run (3 rows, 3 sampling and 5 relaxation steps)."""

from __future__ import annotations

import json

import pytest
import torch
from crystal_fixtures import missing_weights, tiny_rows, write_csv_gz

from explorer.config import models_dir
from explorer.errors import ExplorerInputError
from explorer.fidelity import FidelityRow, evaluate_fidelity, fidelity_metrics
from explorer.relax.potentials import DEFAULT_PES

KEYS = {"n", "mae", "within_0.1", "validity", "relaxed", "seconds", "model", "steps"}


def test_metrics_by_hand():
    rows = [FidelityRow(0, "Si", 0.0, True, "ok", 0.05, 10),
            FidelityRow(1, "Cu", -0.2, True, "unconverged", 0.1, 5),  # |Δ| = 0.3
            FidelityRow(2, "NaCl", -2.0, False, "failed", None, 0, "overlapping atoms")]
    metrics = fidelity_metrics(rows)
    assert metrics["n"] == 3 and metrics["evaluated"] == 2
    assert metrics["mae"] == pytest.approx(0.175) and metrics["mae_converged"] == pytest.approx(0.05)
    assert metrics["within"] == pytest.approx(0.5) and metrics["validity"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["relaxed"] == {"ok": 1, "unconverged": 1, "failed": 1}
    assert fidelity_metrics([])["mae"] is None


@pytest.fixture
def m3gnet():
    path = models_dir() / DEFAULT_PES
    if not all((path / f).is_file() for f in ("model.json", "model.pt", "state.pt")):
        pytest.skip(missing_weights())
    from explorer.relax import load_potential

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_potential("m3gnet")
    torch.set_num_threads(previous)


@pytest.fixture
def fidelity_csv(tmp_path):
    """Si, SrTiO3 and Cu: elements whose references ASE builds (no data directory needed)."""
    rows = {row["material_id"]: row for row in tiny_rows()}
    return write_csv_gz(tmp_path / "fidelity.csv.gz", [rows["tiny-2"], rows["tiny-4"], rows["tiny-5"]])


def test_evaluate_fidelity_end_to_end(m3gnet, fidelity_csv, tmp_path):
    from explorer.relax import ElementalReferences

    references = ElementalReferences(m3gnet, data=tmp_path / "no-data", steps=30, cache=tmp_path / "refs")
    report = evaluate_fidelity(fidelity_csv, steps=3, seed=0, device="cpu", relax_steps=5, potential=m3gnet,
                               references=references)
    metrics = report.summary()
    assert KEYS <= set(metrics) and "rows" not in metrics
    assert metrics["n"] == 3 and metrics["steps"] == 3 and metrics["relax_steps"] == 5
    assert sum(metrics["relaxed"].values()) == 3
    assert [row.target for row in report.rows] == pytest.approx([0.0, -3.5, 0.0])
    assert [row.formula for row in report.rows] == ["Si", "SrTiO3", "Cu"]
    for row in report.rows:
        assert row.status == "failed" or row.steps <= 5
        if row.absolute_error is not None:
            assert row.absolute_error == pytest.approx(abs(row.target - row.formation_energy_per_atom))
    if metrics["evaluated"]:
        assert metrics["mae"] >= 0 and 0 <= metrics["within_0.1"] <= 1
    assert json.loads(json.dumps(report.summary(rows=True)))["rows"][0]["formula"] == "Si"


def test_evaluate_fidelity_bad_input(tmp_path):
    with pytest.raises(ExplorerInputError, match="not found"):
        evaluate_fidelity(tmp_path / "missing.csv.gz", steps=3, device="cpu")
    with pytest.raises(ExplorerInputError, match="relax_steps"):
        evaluate_fidelity(tmp_path / "missing.csv.gz", relax_steps=-1)


def test_evaluate_fidelity_of_the_pipeline_relaxes_what_generate_puts_first(m3gnet, fidelity_csv, tmp_path,
                                                                           tiny_data_dir, monkeypatch):
    import explorer.search
    from explorer.relax import ElementalReferences

    firsts, real = [], explorer.search.search

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        assert kwargs["other_formulas_only"] is True  # never the row's own structure
        firsts.extend(candidates[0].structure for candidates in found)
        return found

    monkeypatch.setattr(explorer.search, "search", spy)
    references = ElementalReferences(m3gnet, data=tmp_path / "no-data", steps=30, cache=tmp_path / "refs")
    report = evaluate_fidelity(fidelity_csv, steps=3, seed=0, device="cpu", relax_steps=5, potential=m3gnet,
                               references=references, pipeline=True, n=2)
    assert report.pipeline and report.summary()["pipeline"] is True and report.n == 3
    assert [s.composition.reduced_formula for s in firsts] == [row.formula for row in report.rows]
