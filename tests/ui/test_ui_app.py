"""ExplorerApp driven from Python (no browser): each mode's panel calls the library; results, session and jobs."""

from __future__ import annotations

import threading
import time

import pytest
from pymatgen.core import Lattice, Structure

import explorer

pn = pytest.importorskip("panel")

from crystal_fixtures import nacl_candidates as candidates  # noqa: E402
from crystal_fixtures import render  # noqa: E402
from crystal_fixtures import rock_salt_nacl as nacl  # noqa: E402

from explorer.ui import ExplorerApp  # noqa: E402


@pytest.fixture
def app(tmp_path, tiny_data_dir):
    return ExplorerApp(session_dir=tmp_path, n=2, steps=2, novelty=False, prepare=False)


def test_app_generates_in_the_background_once(app, tmp_path):
    render(app)
    from bokeh.document import Document

    assert app.template().server_doc(Document()).roots
    assert app.generate()
    assert not app.generate()  # a second click while sampling starts nothing
    assert app.generation.generate_button.disabled
    app.wait("generate", timeout=300)
    assert len(app.candidates) == 2 and not app.generation.generate_button.disabled
    assert len(app.results.table.table.value) == 2 and len(app.results.grid.view.items) == 2
    assert app.results.viewer.structure is not None and app.workspace.focus == 0
    assert all(c.formula == "TaB6W" and c.spacegroup_detected == c.spacegroup_requested for c in app.candidates)
    assert all(c.steps == 2 for c in app.candidates if c.model not in ("prototype", "random-symmetric"))
    assert (tmp_path / "default.json").is_file()  # a notebook app: the session "default"
    app.results.grid.view._handle_msg({"type": "click", "index": 1})
    assert app.workspace.focus == 1 and app.results.hull.selected == 1
    app.modification.target_spacegroup = 221
    # restart: a new app restores settings and candidates from the autosave
    again = ExplorerApp(session_dir=tmp_path, novelty=False, prepare=False)
    assert again.generation.n == 2 and len(again.candidates) == 2
    assert again.modification.target_spacegroup == 221
    assert again.modification.target_select.value == 221  # the widget shows it too
    assert again.candidates[1].structure == app.candidates[1].structure


def test_app_rejects_bad_input_without_starting(app):
    app.generation.formula_input.value_input = "Xx2O"
    assert "unknown element" in app.generation.formula_status.object and app.generation.generate_button.disabled
    app.generation.formula = "Xx2O"
    assert not app.generate() and "unknown element" in app.generation.status.object
    app.generation.formula = "TaWB6"
    assert "8 atoms" in app.generation.formula_status.object and not app.generation.generate_button.disabled


def test_app_modify_validates_the_upload(app):
    assert not app.modify()
    assert "Upload a structure first" in app.modification.status.object
    app.modification.upload.filename = "bad.cif"
    app.modification.upload.value = b"data_x\n_cell_length_a 1\nloop_\n_atom_site_label\nA\n"
    assert "malformed CIF" in app.modification.upload_status.object and app.workspace.original is None
    app.modification.upload.filename = "POSCAR"
    app.modification.upload.value = nacl().to(fmt="poscar").encode()
    assert app.workspace.original is not None and app.results.original_viewer.structure is not None
    kept = app.workspace.original
    grid = [[i % 4 / 4, i // 4 % 4 / 4, i // 16 / 4] for i in range(61)]
    crowded = Structure(Lattice.cubic(12.0), ["Na"] * 61, grid)
    app.modification.upload.filename = "crowded.cif"
    app.modification.upload.value = crowded.to(fmt="cif").encode()
    assert "at most 60" in app.modification.upload_status.object
    assert app.workspace.original is kept  # the previous upload stays
    close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.02, 0, 0]])
    app.modification.upload.filename = "close.vasp"
    app.modification.upload.value = close.to(fmt="poscar").encode()
    assert "overlapping atoms (0.10 Å apart)" in app.modification.upload_status.object  # as `explorer relax` says
    app.modification.upload.filename = "empty.cif"
    app.modification.upload.value = b""
    assert "empty" in app.modification.upload_status.object and app.workspace.original is kept


