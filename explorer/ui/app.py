"""The explorer app: generate (or modify) candidates, look at them in 3D, relax them, place them on the hull,
export them. Every part is a ``pn.viewable.Viewer``; :class:`ExplorerApp` puts them together (``app.template()``
for ``panel serve``; the app object itself displays in Jupyter).

Heavy work (sampling, relaxation, novelty checks, hull energies) runs in background threads (:mod:`.jobs`);
the page stays responsive and a second click while a job runs does nothing.
"""

from __future__ import annotations

import math
import threading
import time
import warnings

import panel as pn
import param

import explorer

from ..errors import ExplorerInputError
from ..generation import Candidate, check_energy, load_pipeline, make_candidate, parse_formula, sample_structures
from ..pretrained import available_models, default_model, model_entry
from ..prototypes import load_prototype_library, prototype_library_available, prototype_library_ready
from ..spacegroups import check_spacegroup, symbol
from ..structure_io import EXPORT_FORMATS, export_structures, read_structure_bytes
from .hull import HullPlot, chemical_system, hull_energy
from .jobs import Job, UiDispatcher
from .session import SessionStore
from .table import CandidateTable
from .viewer import MAX_GRID, StructureGrid, StructureViewer, describe
from .widgets import PeriodicTable, add_element, button_style, energy_scale_html, spacegroup_groups

# Formation energies of the training structures (mp + wbm): 0.1 % / 99.9 % quantiles -4.25 / +0.92 eV/atom.
ENERGY_RANGE = (-4.5, 1.0)
ACCENT = "#0072B5"
SETTINGS = ("mode", "formula", "spacegroup", "energy", "model", "steps", "n", "seed", "snap", "target_spacegroup",
            "energy_change", "modify_model", "use_prototypes", "export_format", "export_relaxed", "relax_fmax",
            "relax_steps", "formation")

_WARM_UP_LOCK = threading.Lock()
_WARM_UP_STARTED = False
_LIBRARY_THREAD: threading.Thread | None = None


def _quietly(function):
    """``function`` with its errors swallowed (for background preparation whose failure the user meets later,
    with a clear message, when the result is needed)."""
    def run():
        try:
            function()
        except Exception:
            pass
    return run


def warm_up_in_background(model: str | None = None) -> bool:
    """Once per process, load ``model`` (default: the manifest's default) and sample one tiny structure in a
    daemon thread, so that the user's first click does not pay for loading weights and torch's first
    forward pass. True when this call started the warm-up. (Loading the novelty index here as well was
    measured to slow the first page load from 2 s to 6 s without making the first click faster.)"""
    global _WARM_UP_STARTED
    with _WARM_UP_LOCK:
        if _WARM_UP_STARTED:
            return False
        _WARM_UP_STARTED = True

    def run():
        try:
            pipeline, _ = load_pipeline(model or default_model(), "auto")
            structures = sample_structures(pipeline, [parse_formula("NaCl")], [225], [-2.0], steps=2, seed=0)
            make_candidate(structures[0], 225, -2.0)
        except Exception:  # warm-up is an optimisation only; real errors show on the first real request
            pass

    threading.Thread(target=run, name="explorer-warm-up", daemon=True).start()
    return True


def device_label() -> str:
    """'CPU (2 threads)' or the GPU's name."""
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def _message(kind: str, text: str) -> str:
    colors = {"ok": "#1a7f37", "error": "#b00020", "info": "#444", "warn": "#9a6700"}
    icon = {"ok": "✓", "error": "✗", "info": "", "warn": "!"}[kind]
    from html import escape

    return f'<div style="color:{colors[kind]};font-size:12.5px">{icon} {escape(text)}</div>'


def sampler_options(model: str) -> dict[str, str]:
    """{sampler: model name} of the shipped models that share ``model``'s checkpoint (e.g. ddpm / ddim)."""

    file = model_entry(model).file
    return {(m.get("sampler") or m["method"]): m["name"] for m in generation_models() if m["file"] == file}


def modification_models() -> list[str]:
    """Names of the shipped modification models, the manifest's default first."""
    from ..pretrained import read_manifest

    manifest = read_manifest()
    names = [m["name"] for m in manifest["models"] if m.get("task") == "modification"]
    return sorted(names, key=lambda name: name != manifest.get("default_modification"))


def generation_models() -> list[dict]:
    """Manifest entries of the generation models (not the modification ones)."""
    from ..objectives import METHODS
    from ..pretrained import read_manifest

    return [m for m in read_manifest()["models"] if m["method"] in METHODS]


def network_options() -> dict[str, str]:
    """{label: first model name} per shipped checkpoint (network), in manifest order."""
    options: dict[str, str] = {}
    seen = set()
    for m in generation_models():
        if m["file"] in seen:
            continue
        seen.add(m["file"])
        label = m["file"].rsplit(".", 1)[0].replace("_", "-")
        options[label] = m["name"]
    return options


class _StepProgress:
    """Wraps a GenerationPipeline so that every denoising step reports progress."""

    def __init__(self, pipeline, report):
        self.pipeline, self.report = pipeline, report

    def __call__(self, cond, steps=100, generator=None, callback=None):
        return self.pipeline(cond, steps=steps, generator=generator, callback=self.report)


