"""The command line, run as users run it: ``python -m explorer.cli ...`` in a subprocess; the bad-input cases call
``main`` in this process (the same code without an interpreter start-up each), and one of them runs in a subprocess
too (nothing but the one line on stderr, whatever is imported on the way)."""

import csv
import json
import os
import subprocess
import sys

import pytest
from crystal_fixtures import missing_weights, tiny_rows, write_csv_gz
from pymatgen.core import Composition, Structure

METRIC_KEYS = {"n", "match_rate", "match_rate_loose", "rmse", "validity", "seconds", "model", "steps"}


def run_cli(*args, cwd, timeout=300, env=None):
    env = dict(os.environ, EXPLORER_CACHE_DIR=str(cwd / "cache"), **(env or {}))
    return subprocess.run([sys.executable, "-m", "explorer.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_in_process(args, cwd, monkeypatch, capsys) -> tuple[int, str, str]:
    """``main(args)`` in this process, in ``cwd``: (exit code, stdout, stderr)."""
    import warnings

    from explorer.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cwd / "cache"))
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() installs its own
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_cif_files_and_candidates_csv(tmp_path):
    from crystal_fixtures import write_data_dir

    data = write_data_dir(tmp_path / "data")
    out = tmp_path / "out"
    result = run_cli("generate", "--formula", "KCl", "--spacegroup", "225", "--energy", "-2.0", "--n", "3",
                     "--steps", "3", "--seed", "1", "--device", "cpu", "--out", out, "--json", cwd=tmp_path,
                     env={"EXPLORER_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == 3 and summary["steps"] == 3
    cifs = sorted(out.glob("*.cif"))
    assert len(cifs) == 3
    for path in cifs:
        structure = Structure.from_file(path)
        assert structure.composition == Composition("KCl") and structure.volume > 0
    with open(out / "candidates.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert sorted(r["file"] for r in rows) == [p.name for p in cifs]
    assert all(r["formula"] == "KCl" and r["spacegroup_requested"] == "225" and r["n_sites"] == "2" for r in rows)
    assert all(r["spacegroup_detected"] == "225" for r in rows)  # every candidate in the group asked for
    assert rows[0]["model"] == "prototype" and rows[0]["source"].split()[0] in ("NaCl", "KBr")


def test_modify_writes_prototypes_first_then_samples(tmp_path, monkeypatch, capsys):
    from crystal_fixtures import rock_salt_nacl, write_data_dir

    data = write_data_dir(tmp_path / "data")
    (tmp_path / "nacl.cif").write_text(rock_salt_nacl().to(fmt="cif"))
    out = tmp_path / "out"
    result = run_cli("modify", "--structure", "nacl.cif", "--spacegroup", "221", "--energy-delta", "-0.1", "--n", "2",
                     "--steps", "2", "--relax-steps", "3", "--device", "cpu", "--out", out, "--json", cwd=tmp_path,
                     env={"EXPLORER_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == 2 and summary["prototypes"] == 1 and summary["model"] == "mod-palette-cfm"
    with open(out / "candidates.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["source"]) for r in rows] == [("prototype", "CsCl tiny-3"), ("mod-palette-cfm", "")]
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(data))
    code, _, err = run_in_process(["modify", "--structure", "nacl.cif", "--spacegroup", "221", "--energy-delta",
                                   "-0.1", "--prototypes", "many", "--out", out], tmp_path, monkeypatch, capsys)
    assert code == 2 and "whole number" in err


def test_evaluate_modification_prints_one_json_object(tmp_path):
    from crystal_fixtures import write_data_dir, write_polymorph_pairs_csv

    data = write_data_dir(tmp_path / "data")
    csv_path = write_polymorph_pairs_csv(tmp_path / "pairs.csv.gz")
    result = run_cli("evaluate", "modification", "--csv", csv_path, "--steps", "2", "--relax-steps", "3",
                     "--workers", "1", "--device", "cpu", "--json", cwd=tmp_path, env={"EXPLORER_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert METRIC_KEYS <= set(metrics) and metrics["n"] == 1 and metrics["relax_steps"] == 3
    assert metrics["model"] == "mod-palette-cfm+prototypes" and metrics["prototype_share"] == 1.0


def test_evaluate_generation_prints_one_json_object(tmp_path):
    csv_path = write_csv_gz(tmp_path / "tiny.csv.gz", tiny_rows())
    result = run_cli("evaluate", "generation", "--csv", csv_path, "--limit", "2", "--steps", "3", "--workers", "1",
                     "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(metrics, dict) and METRIC_KEYS <= set(metrics)
    # no --model: the default for a formula and a space group (langevin: whole noise levels + the final step)
    assert metrics["n"] == 2 and metrics["model"] == "langevin" and metrics["steps"] == 4



def _m3gnet_weights() -> bool:
    from explorer.config import models_dir
    from explorer.relax.potentials import DEFAULT_PES

    return all((models_dir() / DEFAULT_PES / f).is_file() for f in ("model.json", "model.pt", "state.pt"))


@pytest.mark.skipif(not _m3gnet_weights(), reason=missing_weights())
def test_evaluate_fidelity_prints_one_json_object(tmp_path):
    """Two elemental rows (Si, Cu): the elemental references come from ASE's crystals (no data directory)."""
    rows = {row["material_id"]: row for row in tiny_rows()}
    csv_path = write_csv_gz(tmp_path / "tiny.csv.gz", [rows["tiny-2"], rows["tiny-5"]])
    (tmp_path / "no-data").mkdir()
    result = run_cli("evaluate", "fidelity", "--csv", csv_path, "--limit", "2", "--steps", "3", "--relax-steps", "5",
                     "--device", "cpu", "--json", cwd=tmp_path, env={"EXPLORER_DATA_DIR": str(tmp_path / "no-data")})
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"n", "mae", "within_0.1", "validity", "relaxed", "seconds", "model", "steps"} <= set(metrics)
    assert metrics["n"] == 2 and metrics["steps"] == 3 and metrics["relax_steps"] == 5
    assert sum(metrics["relaxed"].values()) == 2


GENERATE = ["generate", "--n", "2", "--steps", "3", "--device", "cpu"]


@pytest.mark.parametrize("args, message", [
    (GENERATE + ["--formula", "Xx", "--spacegroup", "225", "--energy", "-1"], "unknown element"),
    (GENERATE + ["--formula", "Na31Cl30", "--spacegroup", "225", "--energy", "-1"], "61 atoms"),
    (GENERATE + ["--formula", "NaCl", "--spacegroup", "231", "--energy", "-1"], "space group"),
    (GENERATE + ["--formula", "NaCl", "--spacegroup", "225", "--energy", "nan"], "energy"),
    (["evaluate", "generation", "--csv", "missing.csv.gz", "--steps", "3"], "not found"),
    (["evaluate", "fidelity", "--csv", "missing.csv.gz", "--steps", "3"], "not found"),
    (GENERATE + ["--model", "cfm-normal", "--formula", "NaCl", "--spacegroup", "225"],
     "needs a target formation energy"),
    (GENERATE + ["--model", "langevin", "--formula", "NaCl", "--spacegroup", "225", "--energy", "-1"],
     "does not take a target formation energy"),
    (GENERATE + ["--model", "langevin", "--formula", "Na", "--spacegroup", "230"],
     "no Wyckoff positions of space group 230 hold Na1"),
    (GENERATE + ["--model", "langevin", "--formula", "NaCl", "--spacegroup", "225", "--wyckoff", "Na:2,Cl:1"],
     "with Na:2, Cl:1 inequivalent sites"),
    (["evaluate", "coverage", "--csv", "missing.csv.gz", "--n", "10"], "not found"),
    (["evaluate", "reconstruction", "--csv", "missing.csv.gz", "--template-splits", "val"],
     "--template-splits needs --template-data"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, monkeypatch, capsys):
    if args[0] == "generate":
        args = args + ["--out", str(tmp_path / "out")]
    code, out, err = run_in_process(args, tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in err + out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert message in lines[0] and lines[0].startswith("explorer")
    assert not (tmp_path / "out").exists()


def test_bad_input_in_a_fresh_interpreter_is_one_line(tmp_path):
    """The same from ``python -m explorer.cli``: the model is loaded on the way, and nothing else reaches stderr."""
    result = run_cli(*GENERATE, "--model", "langevin", "--formula", "Na", "--spacegroup", "230", "--out",
                     tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("explorer: error: no Wyckoff positions of space group 230"), lines
    assert not (tmp_path / "out").exists()


def test_generate_a_formula_in_a_space_group_with_the_langevin_model_by_default(tmp_path):
    out = tmp_path / "out"  # no --model and no --energy: the manifest's default for these conditions
    result = run_cli("generate", "--formula", "Zn2O2", "--spacegroup", "186", "--wyckoff",
                     "Zn:1,O:1", "--n", "2", "--steps", "6", "--network-only", "--device", "cpu", "--out", out,
                     "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == 2 and summary["spacegroup_kept"] == 2 and summary["model"] == "langevin"
    assert summary["steps"] == 7  # whole noise levels + the final denoising step
    for path in out.glob("*.cif"):
        assert Structure.from_file(path).composition == Composition("Zn2O2")


def test_evaluate_coverage_sanity_row(tmp_path):
    csv_path = write_csv_gz(tmp_path / "tiny.csv.gz", tiny_rows())
    result = run_cli("evaluate", "coverage", "--csv", csv_path, "--split", "train", "--n", "4", "--training-structures",
                     "--workers", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"cov_r", "cov_p", "fd_crystalnn", "validity", "emd_density", "emd_elements"} <= set(metrics)
    assert metrics["cov_r"] == 1.0 and metrics["cov_p"] == 1.0


def test_models_lists_every_registered_generator(tmp_path):
    from explorer.generators import available_models

    table = run_cli("models", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "cfm-normal" in table.stdout and "matrix" in table.stdout
    assert "default of generate: langevin for a formula and a space group, cfm-normal with --energy too" \
        in table.stdout
    result = run_cli("models", "--json", cwd=tmp_path)
    models = json.loads(result.stdout.strip().splitlines()[-1])
    assert [m["name"] for m in models] == available_models()
    for m in models:
        assert set(m) == {"name", "family", "task", "conditions", "parameters", "metrics"}
    default = next(m for m in models if m["name"] == "cfm-normal")
    assert default["conditions"] == ["energy", "formula", "spacegroup"]
    langevin = next(m for m in models if m["name"] == "langevin")
    assert langevin["family"] == "langevin" and langevin["conditions"] == ["formula", "spacegroup", "wyckoff"]
    assert default["metrics"]["val"]["match_rate_loose"] > 0.3
    only = json.loads(run_cli("models", "--task", "modification", "--json", cwd=tmp_path).stdout.splitlines()[-1])
    assert {m["task"] for m in only} == {"modification"}


def test_a_condition_the_model_does_not_take_is_one_line(tmp_path, monkeypatch, capsys):
    def run(*args):
        return run_in_process(args, tmp_path, monkeypatch, capsys)

    code, _, err = run("generate", "--formula", "NaCl", "--spacegroup", "225", "--energy", "-2.0", "--wyckoff",
                       "Na:1,Cl:1", "--n", "1", "--steps", "2", "--out", tmp_path / "out")
    assert code == 2
    assert err.strip().count("\n") == 0 and "does not take Wyckoff site counts" in err
    code, _, err = run("generate", "--formula", "NaCl", "--energy", "-2.0", "--n", "1", "--out", tmp_path / "out")
    assert code == 2 and "needs a space group" in err
    code, _, err = run("modify", "--structure", "x.cif", "--spacegroup", "221", "--energy-delta", "-0.1",
                       "--model", "cfm-normal", "--out", tmp_path / "out")
    assert code == 2