def test_app_modify_reports_a_composition_without_trained_support(app):
    app.workspace.original = Structure(Lattice.cubic(4.0), ["No"], [[0, 0, 0]])
    app.modification.steps = 2
    assert app.modify(wait=True)
    assert "not trained on No" in app.modification.status.object and app.candidates == []


def test_app_modify_runs_the_shipped_model(app):
    from explorer.generators import default_model
    from explorer.ui.modify import modification_models

    assert modification_models()[0] == default_model("modification")  # the manifest's default first
    app.workspace.original = nacl()
    app.modification.target_spacegroup, app.modification.energy_change, app.modification.steps = 221, -0.1, 2
    app.relaxation.relax_steps = 3  # modified candidates are relaxed with the Relax card's settings
    assert app.modify(wait=True), app.modification.status.object
    assert len(app.candidates) == 2 and "1 from known prototypes" in app.modification.status.object
    assert all(c.formula == "NaCl" and c.extra["kind"] == "modified" for c in app.candidates)
    frame = app.results.table.table.value
    assert frame["source"][0].startswith("prototype CsCl tiny-3")  # CsCl type, Na substituted
    assert frame["source"][1] == f"network {app.candidates[1].model}"
    # relaxed by explorer.modify: shown as relaxed, with its formation energy, on the hull (not "as generated")
    assert all(frame["status"][i].split(" ")[0] in ("ok", "unconverged") for i in range(2))
    assert all(c.extra["formation_energy"] is not None for c in app.candidates)
    assert [p["relaxed"] for p in app.results.hull.points] == [True, True]
    assert "2 relaxed" in app.results.summary.object and "(relaxed)" in app.results.viewer.title
    app.modification.use_prototypes = False
    assert app.modify(wait=True) and all(c.model != "prototype" for c in app.candidates)


def test_app_modify_uses_the_library_when_present(app, monkeypatch):
    calls = []

    def fake_modify(structure, spacegroup, energy_delta, **kwargs):
        calls.append((spacegroup, energy_delta, kwargs["n"]))
        return candidates(kwargs["n"], energy_delta)

    monkeypatch.setattr(explorer, "modify", fake_modify, raising=False)
    app.workspace.original = nacl()
    app.modification.target_spacegroup, app.modification.energy_change = 221, -0.2
    assert app.modify(wait=True)
    assert calls == [(221, -0.2, 2)]
    assert len(app.candidates) == 2 and app.candidates[0].extra["kind"] == "modified"
    assert app.results.hull.points == []  # an energy change is not a formation energy: not on the hull until relaxed


def test_app_export_selected(app):
    import io
    import zipfile

    app.set_candidates(candidates(3))
    app.results.table.table.selection = [0, 2]
    app.exporter.export_format = "extxyz"
    name, content = app.export_selected()
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        assert bundle.namelist() == ["000_NaCl.extxyz", "002_NaCl.extxyz"]
    app.results.table.table.selection = [1]
    app.exporter.export_format = "poscar"
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
    app.results.hull.reference = "elements"
    assert app.relax(wait=True)
    first, second = app.candidates
    assert first.extra["formation_energy"] == -1.0 and second.extra["formation_energy"] == -2.0
    assert first.extra["e_above_hull"] == pytest.approx(-1.0)  # below the bare-elements hull
    assert [p["relaxed"] for p in app.results.hull.points] == [True, True]
    frame = app.results.table.table.value
    assert list(frame["status"]) == ["ok", "ok"] and frame.loc[1, "E above hull"] == pytest.approx(-2.0)
    assert "relaxed 2/2" in app.relaxation.status.object and not app.relaxation.relax_button.disabled


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
    assert not app.relaxation.stop_button.disabled
    time.sleep(0.3)
    app.relaxation.stop_button.clicks += 1
    app.wait("relax", timeout=30)
    assert closed.is_set() and "stopped after 0/1" in app.relaxation.status.object
    assert app.relaxation.stop_button.disabled and not app.relaxation.relax_button.disabled


