"""explorer benchmark: every method on the same rows, one table (JSON, Markdown, plot), resumable."""

import json

import pytest
from crystal_fixtures import potassium_bromide, rock_salt_nacl, write_csv_gz
from pymatgen.core import Lattice, Structure

from explorer import benchmark
from explorer.benchmark import CspSettings, RowRecord, csp_table, markdown_table, run_csp
from explorer.cli import main
from explorer.errors import ExplorerInputError
from explorer.fileio import read_json_lines

HIT, NEAR, MISS = [True, True, 0.01, True, True], [False, True, 0.2, True, True], [False, False, None, True, False]


def test_k1_scores_the_candidate_a_budget_of_one_gives_and_k_the_best_ranked_and_any():
    records = [RowRecord(0, [MISS, HIT, NEAR], first=0, best=1, seconds=3.0),
               RowRecord(1, [NEAR, MISS, MISS], first=0, best=0, seconds=3.0),
               RowRecord(2, [], missing="no template")]
    one, three = csp_table("m", records, [1, 3])
    assert (one["k"], one["n"], one["rows_with_candidates"]) == (1, 3, 2)
    assert (one["match_rate"], one["match_rate_loose"]) == (0.0, round(1 / 3, 6))
    assert (three["match_rate"], three["match_rate_loose"]) == (round(1 / 3, 6), round(2 / 3, 6))
    assert three["match_rate_loose_any"] == round(2 / 3, 6)
    assert three["spacegroup_rate"] == round(3 / 6, 6) and one["spacegroup_rate"] == 0.5
    assert one["seconds_per_structure"] == three["seconds_per_structure"] == 1.0
    assert set(benchmark.TABLE_FIELDS) <= set(one)


def kcl_rows(path):
    """A test split of rock-salt KCl and NaBr (the data directory's train split has NaCl and KBr templates)."""
    kcl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.3), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nabr = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.98), ["Na", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rows = [{"material_id": f"t{i}", "formula": s.composition.reduced_formula, "spacegroup": 225,
             "formation_energy_per_atom": "-2.0", "split": "test", "cif": s.to(fmt="cif")}
            for i, s in enumerate([kcl, nabr, rock_salt_nacl(), potassium_bromide()])]
    return write_csv_gz(path, rows)


def test_a_run_scores_the_peers_on_the_same_rows_and_resumes(tiny_data_dir, tmp_path, monkeypatch):
    csv = kcl_rows(tmp_path / "rows.csv.gz")
    settings = CspSettings(str(csv), "test", 20, k=2, seed=0)
    names = ["test-structures", "ion-exchange", "pyxtal-random"]
    table = run_csp(settings, tmp_path / "out", limit=2, models=names)
    rows = {(r["model"], r["k"]): r for r in table}
    assert [r["model"] for r in table] == [n for n in names for _ in (1, 2)]
    assert rows["test-structures", 1]["match_rate"] == 1.0
    exchange = rows["ion-exchange", 2]
    assert exchange["n"] == 2 and exchange["rows_with_candidates"] == 2
    assert exchange["match_rate_loose"] == 1.0  # KCl from NaCl/KBr, NaBr from NaCl/KBr: rock salt either way
    assert rows["pyxtal-random", 2]["spacegroup_rate"] == 1.0

    monkeypatch.setattr(benchmark, "_produce", lambda *a, **k: pytest.fail("a finished chunk was recomputed"))
    assert run_csp(settings, tmp_path / "out", limit=2, models=names) == table
    monkeypatch.undo()
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tiny_data_dir))
    bigger = run_csp(settings, tmp_path / "out", limit=4, models=["test-structures"])
    assert bigger[0]["n"] == 4  # the later rows were added


def test_two_runs_side_by_side_split_the_chunks_and_write_the_same_table(tmp_path, monkeypatch):
    import threading

    csv = kcl_rows(tmp_path / "rows.csv.gz")
    settings = CspSettings(str(csv), "test", 20, k=2, seed=0)
    monkeypatch.setattr(benchmark, "CHUNK", 1)
    monkeypatch.setattr(benchmark, "CLAIM_WAIT_S", 0.05)
    made, real = [], benchmark._produce

    def produce(name, rows, index, *rest):
        made.append((name, tuple(index)))
        return real(name, rows, index, *rest)

    monkeypatch.setattr(benchmark, "_produce", produce)
    names = ["test-structures", "pyxtal-random"]
    tables = [None, None]

    def run(k):
        tables[k] = run_csp(settings, tmp_path / "out", limit=4, models=names)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tables[0] == tables[1] and tables[0][0]["n"] == 4
    assert sorted(made) == sorted({(name, (i,)) for name in names for i in range(4)})  # every chunk made once
    folder = settings.record_dir(tmp_path / "out")
    assert not list(folder.glob("*.claim-*"))
    assert sorted(line["row"] for line in read_json_lines(folder / "pyxtal-random.jsonl")) == [0, 1, 2, 3]


