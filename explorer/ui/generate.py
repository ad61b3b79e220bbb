"""Generate mode: formula, space group, target formation energy and model -> ``explorer.generate`` in the
background, with a progress bar that follows the sampler steps."""

from __future__ import annotations

import math
import threading
import warnings

import panel as pn
import param

import explorer

from ..errors import ExplorerInputError
from ..generation import check_energy, parse_formula
from ..generators import default_model, model_info, model_infos
from ..spacegroups import check_spacegroup
from .controls import JobControls
from .hull import chemical_system, hull_energy
from .widgets import PeriodicTable, SpacegroupSelect, add_element, energy_scale_html
from .workspace import Workspace, message

# Formation energies of the training structures (mp + wbm): 0.1 % / 99.9 % quantiles -4.25 / +0.92 eV/atom.
ENERGY_RANGE = (-4.5, 1.0)


def generation_models() -> list:
    """Registry entries (:class:`~explorer.generators.ModelInfo`) of the generation models."""
    return model_infos("generation")


def sampler_options(model: str) -> dict[str, str]:
    """{sampler: model name} of the registered models that share ``model``'s checkpoint (e.g. ddpm / ddim)."""
    file = model_info(model).file
    return {(m.sampler or m.method): m.name for m in generation_models() if m.file == file}


def network_options() -> dict[str, str]:
    """{label: first model name} per registered network (checkpoint), in manifest order."""
    options: dict[str, str] = {}
    seen: set[str] = set()
    for m in generation_models():
        if m.file not in seen:  # one entry per network, named by its first model (ddpm for ddpm + ddim)
            seen.add(m.file)
            options[m.name] = m.name
    return options


