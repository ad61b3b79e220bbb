"""Dask distributed for screening and relaxation (explorer.distributed): --scheduler parsing, a screen on a local
cluster equal to the serial one even when a worker process is killed mid-run, a raising task recorded and the
run going on, relaxation in batches on workers. The runs are the screening tests' tiny TaW3 screen."""

from __future__ import annotations

import json
import os
import signal

import pytest
from test_screening import TINY

from explorer.cli import main
from explorer.distributed import parse_scheduler, worker_pids
from explorer.errors import ExplorerInputError
from explorer.screening import ConditionDone, ConditionFailed, ConditionStarted, ScreenConfig, iscreen, screen


@pytest.mark.parametrize("spec, kind, workers", [(None, "none", 0), ("none", "none", 0), ("local:3", "local", 3)])
def test_scheduler_specs(spec, kind, workers):
    parsed = parse_scheduler(spec)
    assert (parsed.kind, parsed.workers) == (kind, workers)
    assert parse_scheduler("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"


@pytest.mark.parametrize("spec", ["local", "local:0", "local:x", "cluster", "8786"])
def test_bad_scheduler_specs_are_one_line_errors(spec):
    with pytest.raises(ExplorerInputError, match="--scheduler"):
        parse_scheduler(spec)


def test_the_cli_refuses_a_bad_scheduler_before_running(tmp_path, capsys):
    code = main(["screen", "--formula", "TaW3", "--energies", "-0.2", "--out", str(tmp_path / "s"),
                 "--scheduler", "local:0"])
    assert code == 2 and capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_a_killed_worker_loses_nothing_and_the_ranking_equals_the_serial_run(tmp_path, potential, references):
    serial = screen(ScreenConfig(out=str(tmp_path / "serial"), **TINY), potential=potential, references=references)
    config = ScreenConfig(out=str(tmp_path / "dask"), scheduler="local:2", **TINY)
    killed = []
    events = []
    for event in iscreen(config, potential=potential, references=references):
        events.append(event)
        if isinstance(event, ConditionStarted) and not killed:
            from distributed import default_client

            pid = sorted(worker_pids(default_client()).values())[0]
            os.kill(pid, signal.SIGKILL)  # a worker process dies while the conditions are in flight
            killed.append(pid)
    result = events[-1].result
    assert killed and result.done == 2 and result.failed == []
    assert sum(isinstance(e, ConditionDone) for e in events) == 2
    assert (tmp_path / "dask" / "ranked.csv").read_text() == (tmp_path / "serial" / "ranked.csv").read_text()
    assert [c.formation_energy_per_atom for c in result.candidates] == \
        [c.formation_energy_per_atom for c in serial.candidates]


def test_a_raising_condition_is_recorded_and_the_run_goes_on(tmp_path, potential, references, monkeypatch):
    config = ScreenConfig(out=str(tmp_path / "run"), scheduler="local:1", **{**TINY, "model": "no-such-model"})
    monkeypatch.setattr("explorer.screening.plan", _plan_without_model_check(config))
    events = list(iscreen(config, potential=potential, references=references))
    failed = [e for e in events if isinstance(e, ConditionFailed)]
    assert len(failed) == 2 and "no-such-model" in failed[0].error
    result = events[-1].result
    assert sorted(result.failed) == ["TaW3_sg123_E-0.2000", "TaW3_sg221_E-0.2000"] and result.done == 0
    assert not list((tmp_path / "run" / "conditions").glob("*.json"))  # a rerun tries them again


def _plan_without_model_check(config):
    """plan() that lets an unknown model through (it fails on the workers, which is what is tested)."""
    from explorer import screening

    real = screening.plan
    good = real(ScreenConfig(**{**config.__dict__, "model": "cfm-uniform"}))
    good.settings["model"] = config.model
    return lambda _config: good


def test_relax_on_a_local_cluster_matches_the_serial_relaxation(tmp_path, potential, capsys):
    from crystal_fixtures import cesium_chloride, rock_salt_nacl

    files = []
    for name, structure in (("nacl.cif", rock_salt_nacl()), ("cscl.cif", cesium_chloride())):
        structure.perturb(0.05, 0.05, seed=0)
        files.append(str(tmp_path / name))
        structure.to(filename=files[-1])
    common = ["--steps", "20", "--formation", "none", "--batch-size", "1", "--json"]
    assert main(["relax", *files, "--out", str(tmp_path / "a"), *common]) == 0
    serial = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert main(["relax", *files, "--out", str(tmp_path / "b"), "--scheduler", "local:2", *common]) == 0
    captured = capsys.readouterr()
    assert "dashboard http://" in captured.err
    distributed = json.loads(captured.out.strip().splitlines()[-1])["results"]
    assert [r["file"] for r in distributed] == files
    assert [r["energy_per_atom"] for r in distributed] == pytest.approx([r["energy_per_atom"] for r in serial],
                                                                         abs=1e-5)


def test_fidelity_relaxed_on_a_local_cluster_gives_the_serial_numbers(tmp_path, potential):
    from crystal_fixtures import tiny_rows, write_csv_gz

    from explorer.fidelity import evaluate_fidelity
    from explorer.relax import ElementalReferences

    rows = {row["material_id"]: row for row in tiny_rows()}
    csv = write_csv_gz(tmp_path / "fidelity.csv.gz", [rows["tiny-2"], rows["tiny-5"]])
    references = ElementalReferences(potential, data=tmp_path / "no-data", steps=30, cache=tmp_path / "refs")
    common = {"steps": 3, "seed": 0, "device": "cpu", "relax_steps": 5, "potential": "m3gnet",
              "references": references, "batch_size": 1}
    serial = evaluate_fidelity(csv, **common)
    distributed = evaluate_fidelity(csv, scheduler="local:2", **common)
    assert [r.formation_energy_per_atom for r in distributed.rows] == \
        pytest.approx([r.formation_energy_per_atom for r in serial.rows], abs=1e-6)
    assert distributed.summary()["mae"] == pytest.approx(serial.summary()["mae"], abs=1e-6)


def test_evaluate_generation_matches_on_a_local_cluster_with_the_same_numbers(tiny_csv, capsys):
    common = ["evaluate", "generation", "--csv", str(tiny_csv), "--model", "cfm-uniform", "--steps", "3",
              "--device", "cpu", "--json"]
    assert main([*common, "--workers", "1"]) == 0
    serial = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*common, "--scheduler", "local:2"]) == 0
    distributed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    keys = ("n", "match_rate", "match_rate_loose", "rmse", "validity", "spacegroup_rate")
    assert {k: distributed[k] for k in keys} == {k: serial[k] for k in keys}


def test_fingerprints_on_a_local_cluster_equal_the_serial_ones(nacl, si, srtio3):
    import numpy as np

    from explorer.coverage import fingerprints

    serial = fingerprints([nacl, si, srtio3], workers=1)
    distributed = fingerprints([nacl, si, srtio3], workers="local:1")
    assert np.allclose(serial.structure, distributed.structure, equal_nan=True)
    assert (serial.comp_valid == distributed.comp_valid).all() and np.allclose(serial.density, distributed.density)