def test_a_claim_is_respected_while_its_run_lives_and_taken_over_when_it_died(tmp_path):
    import os
    import subprocess
    import sys
    import time

    claim = benchmark.claim_chunk(tmp_path, "m", 0)
    assert claim is not None and benchmark.claim_chunk(tmp_path, "m", 0) is None  # this process holds it
    assert benchmark.claim_chunk(tmp_path, "m", 16) is not None  # another chunk is free
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim.write_text(f"{os.uname().nodename} {int(gone.stdout)} {time.time():.0f}\n")
    assert benchmark.claim_chunk(tmp_path, "m", 0) == claim  # its process is gone
    claim.write_text(f"elsewhere 1 {time.time():.0f}\n")
    assert benchmark.claim_chunk(tmp_path, "m", 0) is None  # another machine's, recent
    claim.write_text(f"elsewhere 1 {time.time() - benchmark.CLAIM_STALE_S - 1:.0f}\n")
    assert benchmark.claim_chunk(tmp_path, "m", 0) == claim  # another machine's, abandoned


def test_unknown_rows_and_bad_budgets_are_refused(tmp_path):
    csv = kcl_rows(tmp_path / "rows.csv.gz")
    with pytest.raises(ExplorerInputError, match="unknown benchmark row"):
        run_csp(CspSettings(str(csv)), tmp_path, models=["no-such-model"])
    with pytest.raises(ExplorerInputError, match="k must be"):
        run_csp(CspSettings(str(csv), k=0), tmp_path, models=["test-structures"])
    with pytest.raises(ExplorerInputError, match="not a de novo row"):
        benchmark.dng_methods(csv, ["cfm-normal"])


def test_the_default_rows_are_every_registered_model_and_every_peer():
    from explorer.generators import available_models

    names = benchmark.csp_methods()
    assert names[: len(available_models("generation"))] == available_models("generation")
    assert names[-len(benchmark.PEERS):] == list(benchmark.PEERS)
    assert "cspnet" in names