def test_app_energy_box_shows_what_is_used(app):
    generation = app.generation
    for bad, says in (("abc", "must be a number"), ("NaN", "must be a number"), ("-100", "within -4.5 .. 1.0"),
                      ("1e9", "within"), ("", "must be a number")):
        generation.energy_input.value_input = bad
        assert says in generation.energy_status.object and generation.generate_button.disabled, bad
        assert not generation.generate() and says in generation.status.object  # nothing starts with it
        assert generation.energy == -0.45  # the value in use stays, and the box is flagged
    generation.energy_input.value_input = "-1.25"
    assert generation.energy == -1.25 and generation.energy_status.object == ""
    assert not generation.generate_button.disabled
    generation.energy = -0.3  # the slider (or a restored session) moves: the box follows
    assert generation.energy_input.value == "-0.30"


def test_app_formula_with_a_zero_count_is_refused(app):
    app.generation.formula_input.value_input = "NaCl0"
    assert "Cl count must be a positive integer" in app.generation.formula_status.object
    assert app.generation.generate_button.disabled


def test_old_status_lines_go_when_the_candidates_change(app, monkeypatch):
    from explorer.relax import RelaxDone, RelaxResult

    def quick_irelax(structures, **kwargs):
        for i, s in enumerate(structures):
            yield RelaxDone(i, RelaxResult(index=i, label=f"#{i}", status="ok", energy_per_atom=-3.0,
                                           formation_energy_per_atom=-1.0, steps=1, structure=s), i + 1,
                            len(structures))

    monkeypatch.setattr("explorer.relax.irelax", quick_irelax)
    monkeypatch.setattr("explorer.relax.load_potential", lambda spec: object())
    app.set_candidates(candidates(2))
    assert app.relax(wait=True) and "relaxed 2/2" in app.relaxation.status.object
    app.exporter._export_file()
    assert "KiB" in app.exporter.status.object
    assert app.generate(wait=True)
    assert "relaxed 2/2" not in app.relaxation.status.object and "KiB" not in app.exporter.status.object
    assert "candidates in" in app.generation.status.object  # the line about the new candidates stays


def test_app_with_the_langevin_model(app):
    generation = app.generation
    assert "langevin" in generation.model_select.options.values()
    generation.model = "langevin"
    assert generation.energy_slider.disabled and generation.energy_input.disabled
    assert "not used by this model" in generation.model_info.object
    assert generation.request()["energy"] is None and generation.steps == 2  # the app's own steps are kept
    generation.formula, generation.spacegroup = "Na", 230
    assert app.generate()
    app.wait("generate", timeout=120)
    assert "no Wyckoff positions of space group 230 hold Na1" in generation.status.object
    generation.formula, generation.spacegroup, generation.network_only = "TaWB6", 191, True
    assert app.generate()
    app.wait("generate", timeout=300)
    assert len(app.candidates) == 2 and all(c.model == "langevin" for c in app.candidates)
    assert all(c.spacegroup_detected == 191 for c in app.candidates)  # by construction
    generation.model = "cfm-normal"
    assert not generation.energy_slider.disabled and generation.request()["energy"] == generation.energy


def test_app_with_a_descriptor_model(app):
    generation = app.generation
    assert "descriptor-perov" in generation.model_select.options.values()
    generation.model = "descriptor-perov"
    assert generation.spacegroup_select.select.disabled and generation.energy_slider.disabled
    assert "space group and the target energy are not used" in generation.model_info.object
    generation.formula = "SrTiO3"
    assert generation.request()["spacegroup"] is None and generation.request()["energy"] is None
    assert app.generate()
    app.wait("generate", timeout=300)
    assert len(app.candidates) == 2 and all(c.model == "descriptor-perov" for c in app.candidates)
    assert all(c.formula == "SrTiO3" for c in app.candidates)
    generation.model = "cfm-normal"
    assert not generation.spacegroup_select.select.disabled and generation.request()["spacegroup"] == 191