class GeneratePanel(pn.viewable.Viewer):
    """The Generate card. Its parameters are the settings a user sees; ``generate()`` runs the library."""

    formula = param.String(default="TaWB6")
    spacegroup = param.Integer(default=191, bounds=(1, 230))
    energy = param.Number(default=-0.45, bounds=ENERGY_RANGE, step=0.01)
    model = param.Selector(default=None, objects=[])
    steps = param.Integer(default=100, bounds=(1, 1000))
    n = param.Integer(default=16, bounds=(1, 64))
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1))
    draws = param.Integer(default=2, bounds=(1, 8), doc="samples per candidate; the best by validity and space group")
    network_only = param.Boolean(default=False, doc="network samples only, as sampled: no prototypes, no "
                                                    "replacement of samples without the space group")
    snap = param.Boolean(default=False, doc="network samples only: refine each onto the requested space group")

    SETTINGS = ("formula", "spacegroup", "energy", "model", "steps", "n", "seed", "draws", "network_only", "snap")

    def __init__(self, workspace: Workspace, **params):
        models = [m.name for m in generation_models()]
        self.param.model.objects = models
        params.setdefault("model", default_model())
        super().__init__(**params)
        self.workspace = workspace
        self.job = workspace.job("generate")
        self.hull_energy: float | None = None
        self._formula_error = ""
        self._hull_request: str | None = None
        self._hull_listeners = []
        self._build()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        w = pn.widgets
        self.formula_input = w.TextInput(label="Formula (cell contents, e.g. TaWB6 or Ta2W2B12)", value=self.formula,
                                         sizing_mode="stretch_width")
        self.formula_input.param.watch(lambda e: self._validate_formula(e.new or ""), "value_input")
        self.formula_input.param.watch(lambda e: setattr(self, "formula", e.new), "value")
        self.formula_status = pn.pane.HTML("", margin=(0, 10))
        self.periodic = PeriodicTable(sizing_mode="stretch_width")
        self.periodic.on_pick(self._pick_element)
        self.spacegroup_select = SpacegroupSelect(self, "spacegroup", label="Space group")
        # what is shown is what is used: the box takes typed numbers within the range and says why it refuses others
        self.energy_slider = w.FloatSlider.from_param(self.param.energy, label="Target formation energy",
                                                      sizing_mode="stretch_width", format="0.00", show_value=False)
        self.energy_input = w.TextInput(label="eV/atom", value=f"{self.energy:.2f}", width=78)
        self.energy_input.param.watch(lambda *events: self._energy_typed(events[-1].new), ["value_input", "value"])
        self.energy_status = pn.pane.HTML("", margin=(0, 10))
        self._energy_error = ""
        self.energy_scale = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 5))
        self.model_select = w.Select(label="Model", options=network_options(), sizing_mode="stretch_width")
        self.sampler_select = w.Select(label="Sampler", options={}, width=110)
        self.model_select.param.watch(lambda e: self._choose_network(e.new), "value")
        self.sampler_select.param.watch(lambda e: e.new and setattr(self, "model", e.new), "value")
        self.model_info = pn.pane.HTML("", margin=(0, 10))
        self.steps_input = w.IntInput.from_param(self.param.steps, label="Steps", width=72)
        self.n_input = w.IntInput.from_param(self.param.n, label="Number", width=72)
        self.seed_input = w.IntInput.from_param(self.param.seed, label="Seed", width=72)
        self.draws_input = w.IntInput.from_param(self.param.draws, label="Draws", width=62,
                                                 description="samples per candidate; the one that best meets the "
                                                             "conditions is kept")
        self.network_box = w.Checkbox.from_param(self.param.network_only, label="network samples only")
        self.snap_box = w.Checkbox.from_param(self.param.snap, label="snap", disabled=not self.network_only)
        self.param.watch(lambda e: setattr(self.snap_box, "disabled", not e.new), "network_only")
        self.controls = JobControls(self.workspace, "generate", "Generate candidates", "Generating…", "primary",
                                    self.generate, ready=lambda: not (self._energy_error or self._formula_error))
        self.generate_button, self.status = self.controls.button, self.controls.status
        self._model_changed()
        self._formula_changed()

    def __panel__(self):
        return pn.Column(
            self.formula_input, self.formula_status,
            pn.Card(self.periodic, title="Periodic table (click to add)", collapsed=True, sizing_mode="stretch_width",
                    margin=(5, 0), header_background="#f3f5f7"),
            self.spacegroup_select,
            pn.Row(self.energy_slider, self.energy_input, sizing_mode="stretch_width"), self.energy_status,
            self.energy_scale,
            pn.Row(self.model_select, self.sampler_select, sizing_mode="stretch_width"), self.model_info,
            pn.Row(self.steps_input, self.n_input, self.seed_input, self.draws_input),
            pn.pane.HTML("Known prototypes of the space group come first, then network samples; a sample without "
                         "the space group is replaced (next prototype, else a random symmetric crystal). Where the "
                         "group has few prototypes, those of a parent group distorted into it and the samples are "
                         "relaxed (M3GNet) and come lowest energy first. The <i>source</i> column says which is "
                         "which.", styles={"font-size": "12px", "color": "#555"},
                         sizing_mode="stretch_width", margin=(0, 10)),
            pn.Row(self.network_box, self.snap_box),
            self.controls, sizing_mode="stretch_width")

    # ------------------------------------------------------------------ inputs
    def _validate_formula(self, text: str) -> bool:
        try:
            species = parse_formula(text)
        except ExplorerInputError as exc:
            self.formula_status.object = message("error", str(exc))
            self._formula_error = str(exc)
            self._can_generate()
            return False
        self._formula_error = ""
        from pymatgen.core import Composition

        composition = Composition(text)
        parts = " ".join(f"{e.symbol}{int(a)}" for e, a in composition.items())
        self.formula_status.object = message("ok", f"{parts} · {len(species)} atoms in the cell")
        self._can_generate()
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
            self.hull_energy = None
            self._energy_scale()

    def on_hull_energy(self, callback) -> None:
        """``callback(formula)`` once the hull energy of a newly typed formula is known."""
        self._hull_listeners.append(callback)

    def _request_hull_energy(self, formula: str) -> None:
        """Hull energy of the composition for the slider marker, in a background thread; only the answer to the
        latest request is shown."""
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
                    self.hull_energy = value
                    self._energy_scale()
                    for callback in self._hull_listeners:
                        callback(formula)

            self.workspace.dispatch(apply)

        self.hull_energy = None
        threading.Thread(target=work, name="explorer-hull-energy", daemon=True).start()
        self._energy_scale()

    def chemical_system(self) -> str | None:
        try:
            return chemical_system(self.formula)
        except ExplorerInputError:
            return None

    def _energy_typed(self, text) -> None:
        low, high = ENERGY_RANGE
        try:
            value = float(str(text).strip().replace("−", "-"))
            if not math.isfinite(value):
                raise ValueError
        except ValueError:
            self._energy_error = f"the target energy must be a number of eV/atom, got {text!r}"
        else:
            if low <= value <= high:
                self._energy_error = ""
                if value != self.energy:
                    self.energy = value
            else:
                self._energy_error = (f"the target energy must be within {low} .. {high} eV/atom (the range of the "
                                      f"training data), got {value:g}")
        self.energy_status.object = message("error", self._energy_error) if self._energy_error else ""
        self._can_generate()

    def _can_generate(self) -> None:
        self.generate_button.disabled = bool(self.job.busy or not self.controls.ready())

    @param.depends("energy", watch=True)
    def _energy_scale(self) -> None:
        if not self._energy_error and self.energy_input.value_input != f"{self.energy:.2f}":
            try:
                typed = float(self.energy_input.value_input)
            except (TypeError, ValueError):
                typed = None
            if typed != self.energy:  # moved by the slider or restored: the box shows it
                self.energy_input.param.update(value=f"{self.energy:.2f}", value_input=f"{self.energy:.2f}")
        self.energy_scale.object = energy_scale_html(*ENERGY_RANGE, self.energy, self.hull_energy)

    def _choose_network(self, name: str) -> None:
        """A network was chosen: keep the sampler when that network offers it, else take its first one."""
        samplers = sampler_options(name)
        current = model_info(self.model).sampler if self.model else None
        same = [m for m in samplers.values() if model_info(m).sampler == current]
        self.model = same[0] if same else next(iter(samplers.values()))

    @param.depends("model", watch=True)
    def _model_changed(self) -> None:
        info = model_info(self.model)
        samplers = sampler_options(self.model)
        self.sampler_select.options = samplers
        self.sampler_select.value = self.model
        networks = network_options()
        network = next((n for n, first in networks.items() if self.model in sampler_options(first).values()), None)
        if network is not None and self.model_select.value != networks[network]:
            self.model_select.value = networks[network]
        arch = info.info.get("model", {}).get("arch", "DimeNet++" if info.family == "langevin" else "")
        epochs = info.info.get("epochs")
        takes_energy = "energy" in info.conditions
        takes_spacegroup = "spacegroup" in info.conditions
        self.energy_slider.disabled = self.energy_input.disabled = not takes_energy
        self.spacegroup_select.select.disabled = self.spacegroup_select.all_groups.disabled = not takes_spacegroup
        if not takes_spacegroup:
            unused = " · the space group and the target energy are not used by this model (formula only; the " \
                     "detected space group of each candidate is shown)"
        elif not takes_energy:
            unused = " · the target energy is not used by this model (formula and space group only; every sample " \
                     "has the space group by construction)"
        else:
            unused = ""
        self.model_info.object = message("info", f"{info.family} family · {info.method} · {arch}"
                                                 + (f" · {epochs} epochs" if epochs is not None else "") + unused)
        default_steps = int(info.info.get("default_steps", 100))
        previous = getattr(self, "_default_steps", None)
        if previous is not None and self.steps == previous:  # steps the user left at the model's default follow it
            self.steps = default_steps
        self._default_steps = default_steps

    # ------------------------------------------------------------------ generation
    def request(self) -> dict:
        """The checked arguments of ``explorer.generate`` (one-line errors)."""
        parse_formula(self.formula)
        conditions = model_info(self.model).conditions
        takes_energy = "energy" in conditions
        spacegroup = check_spacegroup(self.spacegroup) if "spacegroup" in conditions else None
        return {"formula": self.formula, "spacegroup": spacegroup,
                "energy": check_energy(self.energy) if takes_energy else None, "n": int(self.n), "model": self.model,
                "steps": int(self.steps),
                "seed": int(self.seed), "draws": int(self.draws), "snap": bool(self.snap),
                "network_only": bool(self.network_only)}

    def generate(self, wait: bool = False) -> bool:
        """Start ``explorer.generate`` in the background; False when a generation is already running or the input
        is invalid. ``wait=True`` blocks until the candidates are there (notebooks, tests)."""
        if self.job.busy:
            return False
        try:
            if self._energy_error:
                raise ExplorerInputError(self._energy_error)
            arguments = self.request()
        except ExplorerInputError as exc:
            self.status.object = message("error", str(exc))
            return False
        self.controls.begin(arguments["steps"] * arguments["draws"], "loading the model…")
        report = self.controls.reporter(lambda done, total, seconds: f"sampler step {done}/{total} · {seconds:.1f} s")
        relaxing = self.controls.reporter(
            lambda done, total, seconds: f"relaxing prototypes and samples (M3GNet): FIRE step {done}/{total} · "
                                         f"{seconds:.1f} s")

        def finished(candidates, seconds):
            self.workspace.set_candidates(candidates, "generate")
            valid = sum(c.valid for c in candidates)
            matched = sum(c.spacegroup_detected == c.spacegroup_requested for c in candidates)
            relaxed = sum("energy_per_atom" in c.extra.get("relaxed", {}) for c in candidates)
            note = f" · {relaxed} relaxed by the pipeline (M3GNet)" if relaxed else ""
            return "ok", (f"{len(candidates)} candidates in {seconds:.1f} s · {valid} valid · {matched} in the "
                          f"requested space group{note}")

        return self.controls.run(lambda: explorer.generate(**arguments, device="auto", callback=report,
                                                           relax_callback=relaxing), finished,
                                 wait)