def test_the_cli_writes_json_markdown_and_a_plot_and_prints_the_table_last(tmp_path, capsys):
    csv = kcl_rows(tmp_path / "rows.csv.gz")
    out = tmp_path / "results"
    code = main(["benchmark", "csp", "--csv", str(csv), "--split", "test", "--limit", "2", "--k", "2",
                 "--models", "test-structures,pyxtal-random", "--out", str(out), "--json"])
    assert code == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {tuple(sorted(r)) for r in table} == {tuple(sorted(benchmark.TABLE_FIELDS))}
    assert (out / "benchmark_csp_test.md").read_text().startswith("| model | task | k |")
    assert (out / "benchmark_csp_test.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "benchmark_csp_test.json").read_text())["table"] == table


def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    assert main(["benchmark", "csp", "--csv", str(tmp_path / "none.csv.gz"), "--out", str(tmp_path)]) == 2
    assert main(["benchmark", "csp", "--csv", str(kcl_rows(tmp_path / "r.csv.gz")), "--models", "nope",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("explorer: error:") for line in err)


def test_markdown_shows_missing_numbers_as_a_dash():
    text = markdown_table([{"model": "a", "task": "csp", "k": 1, "rmse": None, "match_rate": 0.5}])
    assert "| a | csp | 1 | 0.500 | – |" in text


def test_the_markdown_rounds_a_rate_once():
    """945 of 1156 is 0.81747: 0.817 in the table (rounded to 4 decimals first it became 0.8175 and then 0.818)."""
    records = [RowRecord(i, [HIT if i < 945 else MISS], first=0, best=0, seconds=1.0) for i in range(1156)]
    text = markdown_table(csp_table("m", records, [1]))
    assert "| 0.817 | 0.817 |" in text and "0.818" not in text


def test_models_the_pipeline_and_the_relaxed_peers_fill_their_rows(tiny_data_dir, tmp_path):
    from crystal_fixtures import missing_weights

    from explorer.config import models_dir
    from explorer.relax.potentials import DEFAULT_PES

    if not (models_dir() / DEFAULT_PES / "model.json").is_file():
        pytest.skip(missing_weights())
    csv = kcl_rows(tmp_path / "rows.csv.gz")
    settings = CspSettings(str(csv), "test", 20, k=2, seed=0, relax_steps=5, device="cpu")
    names = ["cfm-uniform", "explorer", "ion-exchange-relaxed", "pyxtal-random-relaxed"]
    table = {(r["model"], r["k"]): r for r in run_csp(settings, tmp_path / "out", limit=2, models=names)}
    assert table["explorer", 2]["rows_with_candidates"] == 2
    assert table["explorer", 1]["match_rate_loose"] == 1.0  # the rock-salt prototype comes first
    assert table["ion-exchange-relaxed", 2]["match_rate_loose"] == 1.0
    assert table["cfm-uniform", 2]["n"] == 2 and table["cfm-uniform", 2]["seconds_per_structure"] > 0
    relaxed = table["pyxtal-random-relaxed", 2]
    assert relaxed["rows_with_candidates"] == 2 and relaxed["validity"] is not None
    records = benchmark.read_records(settings.record_dir(tmp_path / "out") / "pyxtal-random-relaxed.jsonl")
    assert all(len(r.candidates) == 2 and 0 <= r.best < 2 for r in records.values())


def test_records_of_another_model_or_sampler_are_set_aside(tmp_path, monkeypatch):
    from explorer.benchmark import method_fingerprint, method_records
    from explorer.generators import default_model

    line = RowRecord(0, [[True, True, 0.1, True, True]]).to_json() + "\n"
    (tmp_path / "cspnet.jsonl").write_text(line)  # from before fingerprints: taken as current
    assert list(method_records(tmp_path, "cspnet")) == [0]
    assert (tmp_path / "cspnet.made-with").read_text().strip() == method_fingerprint("cspnet") != ""
    assert list(method_records(tmp_path, "cspnet")) == [0]  # same model: resumed
    (tmp_path / "cspnet.made-with").write_text("older weights\n")
    assert method_records(tmp_path, "cspnet") == {} and (tmp_path / "cspnet.jsonl.stale").read_text() == line
    # explorer samples the default model of a formula and a space group (the rows' conditions) in the pipeline
    model = default_model(given={"formula", "spacegroup"})
    pipeline = method_fingerprint("explorer")
    assert pipeline not in ("", method_fingerprint(model))
    monkeypatch.setattr("explorer.search.PIPELINE_VERSION", -1)  # another pipeline: other records
    assert method_fingerprint("explorer") not in ("", pipeline)
    assert method_fingerprint("ion-exchange") == ""


def test_dng_samples_are_saved_per_chunk_and_a_stopped_run_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "DNG_CHUNK", 2)
    quick = {"steps": 10, "reconstruction": {"trials": 2, "hops": 1, "iterations": 20, "rounds": 1}}
    seen = []
    made, seconds = benchmark.dng_samples("descriptor-perov", 3, tmp_path, callback=lambda *a: seen.append(a), **quick)
    assert len(made) == 3 and seconds > 0 and seen == [(1, 2), (2, 2)]
    path = tmp_path / "descriptor-perov.samples.jsonl"
    first, second = path.read_text().splitlines()
    assert [len(json.loads(line)["structures"]) for line in (first, second)] == [2, 1]

    path.write_text(first + "\n" + second[:40])  # stopped while writing the second chunk
    again, _ = benchmark.dng_samples("descriptor-perov", 3, tmp_path, **quick)
    assert [s.composition for s in again] == [s.composition for s in made]  # chunk 0 read back, chunk 1 made again
    assert again[2].lattice.abc == pytest.approx(made[2].lattice.abc, abs=1e-4)
    assert [chunk["chunk"] for chunk in read_json_lines(path)] == [0, 1]  # chunk 1 kept apart from the cut line

    (tmp_path / "descriptor-perov.made-with").write_text("another model\n")  # re-published: set aside, made anew
    benchmark.dng_samples("descriptor-perov", 2, tmp_path, **quick)
    assert (tmp_path / "descriptor-perov.samples.jsonl.stale").is_file()
    assert len(path.read_text().splitlines()) == 1
