"""``explorer.screen`` / ``explorer screen``: the grid, a tiny run, resuming after an interruption, bad input.

The runs use TaW3 (4 atoms; Ta and W have ASE reference crystals, so no data directory is needed), two space
groups, one energy, 2 candidates, 5 sampling and 5 relaxation steps, and the elemental hull."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from crystal_fixtures import missing_data, one_torch_thread

from explorer.errors import ExplorerInputError
from explorer.screening import (
    ConditionDone,
    ScreenConfig,
    ScreenFinished,
    cell_formula,
    iscreen,
    parse_energies,
    parse_spacegroups,
    plan,
    screen,
)

TINY = {"formulas": ["TaW3"], "spacegroups": "221,123", "energies": "-0.2", "n": 2, "steps": 5, "relax_steps": 5,
        "model": "cfm-uniform", "reference": "elements"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def finished(potential, references, tmp_path_factory):
    """(out directory, result) of one finished tiny screen; tests copy the directory before changing it."""
    out = tmp_path_factory.mktemp("screen") / "run"
    return out, screen(ScreenConfig(out=str(out), **TINY), potential=potential, references=references)


def copy_run(finished, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(finished[0], target)
    return target


def energies_by_label(result) -> dict:
    return {c.label: c.formation_energy_per_atom for c in result.candidates}


# ----------------------------------------------------------------------------------------------- input


def test_parse_energies():
    assert parse_energies("-0.6:-0.4:0.05") == pytest.approx([-0.6, -0.55, -0.5, -0.45, -0.4])
    assert parse_energies("-0.4:-0.6:-0.1") == pytest.approx([-0.4, -0.5, -0.6])
    assert parse_energies("-0.5, -0.4,-0.5") == [-0.5, -0.4]
    assert parse_energies([-0.3]) == [-0.3] and parse_energies(-0.3) == [-0.3]


@pytest.mark.parametrize("spec", ["abc", "-0.6:-0.4", "-0.6:-0.4:0", "-0.6:-0.4:-0.05", "nan:1:0.1", "",
                                  "-0.6:x:0.1", "0:100:0.001", "-0.5,nan"])
def test_parse_energies_rejects(spec):
    with pytest.raises(ExplorerInputError):
        parse_energies(spec)


def test_parse_spacegroups():
    assert parse_spacegroups("common") is None and parse_spacegroups(" Common ") is None
    assert parse_spacegroups("191, 187,191") == [191, 187]
    assert parse_spacegroups([12, "65"]) == [12, 65]
    for bad in ("999", "x", "", "0"):
        with pytest.raises(ExplorerInputError):
            parse_spacegroups(bad)


def test_cell_formula_keeps_the_written_order():
    assert cell_formula("TaWB6") == ("TaWB6", {"Ta": 1, "W": 1, "B": 6})
    assert cell_formula("W2 Ta B5") == ("W2TaB5", {"W": 2, "Ta": 1, "B": 5})


def test_plan_common_spacegroups_fit_each_formula():
    screen_plan = plan(ScreenConfig(formulas=["TaWB6", "Ta2W2B12"], energies="-0.5,-0.4", reference="elements"))
    by_formula = {}
    for condition in screen_plan.conditions:
        by_formula.setdefault(condition.formula, set()).add(condition.spacegroup)
    assert {191, 221} <= by_formula["TaWB6"] and 230 not in by_formula["TaWB6"]
    assert len(screen_plan.conditions) == 2 * sum(len(v) for v in by_formula.values())
    assert screen_plan.chemsys == ("Ta", "W", "B") and screen_plan.incompatible == []
    assert len({c.seed for c in screen_plan.conditions}) == len(screen_plan.conditions)


def test_plan_drops_incompatible_listed_spacegroups():
    config = ScreenConfig(formulas=["TaWB5"], spacegroups="221,191", energies="-0.5", reference="elements")
    screen_plan = plan(config)
    assert [c.spacegroup for c in screen_plan.conditions] == [191]
    assert screen_plan.incompatible == [("TaWB5", 221)]
    config.keep_incompatible = True
    assert [c.spacegroup for c in plan(config).conditions] == [221, 191]
    with pytest.raises(ExplorerInputError, match="no condition left"):
        plan(ScreenConfig(formulas=["TaWB5"], spacegroups="221", energies="-0.5", reference="elements"))


@pytest.mark.parametrize("change, message", [
    ({"formulas": ["TaXx3"]}, "unknown element"),
    ({"formulas": []}, "no formula"),
    ({"spacegroups": "999"}, "1..230"),
    ({"energies": "-0.6:-0.4:0"}, "step"),
    ({"n": 0}, "n must be"),
    ({"relax_steps": -1}, "relax steps"),
    ({"fmax": 0}, "fmax"),
    ({"model": "no-such-model"}, "unknown generation model"),
    ({"reference": "no-such-reference"}, "reference must be"),
    ({"chemsys": "Ta-B"}, "lacks W"),
    ({"reference": "mp", "data_dir": "/nonexistent"}, "--reference elements"),
    ({"reference": "ml", "formation": "eform"}, "reference 'ml' needs"),
    ({"formation": "none"}, "formation must be"),
])
def test_plan_rejects_bad_input(change, message):
    with pytest.raises(ExplorerInputError, match=message):
        plan(ScreenConfig(**{**TINY, **change}))


# ----------------------------------------------------------------------------------------------- runs


def test_tiny_screen_writes_the_ranked_table_and_the_hull(finished):
    out, result = finished
    assert result.conditions == 2 and result.done == 2 and result.skipped == 0
    assert len(result.candidates) == 4 and [c.rank for c in result.candidates] == [1, 2, 3, 4]
    assert sorted(p.name for p in (out / "conditions").iterdir()) == ["TaW3_sg123_E-0.2000.json",
                                                                       "TaW3_sg221_E-0.2000.json"]
    with open(out / "ranked.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {"formula", "spacegroup_requested", "spacegroup_detected", "target_energy",
                               "formation_energy_per_atom", "e_above_hull", "decomposition", "relax_status",
                               "min_distance", "valid", "file"} <= set(rows[0])
    placed = [float(r["e_above_hull"]) for r in rows if r["e_above_hull"]]
    assert placed == sorted(placed)
    for row in rows:
        assert (out / row["file"]).is_file() and row["formula"] == "TaW3" and row["target_energy"] == "-0.2"
    assert (out / "hull.html").stat().st_size > 10_000 and (out / "hull.csv").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conditions"] == 2 and summary["candidates"] == 4 and summary["best"]
    assert result.hull.chemsys == ("Ta", "W")


def test_rerun_skips_every_done_condition(finished, tmp_path):
    out = copy_run(finished, tmp_path)
    events = list(iscreen(ScreenConfig(out=str(out), **TINY)))  # no potential needed: nothing to run
    assert events[0].skipped == 2 and events[0].pending == 0
    assert not any(isinstance(e, ConditionDone) for e in events)
    result = events[-1].result
    assert result.done == 0 and result.skipped == 2
    assert energies_by_label(result) == energies_by_label(finished[1])


def test_missing_condition_is_run_again_with_the_same_result(finished, tmp_path, potential, references):
    out = copy_run(finished, tmp_path)
    (out / "conditions" / "TaW3_sg123_E-0.2000.json").unlink()
    (out / "structures" / "TaW3_sg221_E-0.2000_0.cif").unlink(missing_ok=True)
    result = screen(ScreenConfig(out=str(out), **TINY), potential=potential, references=references)
    assert result.done == 1 and result.skipped == 1
    assert energies_by_label(result) == pytest.approx(energies_by_label(finished[1]), abs=1e-4)
    assert all((out / c.file).is_file() for c in result.candidates)  # deleted CIFs are written again


def test_interrupted_screen_resumes_what_is_missing(tmp_path, potential, references):
    config = ScreenConfig(out=str(tmp_path / "run"), **TINY)
    events = iscreen(config, potential=potential, references=references)
    for event in events:
        if isinstance(event, ConditionDone):
            break  # stop after the first condition, like Ctrl-C
    events.close()
    assert len(list((tmp_path / "run" / "conditions").glob("*.json"))) == 1
    assert not (tmp_path / "run" / "ranked.csv").exists()
    result = screen(config, potential=potential, references=references)
    assert result.done == 1 and result.skipped == 1 and len(result.candidates) == 4


def test_grid_may_grow_but_settings_must_match(finished, tmp_path, potential, references):
    out = copy_run(finished, tmp_path)
    with pytest.raises(ExplorerInputError, match="other settings .*n 2 -> 3"):
        screen(ScreenConfig(out=str(out), **{**TINY, "n": 3}))
    grown = ScreenConfig(out=str(out), **{**TINY, "spacegroups": "221"})
    finished_events = [e for e in iscreen(grown, potential=potential, references=references)
                       if isinstance(e, ScreenFinished)]
    assert finished_events[0].result.conditions == 1 and len(finished_events[0].result.candidates) == 2


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_rerun_prints_one_json_line(finished, tmp_path, capsys):
    from explorer.cli import main

    out = copy_run(finished, tmp_path)
    argv = ["screen", "--formula", "TaW3", "--spacegroups", "221,123", "--energies", "-0.2", "--n", "2", "--steps",
            "5", "--relax-steps", "5", "--model", "cfm-uniform", "--reference", "elements", "--out", str(out),
            "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["skipped"] == 2 and summary["done"] == 0 and summary["conditions"] == 2
    assert summary["candidates"] == 4 and summary["html"].endswith("hull.html") and "seconds" in summary
    assert "skipping 2 of 2 conditions" in captured.err


@pytest.mark.parametrize("extra", [
    ["--energies", "-0.6:-0.4:-0.05"],
    ["--energies", "abc"],
    ["--formula", "Qq2"],
    ["--spacegroups", "999"],
    ["--n", "0"],
    ["--reference", "mp", "--data-dir", "/nonexistent"],
])
def test_cli_bad_input_exits_2(extra, tmp_path, capsys):
    from explorer.cli import main

    argv = ["screen", "--formula", "TaW3", "--energies", "-0.2", "--out", str(tmp_path / "run"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("explorer: error:")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------- example


def test_example_script_quick(tmp_path, potential, capsys):
    """examples/ta_w_b_screening.py --quick: the library pipeline end to end on Ta–W–B (the B reference
    crystal comes from the data directory's MP structures, so the test needs it)."""
    import importlib.util
    from pathlib import Path

    from explorer.config import data_dir

    if not (data_dir() / "mp_structures.csv.gz").is_file():
        pytest.skip(missing_data("mp_structures.csv.gz") + ": the example's hull uses the MP data")
    path = Path(__file__).resolve().parents[1] / "examples" / "ta_w_b_screening.py"
    spec = importlib.util.spec_from_file_location("ta_w_b_screening", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--out", str(tmp_path / "run")])
    assert result.conditions == 1 and len(result.candidates) == 1 and result.chemsys == "Ta-W-B"
    assert (tmp_path / "run" / "hull.html").is_file() and (tmp_path / "run" / "ranked.csv").is_file()
    assert "hull plot:" in capsys.readouterr().out
