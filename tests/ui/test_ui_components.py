"""Each app part alone (as in Jupyter): StructureViewer, StructureGrid, CandidateTable, HullPlot, the session
store, the background jobs and ExplorerApp driven from Python (no browser)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import explorer
from explorer.generation import make_candidate

pn = pytest.importorskip("panel")

from explorer.ui import CandidateTable, ExplorerApp, HullPlot, StructureGrid, StructureViewer  # noqa: E402
from explorer.ui.assets import threedmol_dir  # noqa: E402
from explorer.ui.jobs import Job  # noqa: E402
from explorer.ui.session import SessionStore  # noqa: E402
from explorer.ui.viewer import Crystal3D  # noqa: E402
from explorer.ui.widgets import add_element, energy_scale_html, spacegroup_groups  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def candidates(n: int = 3, energy: float = -0.5):
    return [make_candidate(nacl(), 225, energy, index=i) for i in range(n)]


def render(viewable):
    """Build the Bokeh model as a page would (raises on any layout/parameter error)."""
    return pn.panel(viewable).get_root()


def test_library_never_imports_panel():
    code = ("import sys, explorer, explorer.cli, explorer.relax, explorer.relax.hull, explorer.structure_io, "
            "explorer.novelty, explorer.data, explorer.evaluation\n"
            "assert 'panel' not in sys.modules, 'panel imported by the library'\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for path in (REPO / "explorer").rglob("*.py"):
        if "ui" in path.relative_to(REPO / "explorer").parts:
            continue
        text = path.read_text()
        assert "import panel" not in text and "from panel" not in text, path


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
    assert bool(frame.loc[0, "valid"]) is True and frame.loc[0, "relaxed E"] is None
    table.table.selection = [0, 2]
    assert table.selection == [0, 2]
    table.candidates[1].extra.update(formation_energy=-0.41, e_above_hull=0.02, relax_status="ok")
    table.refresh()
    assert table.table.value.loc[1, "relaxed E"] == pytest.approx(-0.41)
    assert table.selection == [0, 2]


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
    store = SessionStore(tmp_path)
    items = candidates(2)
    items[0].extra.update(relaxed_structure=nacl(), formation_energy=-0.3, novel=True)
    store.save({"formula": "NaCl", "n": 2}, items, original=nacl())
    session = store.load()
    assert session["settings"] == {"formula": "NaCl", "n": 2}
    back = session["candidates"]
    assert [c.formula for c in back] == ["NaCl", "NaCl"]
    assert isinstance(back[0].extra["relaxed_structure"], Structure)
    assert back[0].extra["formation_energy"] == -0.3 and session["original"].composition.reduced_formula == "NaCl"
    (tmp_path / "session.json").write_text("{not json")
    assert store.load() is None and (tmp_path / "session.json.broken").is_file()


def test_job_runs_once_at_a_time():
    job, gate, runs = Job("x"), threading.Event(), []
    assert job.start(lambda: (gate.wait(10), runs.append(1)))
    assert job.busy and not job.start(lambda: runs.append(2))
    gate.set()
    assert job.wait(10) and runs == [1]


@pytest.fixture
def app(tmp_path, tiny_data_dir):
    return ExplorerApp(session_dir=tmp_path, n=2, steps=2, novelty=False)


def test_app_generates_in_the_background_once(app, tmp_path):
    render(app)
    from bokeh.document import Document

    assert app.template().server_doc(Document()).roots
    assert app.generate()
    assert not app.generate()  # a second click while sampling starts nothing
    assert app.generate_button.disabled
    app.wait("generate", timeout=300)
    assert len(app.candidates) == 2 and not app.generate_button.disabled
    assert len(app.table.table.value) == 2 and len(app.grid.view.items) == 2
    assert app.viewer.structure is not None and app.focus == 0
    assert app.candidates[0].steps == 2 and app.candidates[0].formula == "TaB6W"
    assert (tmp_path / "session.json").is_file()
    app.grid.view._handle_msg({"type": "click", "index": 1})
    assert app.focus == 1 and app.hull.selected == 1
    app.target_spacegroup = 221
    # restart: a new app restores settings and candidates from the autosave
    again = ExplorerApp(session_dir=tmp_path, novelty=False)
    assert again.n == 2 and len(again.candidates) == 2
    assert again.target_spacegroup == 221 and again.target_select.value == 221  # the widget shows it too
    assert again.candidates[1].structure == app.candidates[1].structure


def test_app_rejects_bad_input_without_starting(app):
    app.formula_input.value_input = "Xx2O"
    assert "unknown element" in app.formula_status.object and app.generate_button.disabled
    app.formula = "Xx2O"
    assert not app.generate() and "unknown element" in app.generate_status.object
    app.formula = "TaWB6"
    assert "8 atoms" in app.formula_status.object and not app.generate_button.disabled


def test_app_modify_validates_the_upload(app):
    assert not app.modify()
    assert "Upload a structure first" in app.modify_status.object
    app.upload.filename = "bad.cif"
    app.upload.value = b"data_x\n_cell_length_a 1\nloop_\n_atom_site_label\nA\n"
    assert "malformed CIF" in app.upload_status.object and app.original is None
    app.upload.filename = "POSCAR"
    app.upload.value = nacl().to(fmt="poscar").encode()
    assert app.original is not None and app.original_viewer.structure is not None
    kept = app.original
    crowded = Structure(Lattice.cubic(12.0), ["Na"] * 61, np.random.default_rng(0).random((61, 3)))
    app.upload.filename = "crowded.cif"
    app.upload.value = crowded.to(fmt="cif").encode()
    assert "at most 60" in app.upload_status.object and app.original is kept  # the previous upload stays


def test_app_modify_reports_a_composition_without_trained_support(app):
    app.original = Structure(Lattice.cubic(4.0), ["No"], [[0, 0, 0]])
    app.steps = 2
    assert app.modify(wait=True)
    assert "not trained on No" in app.modify_status.object and app.candidates == []


def test_app_modify_runs_the_shipped_model(app):
    from explorer.pretrained import read_manifest
    from explorer.ui.app import modification_models

    assert modification_models()[0] == read_manifest()["default_modification"]  # the manifest's default first
    app.original = nacl()
    app.target_spacegroup, app.energy_change, app.steps = 221, -0.1, 2
    assert app.modify(wait=True), app.modify_status.object
    assert len(app.candidates) == 2 and "1 from known prototypes" in app.modify_status.object
    assert all(c.formula == "NaCl" and c.extra["kind"] == "modified" for c in app.candidates)
    assert app.table.table.value.loc[0, "status"].startswith("prototype CsCl tiny-3")  # CsCl type, Na substituted
    assert app.table.table.value.loc[1, "status"].startswith("modified")
    app.use_prototypes = False
    assert app.modify(wait=True) and all(c.model != "prototype" for c in app.candidates)


def test_app_modify_uses_the_library_when_present(app, monkeypatch):
    calls = []

    def fake_modify(structure, spacegroup, energy_delta, **kwargs):
        calls.append((spacegroup, energy_delta, kwargs["n"]))
        return candidates(kwargs["n"], energy_delta)

    monkeypatch.setattr(explorer, "modify", fake_modify, raising=False)
    app.original = nacl()
    app.target_spacegroup, app.energy_change = 221, -0.2
    assert app.modify(wait=True)
    assert calls == [(221, -0.2, 2)]
    assert len(app.candidates) == 2 and app.candidates[0].extra["kind"] == "modified"
    assert app.hull.points == []  # an energy change is not a formation energy: not on the hull until relaxed


def test_app_export_selected(app):
    import io
    import zipfile

    app.set_candidates(candidates(3))
    app.table.table.selection = [0, 2]
    app.export_format = "extxyz"
    name, content = app.export_selected()
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        assert bundle.namelist() == ["000_NaCl.extxyz", "002_NaCl.extxyz"]
    app.table.table.selection = [1]
    app.export_format = "poscar"
    name, content = app.export_selected()
    assert name == "001_NaCl.vasp" and Structure.from_str(content.decode(), fmt="poscar").num_sites == 8


def test_app_relax_results_fill_table_and_hull(app, monkeypatch):
    """Relaxation events (here from a stand-in for irelax) fill the table and move the hull points."""
    from explorer.relax import RelaxDone, RelaxResult, RelaxStep

    def fake_irelax(structures, **kwargs):
        for i, s in enumerate(structures):
            yield RelaxStep(i, f"#{i}", 1, -3.0, 0.2)
            time.sleep(0.01)
            result = RelaxResult(index=i, label=f"#{i}", status="ok", energy_per_atom=-3.1,
                                 formation_energy_per_atom=-1.0 - i, steps=1, structure=s)
            yield RelaxDone(i, result, i + 1, len(structures))

    monkeypatch.setattr("explorer.relax.irelax", fake_irelax)
    monkeypatch.setattr("explorer.relax.load_potential", lambda spec: object())
    app.set_candidates(candidates(2))
    app.hull.reference = "elements"
    assert app.relax(wait=True)
    first, second = app.candidates
    assert first.extra["formation_energy"] == -1.0 and second.extra["formation_energy"] == -2.0
    assert first.extra["e_above_hull"] == pytest.approx(-1.0)  # below the bare-elements hull
    assert [p["relaxed"] for p in app.hull.points] == [True, True]
    frame = app.table.table.value
    assert list(frame["status"]) == ["ok", "ok"] and frame.loc[1, "E above hull"] == pytest.approx(-2.0)
    assert "relaxed 2/2" in app.relax_status.object and not app.relax_button.disabled


def test_app_relax_can_be_stopped_and_is_never_doubled(app, monkeypatch):
    from explorer.relax import RelaxStep

    closed = threading.Event()

    def endless_irelax(structures, **kwargs):
        try:
            step = 0
            while True:
                step += 1
                time.sleep(0.01)
                yield RelaxStep(0, "#0", step, -3.0, 0.5)
        finally:
            closed.set()  # the generator was closed: the work stops

    monkeypatch.setattr("explorer.relax.irelax", endless_irelax)
    monkeypatch.setattr("explorer.relax.load_potential", lambda spec: object())
    app.set_candidates(candidates(1))
    assert app.relax()
    assert not app.relax()  # a second click while it runs starts nothing
    assert not app.stop_button.disabled
    time.sleep(0.3)
    app.stop_button.clicks += 1
    app.wait("relax", timeout=30)
    assert closed.is_set() and "stopped after 0/1" in app.relax_status.object
    assert app.stop_button.disabled and not app.relax_button.disabled
