"""The explorer app: one :class:`ExplorerApp` per browser session (or notebook), composed of one Viewer per mode —
:class:`~explorer.ui.generate.GeneratePanel`, :class:`~explorer.ui.modify.ModifyPanel`,
:class:`~explorer.ui.relaxation.RelaxPanel` (relaxation and hull), :class:`~explorer.ui.export.ExportPanel` — and
the :class:`~explorer.ui.results.ResultsView`, all sharing one :class:`~explorer.ui.workspace.Workspace`.

``app.template()`` is the page for ``panel serve``; the app object itself displays in Jupyter. The parts call the
library (``explorer.generate``, ``explorer.modify``, ``explorer.relax.irelax``, ``explorer.structure_io``), never a
copy of it; heavy work runs in background threads (:mod:`.jobs`) and a second click while a job runs does nothing.
"""

from __future__ import annotations

import threading
import time
import warnings

import panel as pn
import param

from ..candidates import Candidate
from .export import ExportPanel
from .generate import GeneratePanel
from .jobs import UiDispatcher
from .modify import ModifyPanel
from .relaxation import RelaxPanel
from .results import ResultsView
from .session import SessionStore
from .widgets import button_style
from .workspace import Workspace, message

ACCENT = "#0072B5"

_WARM_UP_LOCK = threading.Lock()
_WARM_UP_STARTED = False


def warm_up_in_background(model: str | None = None) -> bool:
    """Once per process, load ``model`` (default: the registry's default) and sample one tiny structure in a daemon
    thread, so that the user's first click does not pay for loading weights and torch's first forward pass. True
    when this call started the warm-up."""
    global _WARM_UP_STARTED
    with _WARM_UP_LOCK:
        if _WARM_UP_STARTED:
            return False
        _WARM_UP_STARTED = True

    def run():
        try:
            import explorer

            explorer.generate("NaCl", 225, -2.0, n=1, model=model, steps=2, seed=0)
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


def _card(title, *objects, collapsed=False, **kwargs):
    return pn.Card(*objects, title=title, collapsed=collapsed, sizing_mode="stretch_width", margin=(5, 0),
                   header_background="#f3f5f7", **kwargs)