class ExplorerApp(pn.viewable.Viewer):
    """The whole app. Parameters are the sidebar's settings; ``candidates`` the current results.

    In Jupyter::

        from explorer.ui import ExplorerApp
        app = ExplorerApp(autosave=False)
        app                                  # the app in the notebook
        app.generate(wait=True)              # or click "Generate"
    """

    mode = param.Selector(default="Generate", objects=["Generate", "Modify"])
    formula = param.String(default="TaWB6")
    spacegroup = param.Integer(default=191, bounds=(1, 230))
    energy = param.Number(default=-0.45, bounds=ENERGY_RANGE, step=0.01)
    model = param.Selector(default=None, objects=[])
    steps = param.Integer(default=100, bounds=(1, 1000))
    n = param.Integer(default=16, bounds=(1, 64))
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1))
    snap = param.Boolean(default=False, doc="refine each sample onto the requested space group")
    target_spacegroup = param.Integer(default=225, bounds=(1, 230))
    energy_change = param.Number(default=-0.1, bounds=(-2.0, 2.0), step=0.01)
    modify_model = param.String(default="", doc="modification model ('' = the library's default)")
    use_prototypes = param.Boolean(default=True, doc="half of the modified candidates may be known prototypes of "
                                                     "the target space group with the uploaded elements substituted in")
    export_format = param.Selector(default="cif", objects=list(EXPORT_FORMATS))
    export_relaxed = param.Boolean(default=True, doc="export relaxed structures where there are")
    relax_fmax = param.Number(default=0.1, bounds=(0.005, 2.0), step=0.005)
    relax_steps = param.Integer(default=200, bounds=(1, 5000))
    formation = param.Selector(default="references", objects=["references", "eform"])
    potential = param.String(default="m3gnet")

    candidates = param.List(default=[], item_type=Candidate)
    original = param.Parameter(default=None, doc="uploaded structure (Modify mode)")
    focus = param.Integer(default=-1, doc="position of the candidate in the large view")
    autosave = param.Boolean(default=True)
    novelty = param.Boolean(default=True, doc="check candidates against the training structures")

    def __init__(self, session_dir=None, restore: bool = True, **params):
        params.setdefault("model", default_model())
        super().__init__(**params)
        self.param.model.objects = [m["name"] for m in generation_models()] or available_models()
        self._dispatch = UiDispatcher()
        self._store = SessionStore(session_dir)
        self._jobs = {name: Job(name) for name in ("generate", "relax", "modify", "novelty")}
        self._hull_request: str | None = None
        self._hull_energy: float | None = None
        self._restoring = False
        self._build_widgets()
        self._built = True
        if restore and self.autosave:
            self._restore()
        self._page_loaded = False  # the hull of the chosen system is drawn once the page is there
        self._hull_done_for: str | None = None
        self._formula_changed()
        self._show_candidates()
        warm_up_in_background(self.model)
        pn.state.onload(self._page_loaded_now)

    # ================================================================== widgets
    def _build_widgets(self) -> None:
        w = pn.widgets
        self.mode_toggle = w.RadioButtonGroup.from_param(self.param.mode, **button_style("primary", outline=True),
                                                         sizing_mode="stretch_width", label="")
        # --- generate
        self.formula_input = w.TextInput(label="Formula (cell contents, e.g. TaWB6 or Ta2W2B12)", value=self.formula,
                                         sizing_mode="stretch_width")
        self.formula_input.param.watch(self._formula_typed, "value_input")
        self.formula_input.param.watch(lambda e: setattr(self, "formula", e.new), "value")
        self.formula_status = pn.pane.HTML("", margin=(0, 10))
        self.periodic = PeriodicTable(sizing_mode="stretch_width")
        self.periodic.on_pick(self._pick_element)
        self.all_groups = w.Checkbox(label="all 230 space groups", value=False)
        self.spacegroup_select = w.Select(label="Space group (number · Hermann–Mauguin · crystal system)",
                                          groups=spacegroup_groups(True), sizing_mode="stretch_width")
        self.all_groups.param.watch(self._spacegroup_options, "value")
        self._spacegroup_options()
        self.spacegroup_select.param.watch(lambda e: setattr(self, "spacegroup", int(e.new)), "value")
        self.energy_slider = w.EditableFloatSlider.from_param(
            self.param.energy, label="Target formation energy (eV/atom)", sizing_mode="stretch_width", format="0.00")
        self.energy_scale = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 5))
        self.model_select = w.Select(label="Model (network)", options=network_options(), sizing_mode="stretch_width")
        self.sampler_select = w.Select(label="Sampler", options={}, width=120)
        self.model_select.param.watch(lambda e: self._choose_network(e.new), "value")
        self.sampler_select.param.watch(lambda e: e.new and setattr(self, "model", e.new), "value")
        self.model_info = pn.pane.HTML("", margin=(0, 10))
        self._model_changed()
        self.steps_input = w.IntInput.from_param(self.param.steps, label="Steps", width=95)
        self.n_input = w.IntInput.from_param(self.param.n, label="Number", width=95)
        self.seed_input = w.IntInput.from_param(self.param.seed, label="Seed", width=95)
        self.snap_box = w.Checkbox.from_param(self.param.snap, label="snap onto the space group")
        self.device_info = pn.pane.HTML(_message("info", f"Device: {device_label()}"), margin=(0, 10))
        self.generate_button = w.Button(label="Generate candidates", sizing_mode="stretch_width",
                                        **button_style("primary"))
        self.generate_button.on_click(lambda event: self.generate())
        self.generate_progress = w.Progress(value=0, max=100, sizing_mode="stretch_width", visible=False,
                                            bar_color="primary", height=12)
        self.generate_status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        # --- modify
        self.upload = w.FileInput(accept=".cif,.vasp,.poscar,.xyz,.extxyz,POSCAR,CONTCAR", multiple=False,
                                  sizing_mode="stretch_width")
        self.upload.param.watch(self._uploaded, "value")
        self.upload_status = pn.pane.HTML(_message("info", "Upload a CIF, POSCAR or extended-XYZ file."),
                                          sizing_mode="stretch_width", margin=(0, 10))
        self.target_select = w.Select(label="Target space group", groups=spacegroup_groups(False),
                                      value=self.target_spacegroup, sizing_mode="stretch_width")
        self.target_select.param.watch(lambda e: setattr(self, "target_spacegroup", int(e.new)), "value")
        self.delta_slider = w.EditableFloatSlider.from_param(self.param.energy_change,
                                                             label="Formation-energy change (eV/atom)",
                                                             sizing_mode="stretch_width", format="0.00")
        models = modification_models()
        self.modify_model_select = w.Select(label="Modification model", options=models or ["(none shipped)"],
                                            value=self.modify_model if self.modify_model in models else
                                            (models[0] if models else "(none shipped)"),
                                            disabled=not models, sizing_mode="stretch_width")
        self.modify_model_select.param.watch(
            lambda e: setattr(self, "modify_model", e.new if e.new in modification_models() else ""), "value")
        if models and self.modify_model not in models:
            self.modify_model = models[0]
        available = prototype_library_available()
        self.prototypes_check = w.Checkbox.from_param(
            self.param.use_prototypes, disabled=not available,
            label="Include known prototypes of the space group (elements substituted)" if available else
            "Known prototypes: needs mp_structures + wbm_structures in the data directory")
        self.modify_button = w.Button(label="Modify structure", **button_style("primary"), sizing_mode="stretch_width")
        self.modify_button.on_click(lambda event: self.modify())
        self.modify_status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        # --- relax
        self.fmax_input = w.FloatInput.from_param(self.param.relax_fmax, label="fmax (eV/Å)", width=95)
        self.relax_steps_input = w.IntInput.from_param(self.param.relax_steps, label="max steps", width=95)
        self.formation_select = w.Select.from_param(self.param.formation, label="E_f from", width=110)
        self.relax_button = w.Button(label="Relax", **button_style("success"), sizing_mode="stretch_width")
        self.relax_button.on_click(lambda event: self.relax())
        self.stop_button = w.Button(label="Stop", **button_style("warning"), width=70, disabled=True)
        self.stop_button.on_click(lambda event: self._jobs["relax"].cancel())
        self.relax_progress = w.Progress(value=0, max=100, sizing_mode="stretch_width", visible=False,
                                         bar_color="success", height=12)
        self.relax_status = pn.pane.HTML(_message("info", "Relaxes the checked candidates (or all of them) with "
                                                          "M3GNet."), sizing_mode="stretch_width", margin=(0, 10))
        # --- export
        self.format_select = w.Select.from_param(self.param.export_format, label="Format", width=110)
        self.relaxed_box = w.Checkbox.from_param(self.param.export_relaxed, label="relaxed where available")
        self.download = w.FileDownload(callback=self._export_file, filename="candidates.zip", label="Download",
                                       **button_style("default"), sizing_mode="stretch_width")
        self.export_status = pn.pane.HTML(_message("info", "Exports the checked candidates (or all)."),
                                          sizing_mode="stretch_width", margin=(0, 10))
        # --- session
        self.session_status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.new_session = w.Button(label="Clear session", **button_style("light"), sizing_mode="stretch_width")
        self.new_session.on_click(lambda event: self.clear())
        # --- main area
        self.table = CandidateTable(height=340)
        self.table.param.watch(lambda e: self._set_focus(e.new), "focus")
        self.viewer = StructureViewer(title="Selected candidate", height=470, view_id="large")
        self.original_viewer = StructureViewer(title="Original (uploaded)", height=470, view_id="original",
                                               visible=self.mode == "Modify")
        self.grid = StructureGrid(height=520, view_id="grid")
        self.grid.param.watch(lambda e: self._set_focus(e.new), "selected")
        self.hull = HullPlot(height=440)
        self.hull.param.watch(lambda e: self._set_focus(e.new), "selected")
        self.hull.param.watch(self._hull_rows, "rows")
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))

    # ================================================================== layout
    def _card(self, title, *objects, collapsed=False, **kwargs):
        return pn.Card(*objects, title=title, collapsed=collapsed, sizing_mode="stretch_width", margin=(5, 0),
                       header_background="#f3f5f7", **kwargs)

    @property
    def sidebar(self):
        if getattr(self, "_sidebar", None) is None:
            self._sidebar = self._make_sidebar()
        return self._sidebar

    @property
    def main(self):
        if getattr(self, "_main", None) is None:
            self._main = self._make_main()
        return self._main

    def _make_sidebar(self):
        generate = self._card(
            "Generate",
            self.formula_input, self.formula_status,
            self._card("Periodic table (click to add)", self.periodic, collapsed=True),
            self.spacegroup_select, self.all_groups,
            self.energy_slider, self.energy_scale,
            pn.Row(self.model_select, self.sampler_select, sizing_mode="stretch_width"), self.model_info,
            pn.Row(self.steps_input, self.n_input, self.seed_input),
            self.snap_box, self.device_info,
            self.generate_button, self.generate_progress, self.generate_status,
            visible=self.param.mode.rx() == "Generate",
        )
        modify = self._card(
            "Modify a structure",
            self.upload, self.upload_status, self.target_select, self.delta_slider, self.modify_model_select,
            self.prototypes_check, pn.Row(self.steps_input, self.n_input, self.seed_input), self.device_info,
            self.modify_button, self.modify_status,
            visible=self.param.mode.rx() == "Modify",
        )
        relax = self._card("Relax (M3GNet) and hull", pn.Row(self.fmax_input, self.relax_steps_input,
                                                              self.formation_select),
                           pn.Row(self.relax_button, self.stop_button, sizing_mode="stretch_width"),
                           self.relax_progress, self.relax_status)
        export = self._card("Export", pn.Row(self.format_select, self.relaxed_box), self.download,
                            self.export_status)
        session = self._card("Session", self.session_status, self.new_session, collapsed=True)
        return pn.Column(self.mode_toggle, generate, modify, relax, export, session, sizing_mode="stretch_width")

    def _make_main(self):
        flex = {"flex": "1 1 460px", "min-width": "320px"}
        table = pn.Column(pn.pane.HTML("<b>Candidates</b>", margin=(0, 5)), self.summary, self.table,
                          styles={**flex, "flex": "1.4 1 520px"}, sizing_mode="stretch_width")
        views = pn.FlexBox(self.original_viewer, self.viewer, flex_wrap="wrap", gap="8px", styles=flex,
                           sizing_mode="stretch_width")
        grid = pn.Column(pn.pane.HTML(f"<b>Candidates in 3D</b> (first {MAX_GRID}; click one to select it)",
                                      margin=(0, 5)), self.grid, styles=flex, sizing_mode="stretch_width")
        hull = pn.Column(pn.pane.HTML("<b>Convex hull</b>", margin=(0, 5)), self.hull, styles=flex,
                         sizing_mode="stretch_width")
        return pn.Column(
            pn.FlexBox(table, views, flex_wrap="wrap", gap="12px", sizing_mode="stretch_width"),
            pn.FlexBox(grid, hull, flex_wrap="wrap", gap="12px", sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return pn.Row(pn.Column(self.sidebar, width=360), self.main, sizing_mode="stretch_width")

    def template(self, title: str = "Crystal explorer"):
        """The app in Panel's BootstrapTemplate (for ``panel serve``): every resource it needs is served by Panel
        itself (no CDN, no web font)."""
        return pn.template.BootstrapTemplate(title=title, sidebar=[self.sidebar], main=[self.main],
                                             header_background=ACCENT, sidebar_width=380)

    # ================================================================== generate-mode inputs
    def _spacegroup_options(self, *events) -> None:
        groups = spacegroup_groups(not self.all_groups.value)
        numbers = {v for options in groups.values() for v in options.values()}
        if self.spacegroup not in numbers:
            groups = {name: dict(options) for name, options in spacegroup_groups(False).items()}
        self.spacegroup_select.groups = groups
        self.spacegroup_select.value = self.spacegroup

    @param.depends("spacegroup", watch=True)
    def _spacegroup_changed(self) -> None:
        numbers = {v for options in self.spacegroup_select.groups.values() for v in options.values()}
        if self.spacegroup not in numbers:
            self._spacegroup_options()
        elif self.spacegroup_select.value != self.spacegroup:
            self.spacegroup_select.value = self.spacegroup

    def _formula_typed(self, event) -> None:
        self._validate_formula(event.new or "")

    def _validate_formula(self, text: str) -> bool:
        try:
            species = parse_formula(text)
        except ExplorerInputError as exc:
            self.formula_status.object = _message("error", str(exc))
            self.generate_button.disabled = True
            return False
        from pymatgen.core import Composition

        composition = Composition(text)
        parts = " ".join(f"{e.symbol}{int(a)}" for e, a in composition.items())
        self.formula_status.object = _message("ok", f"{parts} · {len(species)} atoms in the cell")
        self.generate_button.disabled = self._jobs["generate"].busy
        self.periodic.highlight = [e.symbol for e in composition.elements]
        return True

    def _pick_element(self, element: str) -> None:
        self.formula_input.value = add_element(self.formula_input.value_input or self.formula_input.value, element)

    @param.depends("formula", watch=True)
    def _formula_changed(self) -> None:
        if self.formula_input.value != self.formula:
            self.formula_input.value = self.formula
        if self._validate_formula(self.formula):
            self._request_hull_energy(self.formula)
        else:
            self._hull_energy = None
            self._energy_scale()

    def _request_hull_energy(self, formula: str) -> None:
        """Hull energy of the composition for the slider marker, computed in a background thread; only the
        answer to the latest request is shown."""
        self._hull_request = formula

        def work():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = hull_energy(formula)
            except Exception:
                value = None

            def apply():
                if self._hull_request == formula:
                    self._hull_energy = value
                    self._hull_done_for = formula
                    self._energy_scale()
                    if self._page_loaded:
                        self._show_system_hull(formula)

            self._dispatch(apply)

        self._hull_energy = None
        threading.Thread(target=work, name="explorer-hull-energy", daemon=True).start()
        self._energy_scale()

    def _page_loaded_now(self) -> None:
        """Building the hull figure while the page itself is still being built slowed it by 1-5 s (measured):
        it waits for this (Panel's onload; at once outside a server)."""
        self._page_loaded = True
        if self._hull_done_for is not None and self._hull_done_for == self._hull_request:
            self._show_system_hull(self._hull_done_for)

    def _show_system_hull(self, formula: str) -> None:
        """Before any candidates exist, the hull plot shows the chosen chemical system's known phases (and the
        browser builds the plot now, not on the first click)."""
        if self.candidates:
            return
        try:
            chemsys = chemical_system(formula)
        except ExplorerInputError:
            return
        if chemsys != self.hull.chemsys:
            self.hull.param.update(points=[], chemsys=chemsys)

    @param.depends("energy", watch=True)
    def _energy_scale(self) -> None:
        self.energy_scale.object = energy_scale_html(*ENERGY_RANGE, self.energy, self._hull_energy)

    def _choose_network(self, name: str) -> None:
        """A network was chosen: keep the sampler when that network offers it, else take its first one."""
        samplers = sampler_options(name)
        current = model_entry(self.model).sampler if self.model else None
        same = [m for m in samplers.values() if model_entry(m).sampler == current]
        self.model = same[0] if same else next(iter(samplers.values()))

    @param.depends("model", watch=True)
    def _model_changed(self) -> None:
        try:
            entry = model_entry(self.model)
        except ExplorerInputError as exc:
            self.model_info.object = _message("error", str(exc))
            return
        samplers = sampler_options(self.model)
        self.sampler_select.options = samplers
        self.sampler_select.value = self.model
        networks = network_options()
        network = next((n for n, first in networks.items() if self.model in sampler_options(first).values()), None)
        if network is not None and self.model_select.value != networks[network]:
            self.model_select.value = networks[network]
        arch = entry.info.get("model", {}).get("arch", "")
        trained = entry.info.get("epochs")
        self.model_info.object = _message("info", f"{entry.method} · {arch}"
                                                  + (f" · {trained} epochs" if trained is not None else ""))

    # ================================================================== generation
    def generate(self, wait: bool = False) -> bool:
        """Start sampling ``n`` candidates in the background; False when a generation is already running or
        the input is invalid. ``wait=True`` blocks until the candidates are there (notebooks, tests)."""
        if self._jobs["generate"].busy:
            return False
        try:
            species = parse_formula(self.formula)
            spacegroup = check_spacegroup(self.spacegroup)
            energy = check_energy(self.energy)
        except ExplorerInputError as exc:
            self.generate_status.object = _message("error", str(exc))
            return False
        settings = {"model": self.model, "steps": int(self.steps), "n": int(self.n), "seed": int(self.seed),
                    "snap": bool(self.snap)}
        self.generate_button.disabled = True
        self.generate_button.label = "Generating…"
        self.generate_progress.param.update(value=0, max=settings["steps"], visible=True)
        self.generate_status.object = _message("info", "loading the model…")
        started = time.perf_counter()
        last = [0.0]

        def report(step, total):
            now = time.perf_counter()
            if now - last[0] < 0.2 and step < total:
                return
            last[0] = now

            def apply():
                self.generate_progress.param.update(value=step, max=total)
                self.generate_status.object = _message("info", f"denoising step {step}/{total} · "
                                                               f"{now - started:.1f} s")

            self._dispatch(apply)

        def work():
            try:
                pipeline, entry = load_pipeline(settings["model"], "auto")
                n = settings["n"]
                structures = sample_structures(_StepProgress(pipeline, report), [species] * n, [spacegroup] * n,
                                               [energy] * n, steps=settings["steps"], seed=settings["seed"])
                candidates = [make_candidate(s, spacegroup, energy, snap=settings["snap"], model=entry.name,
                                             steps=settings["steps"], seed=settings["seed"], index=i)
                              for i, s in enumerate(structures)]
            except Exception as exc:
                message = str(exc) if isinstance(exc, ExplorerInputError) else f"{type(exc).__name__}: {exc}"
                self._dispatch(lambda: self._generation_failed(message))
                return
            seconds = time.perf_counter() - started
            self._dispatch(lambda: self._generated(candidates, seconds))

        started_ok = self._jobs["generate"].start(work)
        if wait:
            self.wait("generate")
        return started_ok

    def _generation_failed(self, message: str) -> None:
        self.generate_status.object = _message("error", message)
        self.generate_progress.visible = False
        self.generate_button.label = "Generate candidates"
        self.generate_button.disabled = False

    def _generated(self, candidates: list[Candidate], seconds: float) -> None:
        valid = sum(c.valid for c in candidates)
        matched = sum(c.spacegroup_detected == c.spacegroup_requested for c in candidates)
        self.generate_status.object = _message("ok", f"{len(candidates)} candidates in {seconds:.1f} s · "
                                                     f"{valid} valid · {matched} in the requested space group")
        self.generate_progress.visible = False
        self.generate_button.label = "Generate candidates"
        self.generate_button.disabled = False
        self.set_candidates(candidates)

    def set_candidates(self, candidates: list[Candidate]) -> None:
        """Show new candidates (table, grid, hull), check their novelty in the background, autosave."""
        self.candidates = list(candidates)
        self.table.selection = []
        with param.parameterized.discard_events(self):  # _show_candidates shows the focus after the grid
            self.focus = 0 if candidates else -1
        self._show_candidates()
        self._check_novelty()
        self.save()

    # ================================================================== display
    def _show_candidates(self) -> None:
        candidates = self.candidates
        # the 3D grid first: the page applies updates in this order, and filling the table takes it ~0.5 s
        self.grid.param.update(structures=[c.structure for c in candidates[:MAX_GRID]],
                               labels=[self._label(i, c) for i, c in enumerate(candidates[:MAX_GRID])],
                               bad=[not c.valid for c in candidates[:MAX_GRID]])
        self.table.candidates = candidates
        self._update_hull()
        self._update_summary()
        self._focus_changed()

    def _label(self, i: int, c: Candidate) -> str:
        mark = "✓" if c.valid else "✗"
        try:
            group = symbol(c.spacegroup_detected)
        except Exception:
            group = str(c.spacegroup_detected)
        label = f"#{i} {group} {mark}"
        if c.extra.get("e_above_hull") is not None:
            label += f" Eₕ{c.extra['e_above_hull']:+.2f}"
        return label

    def _update_summary(self) -> None:
        c = self.candidates
        if not c:
            self.summary.object = _message("info", "No candidates yet: choose a composition and press Generate.")
            return
        relaxed = [x for x in c if x.extra.get("formation_energy") is not None]
        novel = [x for x in c if x.extra.get("novel") is True]
        text = f"{len(c)} candidates · {sum(x.valid for x in c)} valid · {len(relaxed)} relaxed"
        if any(x.extra.get("novel") is not None for x in c):
            text += f" · {len(novel)} novel"
        best = [x for x in relaxed if x.extra.get("e_above_hull") is not None]
        if best:
            low = min(best, key=lambda x: x.extra["e_above_hull"])
            text += f" · lowest E above hull {low.extra['e_above_hull']:+.3f} eV/atom (#{c.index(low)})"
        self.summary.object = _message("info", text)

    def _hull_points(self) -> list[dict]:
        points = []
        for i, c in enumerate(self.candidates):
            relaxed = c.extra.get("formation_energy")
            if c.extra.get("kind") == "modified" and relaxed is None:
                continue  # a modification target is an energy change, not a formation energy
            energy = relaxed if relaxed is not None else c.target_energy
            points.append({"index": i, "label": f"#{i}", "formula": c.structure.composition.formula,
                           "energy": float(energy), "relaxed": relaxed is not None})
        return points

    def _update_hull(self) -> None:
        if not self.candidates:
            self.hull.points = []
            return
        try:
            chemsys = chemical_system(self.candidates[0].structure.composition.formula)
        except ExplorerInputError:
            return
        points = self._hull_points()
        if chemsys != self.hull.chemsys:
            self.hull.param.update(points=[], chemsys=chemsys)
        self.hull.points = points

    def _hull_rows(self, event) -> None:
        changed = False
        for row in event.new:
            i = row["index"]
            if 0 <= i < len(self.candidates) and row.get("relaxed"):
                extra = self.candidates[i].extra
                value = round(float(row["e_above_hull"]), 6)
                if extra.get("e_above_hull") != value:
                    extra["e_above_hull"] = value
                    extra["decomposition"] = row.get("decomposition", "")
                    changed = True
        if changed:
            self.table.refresh()
            self._update_summary()
            shown = self.candidates[:MAX_GRID]
            self.grid.labels = [self._label(i, c) for i, c in enumerate(shown)]

    def _set_focus(self, index: int) -> None:
        if index is not None and 0 <= index < len(self.candidates):
            self.focus = int(index)

    @param.depends("focus", watch=True)
    def _focus_changed(self) -> None:
        i = self.focus
        if not (0 <= i < len(self.candidates)):
            self.viewer.param.update(structure=None, title="Selected candidate")
            return
        c = self.candidates[i]
        structure = c.extra.get("relaxed_structure") or c.structure
        state = "relaxed" if c.extra.get("relaxed_structure") is not None else "as generated"
        self.viewer.param.update(structure=structure, title=f"Candidate #{i} ({state})")
        self.grid.selected = i if i < MAX_GRID else -1
        self.hull.selected = i
        if self.table.focus != i:
            self.table.focus = i

    @param.depends("mode", watch=True)
    def _mode_changed(self) -> None:
        self.original_viewer.visible = self.mode == "Modify"
        self._update_hull()
        self.save()

    # ================================================================== novelty
    def _check_novelty(self) -> None:
        if not self.novelty or not self.candidates:
            return
        candidates = list(self.candidates)

        def work():
            from ..novelty import novelty

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    flags = novelty([c.structure for c in candidates])
            except Exception:
                return

            def apply():
                if self.candidates != candidates:
                    return
                for c, flag in zip(candidates, flags):
                    c.extra["novel"] = flag
                self.table.refresh()
                self._update_summary()
                self.save()

            self._dispatch(apply)

        self._jobs["novelty"].start(work)

    # ================================================================== relaxation
    def relax(self, wait: bool = False, indices: list[int] | None = None) -> bool:
        """Relax the checked candidates (or all) in the background with M3GNet; results fill the table and move
        the points on the hull. False when a relaxation is already running or there is nothing to relax."""
        if self._jobs["relax"].busy:
            return False
        if not self.candidates:
            self.relax_status.object = _message("warn", "Nothing to relax yet.")
            return False
        chosen = list(indices) if indices is not None else (list(self.table.selection) or
                                                            list(range(len(self.candidates))))
        chosen = [i for i in chosen if 0 <= i < len(self.candidates)]
        candidates = list(self.candidates)
        structures = [candidates[i].structure for i in chosen]
        settings = {"fmax": float(self.relax_fmax), "steps": int(self.relax_steps), "formation": self.formation,
                    "potential": self.potential}
        self.relax_button.disabled = True
        self.relax_button.label = "Relaxing…"
        self.stop_button.disabled = False
        self.relax_progress.param.update(value=0, max=len(chosen) * 100, visible=True)
        self.relax_status.object = _message("info", f"loading the potential ({settings['potential']})…")
        job = self._jobs["relax"]
        started = time.perf_counter()
        last = [0.0]

        def work():
            from ..relax import RelaxDone, RelaxStep, irelax, shared_potential

            done = 0
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    potential = shared_potential(settings["potential"])
                    events = irelax(structures, potential=potential, fmax=settings["fmax"], steps=settings["steps"],
                                    formation=settings["formation"], labels=[f"#{i}" for i in chosen])
                    for event in events:
                        if job.cancelled.is_set():
                            events.close()
                            break
                        if isinstance(event, RelaxStep):
                            now = time.perf_counter()
                            if now - last[0] < 0.25:
                                continue
                            last[0] = now
                            fraction = min(event.step / max(settings["steps"], 1), 0.99)
                            value = int(100 * (done + fraction))
                            text = (f"{done}/{len(chosen)} done · {event.label}: step {event.step}, "
                                    f"E = {event.energy_per_atom:.3f} eV/atom, fmax {event.fmax:.3f} eV/Å")
                            self._dispatch(lambda v=value, t=text: self._relax_progress(v, t))
                        elif isinstance(event, RelaxDone):
                            done = event.done
                            target = chosen[event.index]
                            self._dispatch(lambda r=event.result, t=target, d=done: self._relaxed(candidates, t, r, d,
                                                                                                     len(chosen)))
                        else:  # a reference element was relaxed / read
                            text = f"reference {event.element}: {event.energy_per_atom:.3f} eV/atom ({event.source})"
                            self._dispatch(lambda t=text: self._relax_progress(0, t))
            except Exception as exc:
                message = str(exc) if isinstance(exc, ExplorerInputError) else f"{type(exc).__name__}: {exc}"
                self._dispatch(lambda: self._relax_finished(message, error=True))
                return
            seconds = time.perf_counter() - started
            stopped = job.cancelled.is_set()
            text = f"{'stopped after' if stopped else 'relaxed'} {done}/{len(chosen)} in {seconds:.1f} s"
            self._dispatch(lambda: self._relax_finished(text, error=False))

        started_ok = job.start(work)
        if wait:
            self.wait("relax")
        return started_ok

    def _relax_progress(self, value: int, text: str) -> None:
        self.relax_progress.value = max(0, min(value, self.relax_progress.max))
        self.relax_status.object = _message("info", text)

    def _relaxed(self, candidates, position: int, result, done: int, total: int) -> None:
        if self.candidates != candidates:
            return  # new candidates arrived meanwhile
        extra = candidates[position].extra
        extra["relax_status"] = result.status
        extra["relaxed_energy_per_atom"] = None if not math.isfinite(result.energy_per_atom) else round(
            float(result.energy_per_atom), 6)
        fe = result.formation_energy_per_atom
        extra["formation_energy"] = round(float(fe), 6) if fe is not None and math.isfinite(fe) else None
        extra["relax_steps"] = result.steps
        extra["relax_error"] = result.error
        extra["relaxed_structure"] = result.structure
        extra.pop("e_above_hull", None)
        self.relax_progress.value = 100 * done
        self.table.refresh()
        self._update_hull()
        self._update_summary()
        if self.focus == position:
            self._focus_changed()
        self.save()

    def _relax_finished(self, text: str, error: bool) -> None:
        self.relax_status.object = _message("error" if error else "ok", text)
        self.relax_progress.visible = False
        self.relax_button.label = "Relax"
        self.relax_button.disabled = False
        self.stop_button.disabled = True

    # ================================================================== modification
    def _uploaded(self, event) -> None:
        content = event.new
        if not content:
            return
        try:
            structure = read_structure_bytes(content, self.upload.filename or "upload")
        except ExplorerInputError as exc:
            self.upload_status.object = _message("error", f"{self.upload.filename}: {exc}")
            return
        except Exception as exc:  # anything else pymatgen may raise on odd input
            self.upload_status.object = _message("error", f"{self.upload.filename}: cannot read it "
                                                          f"({type(exc).__name__})")
            return
        try:  # the models read the primitive standard cell: check it now, not on the Modify click
            from ..representation import encode

            encode(structure)
        except ExplorerInputError as exc:
            self.upload_status.object = _message("error", f"{self.upload.filename}: {exc}")
            return
        self.original = structure
        self._prepare_prototype_library()
        self.upload_status.object = _message("ok", f"{self.upload.filename}: {structure.composition.reduced_formula}, "
                                                   f"{len(structure)} atoms")
        self.save()

    def _prepare_prototype_library(self) -> None:
        """Build the prototype library in the background once, before the first Modify click needs it (a
        failure shows up on that click)."""
        global _LIBRARY_THREAD
        if not self.use_prototypes or not prototype_library_available():
            return
        with _WARM_UP_LOCK:
            if _LIBRARY_THREAD is None:
                _LIBRARY_THREAD = threading.Thread(target=_quietly(load_prototype_library), daemon=True,
                                                   name="prototype-library")
                _LIBRARY_THREAD.start()

    @param.depends("original", watch=True)
    def _original_changed(self) -> None:
        s = self.original
        self.original_viewer.param.update(structure=s, title="Original (uploaded)")
        if s is not None:
            self.original_viewer._info.object = describe(s)

    def modify(self, wait: bool = False) -> bool:
        """Run ``explorer.modify`` on the uploaded structure in the background."""
        if self._jobs["modify"].busy:
            return False
        if self.original is None:
            self.modify_status.object = _message("error", "Upload a structure first.")
            return False
        structure = self.original
        settings = {"spacegroup": int(self.target_spacegroup), "delta": float(self.energy_change), "n": int(self.n),
                    "steps": int(self.steps), "seed": int(self.seed), "relax_steps": int(self.relax_steps),
                    "relax_fmax": float(self.relax_fmax)}
        if self.modify_model:
            settings["model"] = self.modify_model
        settings["prototypes"] = "auto" if self.use_prototypes else 0
        self.modify_button.disabled = True
        first = "" if not self.use_prototypes or prototype_library_ready() or not prototype_library_available() else (
            "building the prototype library from the data directory (once; about 4 min on 2 cores), then ")
        self.modify_status.object = _message("info", f"{first}modifying, then relaxing with M3GNet "
                                                     f"(≤ {self.relax_steps} steps)…")

        def work():
            try:
                extra = {"model": settings["model"]} if "model" in settings else {}
                candidates = explorer.modify(structure, settings["spacegroup"], settings["delta"], n=settings["n"],
                                             steps=settings["steps"], seed=settings["seed"], device="auto",
                                             prototypes=settings["prototypes"], relax_steps=settings["relax_steps"],
                                             relax_fmax=settings["relax_fmax"], **extra)
            except Exception as exc:
                message = str(exc) if isinstance(exc, ExplorerInputError) else f"{type(exc).__name__}: {exc}"
                self._dispatch(lambda: self._modify_finished(message, None))
                return
            known = sum(c.model == "prototype" for c in candidates)
            text = f"{len(candidates)} modified candidates" + (f" ({known} from known prototypes)" if known else "")
            self._dispatch(lambda: self._modify_finished(text, candidates))

        started = self._jobs["modify"].start(work)
        if wait:
            self.wait("modify")
        return started

    @param.depends("target_spacegroup", watch=True)
    def _target_spacegroup_changed(self) -> None:  # e.g. restored from the session
        if self.target_select.value != self.target_spacegroup:
            self.target_select.value = self.target_spacegroup

    @param.depends("modify_model", watch=True)
    def _modify_model_changed(self) -> None:
        if self.modify_model in self.modify_model_select.options:
            self.modify_model_select.value = self.modify_model

    def _modify_finished(self, text: str, candidates) -> None:
        self.modify_button.disabled = False
        self.modify_status.object = _message("ok" if candidates else "error", text)
        if candidates:
            for c in candidates:
                c.extra["kind"] = "modified"
            self.set_candidates(candidates)

    # ================================================================== export
    def export_selected(self) -> tuple[str, bytes]:
        """(file name, content) of the checked candidates (or all) in the chosen format; a zip for several."""
        chosen = list(self.table.selection) or list(range(len(self.candidates)))
        structures, names = [], []
        for i in chosen:
            c = self.candidates[i]
            relaxed = c.extra.get("relaxed_structure") if self.export_relaxed else None
            structures.append(relaxed or c.structure)
            names.append(f"{i:03d}_{c.formula}{'_relaxed' if relaxed is not None else ''}")
        return export_structures(structures, self.export_format, names)

    def _export_file(self):
        import io

        try:
            filename, content = self.export_selected()
        except ExplorerInputError as exc:
            self.export_status.object = _message("error", str(exc))
            self.download.filename = "nothing.txt"
            return io.BytesIO(f"{exc}\n".encode())
        self.download.filename = filename
        self.export_status.object = _message("ok", f"{filename} ({len(content) / 1024:.1f} KiB)")
        return io.BytesIO(content)

    # ================================================================== session
    def settings(self) -> dict:
        return {name: getattr(self, name) for name in SETTINGS}

    def save(self) -> None:
        """Autosave settings, candidates and the uploaded structure (no-op while restoring or when off)."""
        if not self.autosave or self._restoring or not getattr(self, "_built", False):
            return
        try:
            path = self._store.save(self.settings(), self.candidates, self.original)
        except Exception as exc:
            self.session_status.object = _message("error", f"autosave failed: {exc}")
            return
        self.session_status.object = _message("info", f"autosaved {time.strftime('%H:%M:%S')} to {path}")

    @param.depends(*SETTINGS, watch=True)
    def _settings_changed(self) -> None:
        self.save()

    def _restore(self) -> None:
        session = self._store.load()
        if session is None:
            self.session_status.object = _message("info", f"new session (autosave to {self._store.path})")
            return
        self._restoring = True
        try:
            for name, value in session["settings"].items():
                if name in SETTINGS:
                    try:
                        setattr(self, name, value)
                    except Exception:
                        continue  # a setting from an older version, or a model that is gone
            self.formula_input.value = self.formula
            self.candidates = session["candidates"]
            self.original = session["original"]
            self.focus = 0 if self.candidates else -1
        finally:
            self._restoring = False
        self.session_status.object = _message("ok", f"restored the session saved {session['saved']} "
                                                    f"({len(self.candidates)} candidates)")

    def clear(self) -> None:
        """Forget the candidates and the uploaded structure (and the autosaved session)."""
        self.candidates = []
        self.original = None
        self.focus = -1
        self._store.clear()
        self._show_candidates()
        self.session_status.object = _message("info", "session cleared")

    # ================================================================== helpers for notebooks/tests
    def wait(self, job: str | None = None, timeout: float | None = None) -> None:
        """Block until the named background job (or all) has finished."""
        names = [job] if job else list(self._jobs)
        for name in names:
            self._jobs[name].wait(timeout)

    @property
    def busy(self) -> dict[str, bool]:
        return {name: job.busy for name, job in self._jobs.items()}
