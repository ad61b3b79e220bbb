"""Each app part alone (as in Jupyter): StructureViewer, StructureGrid, CandidateTable, HullPlot, the session
store and the background jobs (no browser)."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure

pn = pytest.importorskip("panel")

from crystal_fixtures import nacl_candidates as candidates  # noqa: E402
from crystal_fixtures import render  # noqa: E402
from crystal_fixtures import rock_salt_nacl as nacl  # noqa: E402

from explorer.errors import ExplorerInputError  # noqa: E402
from explorer.ui import CandidateTable, HullPlot, StructureGrid, StructureViewer  # noqa: E402
from explorer.ui.assets import threedmol_dir  # noqa: E402
from explorer.ui.jobs import Job  # noqa: E402
from explorer.ui.session import SessionStore, check_session_id, list_sessions, new_session_id  # noqa: E402
from explorer.ui.viewer import Crystal3D  # noqa: E402
from explorer.ui.widgets import add_element, energy_scale_html, spacegroup_groups  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_structure_viewer_alone():
    viewer = StructureViewer(structure=nacl(), title="rock salt")
    root = render(viewer)
    assert root is not None
    items = viewer.view.items
    assert len(items) == 1 and "_cell_length_a" in items[0]["cif"]
    viewer.supercell = 2
    assert viewer.view.supercell == 2
    assert "NaCl" in viewer._info.object and "Fm-3m" in viewer._info.object
    viewer.structure = None
    assert viewer.view.items == []


def test_viewer_sends_3dmol_over_the_comm_when_no_static_route(monkeypatch):
    view = Crystal3D()
    assert view.lib_url == ""  # not served: no static route, ask Python
    sent = []
    monkeypatch.setattr(view, "_send_msg", sent.append)
    view._handle_msg({"type": "need_lib"})
    assert sent[0]["type"] == "lib"
    if threedmol_dir() is not None:
        assert "3Dmol" in sent[0]["source"][:200] and len(sent[0]["source"]) > 100_000
    else:
        assert sent[0]["source"] == "" and "setup.sh" in sent[0]["error"]


def test_structure_grid_click_selects():
    grid = StructureGrid(structures=[nacl()] * 20, labels=[f"#{i}" for i in range(20)])
    render(grid)
    assert len(grid.view.items) == 16  # at most 16 small views
    grid.view._handle_msg({"type": "click", "index": 5})
    assert grid.selected == 5 and grid.view.selected == 5


def test_candidate_table_alone():
    table = CandidateTable(candidates=candidates(3))
    render(table)
    frame = table.table.value
    assert list(frame["#"]) == [0, 1, 2]
    assert frame.loc[0, "SG requested"] == "225 Fm-3m" and frame.loc[0, "SG detected"] == "225 Fm-3m"
    assert bool(frame.loc[0, "valid"]) is True and pd.isna(frame.loc[0, "relaxed E"])
    table.table.selection = [0, 2]
    assert table.selection == [0, 2]
    table.candidates[1].extra.update(formation_energy=-0.41, e_above_hull=0.02, relax_status="ok")
    table.refresh()
    assert table.table.value.loc[1, "relaxed E"] == pytest.approx(-0.41)
    assert table.selection == [0, 2]


def test_the_table_configuration_does_not_change_with_its_rows():
    """Panel derives the columns' configuration from the frame's dtypes, and a new configuration rebuilds the
    table in the browser, dropping a data update that comes meanwhile (rows stayed "generated" after a
    relaxation). No rows, generated, one relaxed, a modified one without a target: one configuration."""
    table = CandidateTable()
    model = table.table.get_root()
    first = dict(model.configuration)
    rows = candidates(3)
    table.candidates = rows
    rows[1].extra.update(formation_energy=-0.41, e_above_hull=0.02, relax_status="ok", novel=True)
    rows[2].extra.update(kind="modified")
    table.refresh()
    assert table.table.value.loc[1, "relaxed E"] == pytest.approx(-0.41) and table.table.value.loc[1, "novel"]
    assert dict(model.configuration) == first


def test_the_source_column_says_where_each_candidate_came_from():
    from explorer.ui.table import candidate_source

    prototype, distorted, sample = candidates(3)
    origin = {"source_id": "mp-22865", "source_formula": "CsCl", "substitution": {}, "distance": 0.0,
              "ground_state": True, "same_as_reference": False}
    prototype.model, prototype.extra["prototype"] = "prototype", origin
    distorted.model, distorted.extra["prototype"] = "prototype", {**origin, "parent_spacegroup": 221}
    distorted.extra["relaxed"] = {"energy_per_atom": -3.1}
    sample.model, sample.extra["relaxed"] = "langevin", {"energy_per_atom": -3.0}
    assert candidate_source(prototype) == "prototype CsCl mp-22865"
    assert candidate_source(distorted) == "prototype CsCl mp-22865 distorted from Pm-3m, relaxed (M3GNet)"
    assert candidate_source(sample) == "network langevin, relaxed (M3GNet)"
    sample.extra["relaxed"] = {"kept": "unrelaxed: relaxed, it has space group 221"}
    assert candidate_source(sample) == "network langevin"


@pytest.mark.parametrize("view, mode", [("auto", "binary"), ("energy", "energy")])
def test_hull_plot_binary(view, mode):
    hull = HullPlot(chemsys="Cl-Na", reference="elements", view=view)
    hull.points = [{"index": 0, "label": "#0", "formula": "NaCl", "energy": -2.0, "relaxed": True},
                   {"index": 1, "label": "#1", "formula": "NaCl", "energy": 0.5, "relaxed": False}]
    render(hull)
    assert hull._mode == mode
    rows = {r["index"]: r for r in hull.rows}
    assert rows[0]["e_above_hull"] == pytest.approx(-2.0) and rows[1]["e_above_hull"] == pytest.approx(0.5)
    hull._tap.event(index=[1])  # a click on the second point
    assert hull.selected == 1


def test_hull_plot_ternary_and_mp_reference():
    hull = HullPlot(chemsys="B-Ta-W", reference="elements", view="composition")
    hull.points = [{"index": 3, "label": "#3", "formula": "TaWB6", "energy": -0.4, "relaxed": False}]
    render(hull)
    assert hull._mode == "ternary" and hull.rows[0]["index"] == 3
    hull.view = "auto"
    assert hull._mode == "energy"
    assert HullPlot(chemsys="", reference="elements").rows == []


def test_inputs_helpers():
    assert add_element("TaW", "B") == "TaWB" and add_element("TaWB", "B") == "TaWB2"
    groups = spacegroup_groups(True)
    assert "191 · P6/mmm · hexagonal" in groups["Hexagonal"]
    assert sum(len(g) for g in spacegroup_groups(False).values()) == 230
    assert "▲" in energy_scale_html(-4.5, 1.0, -0.45, -0.38) and "unknown" in energy_scale_html(-4.5, 1, 0, None)


def test_session_round_trip(tmp_path):
    store = SessionStore(tmp_path, "abc")
    items = candidates(2)
    items[0].extra.update(relaxed_structure=nacl(), formation_energy=-0.3, novel=True)
    store.save({"formula": "NaCl", "n": 2}, items, original=nacl())
    assert store.path == tmp_path / "abc.json"
    session = store.load()
    assert session["settings"] == {"formula": "NaCl", "n": 2}
    back = session["candidates"]
    assert [c.formula for c in back] == ["NaCl", "NaCl"]
    assert isinstance(back[0].extra["relaxed_structure"], Structure)
    assert back[0].extra["formation_energy"] == -0.3 and session["original"].composition.reduced_formula == "NaCl"
    assert SessionStore(tmp_path, "other").load() is None  # one session never reads another's file
    assert [s["id"] for s in list_sessions(tmp_path)] == ["abc"]
    (tmp_path / "abc.json").write_text("{not json")
    assert store.load() is None and (tmp_path / "abc.json.broken").is_file()


def test_session_names_and_the_old_single_file(tmp_path):
    for bad in ("", "../etc", "a b", "x" * 65, "-lead"):
        with pytest.raises(ExplorerInputError):
            SessionStore(tmp_path, bad)
    assert len({new_session_id() for _ in range(50)}) == 50 and check_session_id(new_session_id())
    SessionStore(tmp_path, "default").save({"n": 1}, [])
    (tmp_path / "default.json").rename(tmp_path / "session.json")  # as the single-session versions wrote it
    assert SessionStore(tmp_path, "default").load()["settings"] == {"n": 1}
    assert [s["id"] for s in list_sessions(tmp_path)] == ["default"]


def test_job_runs_once_at_a_time():
    job, gate, runs = Job("x"), threading.Event(), []
    assert job.start(lambda: (gate.wait(10), runs.append(1)))
    assert job.busy and not job.start(lambda: runs.append(2))
    gate.set()
    assert job.wait(10) and runs == [1]


def test_hull_says_when_unrelaxed_candidates_share_a_point():
    hull = HullPlot(chemsys="Cl-Na", reference="elements")
    hull.points = [{"index": i, "label": f"#{i}", "formula": "NaCl", "energy": -0.5, "relaxed": False}
                   for i in range(15)] + [{"index": 15, "label": "#15", "formula": "NaCl", "energy": -1.0,
                                           "relaxed": True}]
    assert "Not relaxed yet</b>: 15 at -0.50 eV/atom" in hull._note.object
    hull.points = hull.points[-1:]
    assert "Not relaxed yet" not in hull._note.object
