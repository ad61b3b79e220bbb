"""The explorer app: one :class:`ExplorerApp` per browser session (or notebook), composed of one Viewer per mode —
:class:`~explorer.ui.generate.GeneratePanel`, :class:`~explorer.ui.modify.ModifyPanel`,
:class:`~explorer.ui.relaxation.RelaxPanel` (relaxation and hull), :class:`~explorer.ui.export.ExportPanel` — and
the :class:`~explorer.ui.results.ResultsView`, all sharing one :class:`~explorer.ui.workspace.Workspace`.

``app.template()`` is the page for ``panel serve``; the app object itself displays in Jupyter. The parts call the
library (``explorer.generate``, ``explorer.modify``, ``explorer.relax.irelax``, ``explorer.structure_io``), never a
copy of it; heavy work runs in background threads (:mod:`.jobs`) and a second click while a job runs does nothing.
"""

from __future__ import annotations

import os
import time
import warnings

import panel as pn
import param

from ..candidates import Candidate
from ..errors import ExplorerInputError
from .export import ExportPanel
from .generate import GeneratePanel
from .jobs import UiDispatcher
from .modify import ModifyPanel
from .preparation import PreparationStatus, prepare_references
from .preparation import prepare as prepare_all
from .relaxation import RelaxPanel
from .results import ResultsView
from .session import DEFAULT_SESSION, SessionStore, check_session_id, list_sessions, new_session_id
from .widgets import button_style
from .workspace import Workspace, message

