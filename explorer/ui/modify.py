"""Modify mode: upload a structure, choose a target space group and a formation-energy change -> ``explorer.modify``
(known prototypes first, then model samples, every candidate relaxed with M3GNet) in the background."""

from __future__ import annotations

import panel as pn
import param

import explorer

from ..errors import ExplorerInputError
from ..generators import default_model, model_infos
from ..modification import check_initial_structure
from ..prototypes import prototype_library_available, prototype_library_ready
from ..structure_io import read_structure_bytes
from .controls import JobControls
from .preparation import LIBRARY, PREPARATION
from .relaxation import apply_library_relaxation
from .widgets import SpacegroupSelect
from .workspace import Workspace, message

UPLOAD_TYPES = ".cif,.vasp,.poscar,.xyz,.extxyz,POSCAR,CONTCAR"

def modification_models() -> list[str]:
    """Names of the registered modification models, the registry's default first."""
    names = [m.name for m in model_infos("modification")]
    default = default_model("modification") if names else None
    return sorted(names, key=lambda name: name != default)


class ModifyPanel(pn.viewable.Viewer):
    """The Modify card; ``relax_settings()`` (from the Relax card) gives the relaxation's steps and fmax."""

    target_spacegroup = param.Integer(default=225, bounds=(1, 230))
    energy_change = param.Number(default=-0.1, bounds=(-2.0, 2.0), step=0.01)
    modify_model = param.Selector(default=None, objects=[])
    use_prototypes = param.Boolean(default=True, doc="up to half of the candidates may be known prototypes of the "
                                                     "target space group with the uploaded elements substituted in")
    steps = param.Integer(default=100, bounds=(1, 1000))
    n = param.Integer(default=8, bounds=(1, 64))
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1))

    SETTINGS = ("target_spacegroup", "energy_change", "modify_model", "use_prototypes", "steps", "n", "seed")

    def __init__(self, workspace: Workspace, relax_settings=None, **params):
        models = modification_models()
        self.param.modify_model.objects = models
        params.setdefault("modify_model", models[0] if models else None)
        super().__init__(**params)
        self.workspace = workspace
        self.relax_settings = relax_settings or (lambda: {"relax_steps": 300, "relax_fmax": 0.05,
                                                          "formation": "references"})
        self.job = workspace.job("modify")
        self._build()

    def _build(self) -> None:
        w = pn.widgets
        self.upload = w.FileInput(accept=UPLOAD_TYPES, multiple=False, sizing_mode="stretch_width")
        # an empty file changes the name but may bring no content: both say a file arrived
        self.upload.param.watch(self._uploaded, ["value", "filename"])
        self.upload_status = pn.pane.HTML(message("info", "Upload a CIF, POSCAR or extended-XYZ file."),
                                          sizing_mode="stretch_width", margin=(0, 10))
        self.target_select = SpacegroupSelect(self, "target_spacegroup", label="Target space group", all_toggle=False)
        self.delta_slider = w.EditableFloatSlider.from_param(self.param.energy_change,
                                                             label="Formation-energy change (eV/atom)",
                                                             sizing_mode="stretch_width", format="0.00")
        self.model_select = w.Select.from_param(self.param.modify_model, label="Modification model",
                                                sizing_mode="stretch_width",
                                                disabled=not self.param.modify_model.objects)
        available = prototype_library_available()
        self.prototypes_check = w.Checkbox.from_param(
            self.param.use_prototypes, disabled=not available,
            label="Include known prototypes of the space group (elements substituted)" if available else
            "Known prototypes: needs mp_structures + wbm_structures in the data directory")
        self.steps_input = w.IntInput.from_param(self.param.steps, label="Steps", width=80)
        self.n_input = w.IntInput.from_param(self.param.n, label="Number", width=80)
        self.seed_input = w.IntInput.from_param(self.param.seed, label="Seed", width=80)
        self.controls = JobControls(self.workspace, "modify", "Modify structure", "Modifying…", "primary", self.modify)
        self.modify_button, self.status = self.controls.button, self.controls.status

    def __panel__(self):
        return pn.Column(self.upload, self.upload_status, self.target_select, self.delta_slider, self.model_select,
                         self.prototypes_check, pn.Row(self.steps_input, self.n_input, self.seed_input),
                         self.controls, sizing_mode="stretch_width")

    # ------------------------------------------------------------------ upload
    def _uploaded(self, *events) -> None:
        content = self.upload.value
        name = self.upload.filename or "upload"
        if not content:
            self.upload_status.object = message("error", f"{name}: the uploaded file is empty")
            return
        try:
            structure = read_structure_bytes(content, name)
            check_initial_structure(structure)  # what modify() checks, now rather than on the Modify click
        except ExplorerInputError as exc:
            self.upload_status.object = message("error", f"{name}: {exc}")
            return
        except Exception as exc:  # anything else pymatgen may raise on odd input
            self.upload_status.object = message("error", f"{name}: cannot read it ({type(exc).__name__})")
            return
        self.workspace.original = structure
        self.upload_status.object = message("ok", f"{name}: {structure.composition.reduced_formula}, "
                                                  f"{len(structure)} atoms")

    # ------------------------------------------------------------------ modification
    def modify(self, wait: bool = False) -> bool:
        """Run ``explorer.modify`` on the uploaded structure in the background."""
        if self.job.busy:
            return False
        structure = self.workspace.original
        if structure is None:
            self.status.object = message("error", "Upload a structure first.")
            return False
        library = PREPARATION.state(LIBRARY)
        use_prototypes = self.use_prototypes and library not in ("stopped", "failed")
        arguments = {"spacegroup": int(self.target_spacegroup), "energy_delta": float(self.energy_change),
                     "n": int(self.n), "steps": int(self.steps), "seed": int(self.seed), "model": self.modify_model,
                     "prototypes": "auto" if use_prototypes else 0, **self.relax_settings()}
        first = ""
        if self.use_prototypes and not use_prototypes:
            first = "the prototype library was not built (stopped): model samples only; "
        elif use_prototypes and prototype_library_available() and not prototype_library_ready():
            first = "waiting for the prototype library (progress at the top), then "
        self.controls.begin(arguments["steps"], f"{first}modifying, then relaxing with M3GNet "
                                                f"(≤ {arguments['relax_steps']} steps)…")
        report = self.controls.reporter(
            lambda done, total, seconds: f"sampler step {done}/{total} · {seconds:.1f} s (then relaxation)")
        relaxing = self.controls.reporter(
            lambda done, total, seconds: f"relaxing the candidates (M3GNet): FIRE step {done}/{total} · "
                                         f"{seconds:.1f} s")

        def finished(candidates, seconds):
            for c in candidates:
                c.extra["kind"] = "modified"
                apply_library_relaxation(c)  # relaxed by explorer.modify: shown as relaxed, placed on the hull
            self.workspace.set_candidates(candidates, "modify")
            known = sum(c.model == "prototype" for c in candidates)
            return "ok", (f"{len(candidates)} modified candidates" +
                          (f" ({known} from known prototypes)" if known else "") + f" in {seconds:.1f} s")

        return self.controls.run(lambda: explorer.modify(structure, device="auto", callback=report,
                                                         relax_callback=relaxing, **arguments),
                                 finished, wait)
