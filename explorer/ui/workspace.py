"""What the parts of the app share: the current candidates, the uploaded structure, which candidate is in focus
and which are checked, and the helpers every part uses to run work in the background and to say what happened.

One :class:`Workspace` per browser session (or notebook app); the panels (:mod:`.generate`, :mod:`.modify`,
:mod:`.relaxation`, :mod:`.export`) write to it and the results view (:mod:`.results`) shows it.
"""

from __future__ import annotations

from html import escape

import param
from pymatgen.core import Structure

from ..candidates import Candidate
from .jobs import Job, UiDispatcher

COLORS = {"ok": "#1a7f37", "error": "#b00020", "info": "#444", "warn": "#9a6700"}
ICONS = {"ok": "✓", "error": "✗", "info": "", "warn": "!"}


def message(kind: str, text: str) -> str:
    """One status line (HTML): ``kind`` is ok, error, info or warn."""
    return f'<div style="color:{COLORS[kind]};font-size:12.5px">{ICONS[kind]} {escape(text)}</div>'


def error_text(exc: BaseException) -> str:
    """What the user reads for an exception: our own one-line messages as they are, anything else by type."""
    from ..errors import ExplorerInputError

    return str(exc) if isinstance(exc, ExplorerInputError) else f"{type(exc).__name__}: {exc}"


class Workspace(param.Parameterized):
    """The session's shared state. ``revision`` goes up whenever candidates change in place (relaxation
    results, energies above hull, novelty flags), so views redraw without a new list."""

    mode = param.Selector(default="Generate", objects=["Generate", "Modify"])
    candidates = param.List(default=[], item_type=Candidate)
    original = param.ClassSelector(class_=Structure, default=None, allow_None=True,
                                   doc="the uploaded structure (Modify mode)")
    focus = param.Integer(default=-1, doc="position of the candidate in the large view")
    selection = param.List(default=[], doc="positions of the checked candidates")
    revision = param.Integer(default=0)
    source = param.String(default="", doc="which part set the current candidates (generate, modify, session)")

    def __init__(self, dispatch: UiDispatcher | None = None, **params):
        super().__init__(**params)
        self.dispatch = dispatch or UiDispatcher()
        self.jobs: dict[str, Job] = {}
        self.closed = False  # the browser session ended: background work stops and nothing is saved

    def job(self, name: str) -> Job:
        """The session's background job ``name`` (created on first use; one run at a time)."""
        if name not in self.jobs:
            self.jobs[name] = Job(name)
        return self.jobs[name]

    def set_candidates(self, candidates: list[Candidate], source: str = "") -> None:
        """New results (from ``source``): checked rows are cleared and the first candidate is in focus."""
        with param.parameterized.batch_call_watchers(self):
            self.source = source
            self.selection = []
            self.candidates = list(candidates)
            self.focus = 0 if candidates else -1

    def changed(self) -> None:
        """Candidates were updated in place."""
        self.revision += 1

    def chosen(self) -> list[int]:
        """Positions of the checked candidates, or of all when none is checked."""
        positions = [i for i in self.selection if 0 <= i < len(self.candidates)]
        return positions or list(range(len(self.candidates)))

    def close(self) -> None:
        """The session ended: cancel every job (each stops at its next step) and stop saving."""
        self.closed = True
        self.dispatch.closed = True
        for job in self.jobs.values():
            job.cancel()

    def wait(self, name: str | None = None, timeout: float | None = None) -> None:
        for job in [self.jobs[name]] if name else list(self.jobs.values()):
            job.wait(timeout)