ACCENT = "#0072B5"

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
    ``n``, ``steps`` and ``seed`` go to both Generate and Modify). ``session``: the saved session to open (in a
    browser: the page address's, else a new one; in a notebook: ``default``). ``prepare``: load the model and the
    potential, relax the formula's elemental references and build the prototype library in the background.

    In Jupyter::

        from explorer.ui import ExplorerApp
        app = ExplorerApp(autosave=False)
        app                                  # the app in the notebook
        app.generate(wait=True)              # or click "Generate"
    """

    autosave = param.Boolean(default=True)
    novelty = param.Boolean(default=True, doc="check candidates against the training structures")

    def __init__(self, session_dir=None, restore: bool = True, session: str | None = None, prepare: bool = True,
                 **settings):
        own = {k: settings.pop(k) for k in list(settings) if k in ("autosave", "novelty", "name")}
        super().__init__(**own)
        self.served = served()
        self.workspace = Workspace(UiDispatcher())
        self.relaxation = RelaxPanel(self.workspace)
        self.generation = GeneratePanel(self.workspace)
        self.modification = ModifyPanel(self.workspace, relax_settings=self.relaxation.settings_for_modify)
        self.exporter = ExportPanel(self.workspace)
        self.results = ResultsView(self.workspace)
        self._session_dir = session_dir
        self._store = SessionStore(session_dir, session_id(session, self.served))
        self._restoring = False
        self._page_loaded = False
        self.sessions = SessionPanel(self)
        self.session_status = self.sessions.status
        self.device_info = pn.pane.HTML(message("info", f"Device: {device_label()}"), margin=(0, 10))
        self.mode_toggle = pn.widgets.RadioButtonGroup.from_param(
            self.workspace.param.mode, **button_style("primary", outline=True), sizing_mode="stretch_width", label="")
        self._apply(settings, strict=True)
        if restore and self.autosave:
            self._restore()
        self._watch_for_autosave()
        self.workspace.param.watch(lambda e: self._check_novelty(), "candidates")
        self.generation.on_hull_energy(self._system_hull)
        self.preparing = PreparationStatus(self.served)
        if prepare:  # model, potential, the formula's references, the prototype library: in the background
            prepare_all(self.generation.formula, self.generation.model, self.relaxation.potential)
            self.generation.param.watch(lambda e: prepare_references(e.new, self.relaxation.potential), "formula")
        pn.state.onload(self._page_loaded_now)
        if self.served:  # the browser tab closed: its jobs stop at their next step, nothing is saved any more
            pn.state.on_session_destroyed(lambda context: self.workspace.close())

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
                self.preparing, self.mode_toggle,
                _card("Generate", self.generation, self.device_info, visible=mode == "Generate"),
                _card("Modify a structure", self.modification, visible=mode == "Modify"),
                _card("Relax (M3GNet) and hull", self.relaxation),
                _card("Export", self.exporter),
                _card("Session", self.sessions, collapsed=True),
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
        waits for this (Panel's onload; at once outside a server). The page's address gets the session id, so a
        reload comes back to this session."""
        self._page_loaded = True
        self.sessions.show_in_address()
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

    @property
    def session(self) -> str:
        return self._store.session

    def _restore(self) -> None:
        session = self._store.load()
        if session is None:
            self.session_status.object = message("info", f"new session {self.session} (autosaved to "
                                                         f"{self._store.path})")
            return
        self._restoring = True
        try:
            self._restore_settings(session["settings"])
            self.workspace.original = session["original"]
            self.workspace.set_candidates(session["candidates"], "session")
        finally:
            self._restoring = False
        self.session_status.object = message("ok", f"restored session {self.session} saved {session['saved']} "
                                                   f"({len(self.candidates)} candidates)")

    def open_session(self, name: str, keep_current: bool = False) -> None:
        """Switch to the session ``name``: its saved work is restored (``keep_current``: this session's work is
        kept and saved under the new name instead)."""
        store = SessionStore(self._session_dir, check_session_id(name))
        self._store = store
        if keep_current:
            self.save()
        else:
            self.workspace.original = None
            self.workspace.set_candidates([])
            self._restore()
        self.sessions.show_in_address()
        self.sessions.refresh()

    def clear(self) -> None:
        """Forget the candidates and the uploaded structure (and this session's saved file)."""
        self.workspace.original = None
        self.workspace.set_candidates([])
        self._store.clear()
        self.session_status.object = message("info", f"session {self.session} cleared")


def served() -> bool:
    """True inside a `panel serve` / `explorer app` browser session, False in a notebook or script."""
    doc = pn.state.curdoc
    return bool(doc is not None and doc.session_context is not None)


def shared_server() -> bool:
    """True when the app is served to other machines (``explorer app --address`` other than this machine sets
    ``EXPLORER_SHARED=1``): no session then lists or opens another one's work."""
    return os.environ.get("EXPLORER_SHARED") == "1"


def session_id(explicit: str | None, in_browser: bool) -> str:
    """The session of a new app: ``explicit``; in a browser, the page address's ``?session=`` (a reload), else
    a new random id (a new visitor never sees another's work); in a notebook, ``default``."""
    if explicit:
        return check_session_id(explicit)
    if in_browser:
        values = (pn.state.session_args or {}).get("session") or [b""]
        asked = values[0].decode() if isinstance(values[0], bytes) else str(values[0])
        try:
            return check_session_id(asked)
        except ExplorerInputError:
            return new_session_id()
    return DEFAULT_SESSION


class SessionPanel(pn.viewable.Viewer):
    """The Session card: which session this is, saving it under a name, opening a saved one (not when served to
    others), clearing it."""

    def __init__(self, app: ExplorerApp):
        super().__init__()
        self.app = app
        w = pn.widgets
        self.status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.name_input = w.TextInput(label="Save this session as", placeholder="e.g. ta-w-b-hexagonal",
                                      sizing_mode="stretch_width")
        self.save_button = w.Button(label="Save as", **button_style("light"), width=80)
        self.save_button.on_click(lambda event: self._save_as())
        self.saved_select = w.Select(label="Open a saved session", options={}, sizing_mode="stretch_width",
                                     visible=not shared_server())
        self.open_button = w.Button(label="Open", **button_style("light"), width=80, visible=not shared_server())
        self.open_button.on_click(lambda event: self._open())
        self.clear_button = w.Button(label="Clear this session", **button_style("light"), sizing_mode="stretch_width")
        self.clear_button.on_click(lambda event: app.clear())
        self.message = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.refresh()

    def __panel__(self):
        return pn.Column(self.status, pn.Row(self.name_input, self.save_button, align="end"),
                         pn.Row(self.saved_select, self.open_button, align="end"), self.clear_button, self.message,
                         sizing_mode="stretch_width")

    def refresh(self) -> None:
        if shared_server():
            return
        options = {f"{s['id']} · {s['saved']} · {s['candidates']} candidates": s["id"]
                   for s in list_sessions(self.app._session_dir) if s["id"] != self.app.session}
        self.saved_select.options = options
        self.open_button.disabled = not options

    def show_in_address(self) -> None:
        """``?session=<id>`` in the browser's address bar (a reload or a bookmark comes back here)."""
        if self.app.served and pn.state.location is not None:
            pn.state.location.update_query(session=self.app.session)

    def _save_as(self) -> None:
        try:
            self.app.open_session(self.name_input.value_input or self.name_input.value, keep_current=True)
        except ExplorerInputError as exc:
            self.message.object = message("error", str(exc))
            return
        self.message.object = message("ok", f"saved as {self.app.session}; the page address now opens it")

    def _open(self) -> None:
        if self.saved_select.value:
            self.app.open_session(self.saved_select.value)
            self.message.object = message("ok", f"opened session {self.app.session}")
