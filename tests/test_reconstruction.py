"""``explorer reconstruct`` and ``explorer evaluate reconstruction``: a structure back from its own vector, a
vector file of a model's layout, one-line errors for bad vectors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from explorer.errors import ExplorerInputError
from explorer.evaluation import match_pair
from explorer.generators import get_generator
from explorer.generators.descriptor.vector import describe
from explorer.reconstruction import evaluate_reconstruction, read_vector, reconstruct

QUICK = {"trials": 3, "hops": 2, "iterations": 120}


def test_structure_is_recovered_from_its_own_vector(nacl):
    reports = []
    result, loss = reconstruct(nacl.get_primitive_structure(), model="descriptor-perov", callback=reports.append,
                               **QUICK)
    assert loss < 1e-2
    assert match_pair((result.as_dict(), nacl.as_dict()))[1]
    assert reports and reports[-1].hop <= QUICK["hops"]


def test_vector_of_the_model_layout(tmp_path, srtio3):
    layout = get_generator("descriptor-perov").layout
    path = tmp_path / "v.json"
    path.write_text(json.dumps(describe([srtio3], layout)[0].tolist()))
    result, _ = reconstruct(vector=read_vector(path), model="descriptor-perov", **QUICK)
    assert result.composition.reduced_formula == "SrTiO3"
    short = tmp_path / "short.txt"
    short.write_text("1 2 3")
    with pytest.raises(ExplorerInputError, match="has 160 entries"):
        reconstruct(vector=read_vector(short), model="descriptor-perov")
    with pytest.raises(ExplorerInputError, match="needs a descriptor model"):
        reconstruct(srtio3, model="cfm-normal")


def test_read_vector_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 two 3")
    with pytest.raises(ExplorerInputError, match="cannot read a vector"):
        read_vector(bad)
    with pytest.raises(ExplorerInputError, match="not found"):
        read_vector(tmp_path / "missing.npy")
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan]))
    with pytest.raises(ExplorerInputError, match="finite"):
        read_vector(tmp_path / "nan.npy")


def test_evaluate_reconstruction_reports_table_1_metrics(tiny_csv):
    metrics = evaluate_reconstruction(tiny_csv, split="train", max_atoms=8, workers=1, **QUICK)
    assert metrics["n"] == 4 and metrics["scale_split"] == "train"
    assert 0 <= metrics["match_rate_strict"] <= metrics["match_rate"] <= 1
    assert metrics["seconds_per_structure"] > 0 and metrics["settings"]["hops"] == 2


def test_evaluated_rows_are_left_out_of_their_template_data(tiny_csv, monkeypatch):
    from explorer.generators.descriptor.templates import TemplateStarts

    left_out, excluding = [], TemplateStarts.excluding
    monkeypatch.setattr(TemplateStarts, "excluding",
                        lambda self, structures: excluding(self, left_out.extend(structures) or left_out))
    data = {"file": str(tiny_csv), "splits": ["train", "val"]}
    metrics = evaluate_reconstruction(tiny_csv, split="val", max_atoms=8, workers=1, templates=1, template_data=data,
                                      **QUICK)
    assert metrics["n"] == 1 and metrics["settings"]["template_data"] == data
    assert [s.composition.reduced_formula for s in left_out] == ["SrTiO3"]


def test_cli_bad_vector_is_one_line(tmp_path):
    (tmp_path / "v.txt").write_text("1 2 3")
    done = subprocess.run([sys.executable, "-m", "explorer.cli", "reconstruct", "--vector", str(tmp_path / "v.txt"),
                           "--model", "descriptor-perov", "--out", str(tmp_path / "x.cif")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "160 entries" in done.stderr