class ExplorerApp(pn.viewable.Viewer):
    """The whole app. Keyword arguments set the panels' settings by name (``ExplorerApp(formula="NaCl", n=4)``;
    ``n``, ``steps`` and ``seed`` go to both Generate and Modify).

    In Jupyter::

        from explorer.ui import ExplorerApp
        app = ExplorerApp(autosave=False)
        app                                  # the app in the notebook
        app.generate(wait=True)              # or click "Generate"
    """

    autosave = param.Boolean(default=True)
    novelty = param.Boolean(default=True, doc="check candidates against the training structures")

    def __init__(self, session_dir=None, restore: bool = True, **settings):
        own = {k: settings.pop(k) for k in list(settings) if k in ("autosave", "novelty", "name")}
        super().__init__(**own)
        self.workspace = Workspace(UiDispatcher())
        self.relaxation = RelaxPanel(self.workspace)
        self.generation = GeneratePanel(self.workspace)
        self.modification = ModifyPanel(self.workspace, relax_settings=self.relaxation.settings_for_modify)
        self.exporter = ExportPanel(self.workspace)
        self.results = ResultsView(self.workspace)
        self._store = SessionStore(session_dir)
        self._restoring = False
        self._page_loaded = False
        self.session_status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.new_session = pn.widgets.Button(label="Clear session", **button_style("light"),
                                             sizing_mode="stretch_width")
        self.new_session.on_click(lambda event: self.clear())
        self.device_info = pn.pane.HTML(message("info", f"Device: {device_label()}"), margin=(0, 10))
        self.mode_toggle = pn.widgets.RadioButtonGroup.from_param(
            self.workspace.param.mode, **button_style("primary", outline=True), sizing_mode="stretch_width", label="")
        self._apply(settings, strict=True)
        if restore and self.autosave:
            self._restore()
        self._watch_for_autosave()
        self.workspace.param.watch(lambda e: self._check_novelty(), "candidates")
        self.generation.on_hull_energy(self._system_hull)
        warm_up_in_background(self.generation.model)
        pn.state.onload(self._page_loaded_now)

    # ================================================================== the panels' settings
    @property
    def panels(self) -> dict:
        return {"generate": self.generation, "modify": self.modification, "relax": self.relaxation,
                "export": self.exporter}

    def _apply(self, settings: dict, strict: bool = False) -> None:
        """Set panel parameters by name; unknown names are an error when ``strict`` (a typo in Python), skipped
        otherwise (a session file from an older version)."""
        for name, value in settings.items():
            if name == "mode":
                self.workspace.mode = value
                continue
            owners = [p for p in self.panels.values() if name in p.SETTINGS]
            if not owners and strict:
                raise TypeError(f"ExplorerApp got an unknown setting {name!r}")
            for panel in owners:
                try:
                    setattr(panel, name, value)
                except Exception:
                    if strict:
                        raise

    def settings(self) -> dict:
        """Every panel's settings: ``{"mode": ..., "generate": {...}, "modify": {...}, ...}``."""
        out = {"mode": self.workspace.mode}
        for key, panel in self.panels.items():
            out[key] = {name: getattr(panel, name) for name in panel.SETTINGS}
        return out

    def _restore_settings(self, saved: dict) -> None:
        if any(key in saved for key in self.panels):  # {"generate": {...}, ...}
            self.workspace.mode = saved.get("mode", self.workspace.mode)
            for key, panel in self.panels.items():
                for name, value in (saved.get(key) or {}).items():
                    if name in panel.SETTINGS:
                        try:
                            setattr(panel, name, value)
                        except Exception:
                            continue  # a setting from an older version, or a model that is gone
        else:  # a flat dict of an older session file
            self._apply(saved)

    # ================================================================== layout
    @property
    def sidebar(self):
        if getattr(self, "_sidebar", None) is None:
            mode = self.workspace.param.mode.rx()
            self._sidebar = pn.Column(
                self.mode_toggle,
                _card("Generate", self.generation, self.device_info, visible=mode == "Generate"),
                _card("Modify a structure", self.modification, visible=mode == "Modify"),
                _card("Relax (M3GNet) and hull", self.relaxation),
                _card("Export", self.exporter),
                _card("Session", self.session_status, self.new_session, collapsed=True),
                sizing_mode="stretch_width")
        return self._sidebar

    @property
    def main(self):
        return self.results

    def __panel__(self):
        return pn.Row(pn.Column(self.sidebar, width=360), self.main, sizing_mode="stretch_width")

    def template(self, title: str = "Crystal explorer"):
        """The app in Panel's BootstrapTemplate (for ``panel serve``): every resource it needs is served by Panel
        itself (no CDN, no web font)."""
        return pn.template.BootstrapTemplate(title=title, sidebar=[self.sidebar], main=[self.main],
                                             header_background=ACCENT, sidebar_width=380)

    # ================================================================== shortcuts (notebooks, tests)
    @property
    def candidates(self) -> list[Candidate]:
        return self.workspace.candidates

    def set_candidates(self, candidates: list[Candidate]) -> None:
        self.workspace.set_candidates(candidates)

    def generate(self, wait: bool = False) -> bool:
        return self.generation.generate(wait)

    def modify(self, wait: bool = False) -> bool:
        return self.modification.modify(wait)

    def relax(self, wait: bool = False, indices: list[int] | None = None) -> bool:
        return self.relaxation.relax(wait, indices)

    def export_selected(self) -> tuple[str, bytes]:
        return self.exporter.export_selected()

    def wait(self, job: str | None = None, timeout: float | None = None) -> None:
        """Block until the named background job (generate, modify, relax, novelty) or all have finished."""
        self.workspace.wait(job, timeout)

    @property
    def busy(self) -> dict[str, bool]:
        return {name: job.busy for name, job in self.workspace.jobs.items()}

    # ================================================================== hull of the chosen system
    def _page_loaded_now(self) -> None:
        """Building the hull figure while the page itself is still being built slowed it by 1-5 s (measured): it
        waits for this (Panel's onload; at once outside a server)."""
        self._page_loaded = True
        if self.generation.hull_energy is not None or self.generation.chemical_system():
            self.results.show_system(self.generation.chemical_system())

    def _system_hull(self, formula: str) -> None:
        if self._page_loaded:
            self.results.show_system(self.generation.chemical_system())

    # ================================================================== novelty
    def _check_novelty(self) -> None:
        workspace = self.workspace
        if not self.novelty or not workspace.candidates:
            return
        candidates = list(workspace.candidates)

        def work():
            from ..novelty import novelty

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    flags = novelty([c.structure for c in candidates])
            except Exception:
                return

            def apply():
                if workspace.candidates != candidates:
                    return
                for c, flag in zip(candidates, flags):
                    c.extra["novel"] = flag
                workspace.changed()

            workspace.dispatch(apply)

        workspace.job("novelty").start(work)

    # ================================================================== session
    def _watch_for_autosave(self) -> None:
        for panel in self.panels.values():
            panel.param.watch(lambda e: self.save(), list(panel.SETTINGS))
        self.workspace.param.watch(lambda e: self.save(), ["mode", "candidates", "original", "revision"])

    def save(self) -> None:
        """Autosave settings, candidates and the uploaded structure (no-op while restoring, when off, or once the
        session has ended)."""
        if not self.autosave or self._restoring or self.workspace.closed:
            return
        workspace = self.workspace
        try:
            path = self._store.save(self.settings(), workspace.candidates, workspace.original)
        except Exception as exc:
            self.session_status.object = message("error", f"autosave failed: {exc}")
            return
        self.session_status.object = message("info", f"autosaved {time.strftime('%H:%M:%S')} to {path}")

    def _restore(self) -> None:
        session = self._store.load()
        if session is None:
            self.session_status.object = message("info", f"new session (autosave to {self._store.path})")
            return
        self._restoring = True
        try:
            self._restore_settings(session["settings"])
            self.workspace.original = session["original"]
            self.workspace.set_candidates(session["candidates"])
        finally:
            self._restoring = False
        self.session_status.object = message("ok", f"restored the session saved {session['saved']} "
                                                   f"({len(self.candidates)} candidates)")

    def clear(self) -> None:
        """Forget the candidates and the uploaded structure (and the autosaved session)."""
        self.workspace.original = None
        self.workspace.set_candidates([])
        self._store.clear()
        self.session_status.object = message("info", "session cleared")
