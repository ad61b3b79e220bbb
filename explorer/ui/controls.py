"""The controls of one background job: a run button, a Stop button, a progress bar and a status line — and the
one way the panels run library work off the page's thread (:meth:`JobControls.run`)."""

from __future__ import annotations

import time

import panel as pn

from .widgets import button_style
from .workspace import Workspace, error_text, message


class Cancelled(Exception):
    """Raised from a progress callback to stop the library's work (Stop button, or the session ended)."""


class JobControls(pn.viewable.Viewer):
    """``button`` starts ``on_run()``; ``stop_button`` cancels the workspace's job ``job_name``."""

    def __init__(self, workspace: Workspace, job_name: str, label: str, busy_label: str, color: str, on_run,
                 initial: str = "", ready=None):
        super().__init__()
        self.ready = ready or (lambda: True)  # whether the inputs allow a run (the button's state after a run)
        self.workspace, self.job = workspace, workspace.job(job_name)
        self.label, self.busy_label = label, busy_label
        self.button = pn.widgets.Button(label=label, **button_style(color), sizing_mode="stretch_width")
        self.button.on_click(lambda event: on_run())
        self.stop_button = pn.widgets.Button(label="Stop", **button_style("warning"), width=70, disabled=True)
        self.stop_button.on_click(lambda event: self.job.cancel())
        self.progress = pn.widgets.Progress(value=0, max=100, sizing_mode="stretch_width", visible=False,
                                            bar_color=color, height=12)
        self.initial = initial
        self.status = pn.pane.HTML(message("info", initial) if initial else "", sizing_mode="stretch_width",
                                   margin=(0, 10))
        # a status line describes the candidates it produced or worked on: new candidates from elsewhere reset it
        workspace.param.watch(lambda event: self._others_results(job_name), "candidates")

    def __panel__(self):
        return pn.Column(pn.Row(self.button, self.stop_button, sizing_mode="stretch_width"), self.progress,
                         self.status, sizing_mode="stretch_width", margin=0)

    def _others_results(self, job_name: str) -> None:
        if self.workspace.source != job_name and not self.job.busy:
            self.status.object = message("info", self.initial) if self.initial else ""

    def begin(self, total: int, text: str) -> None:
        """The job starts: button busy, Stop enabled, progress at 0 of ``total``."""
        self.button.param.update(disabled=True, label=self.busy_label)
        self.stop_button.disabled = False
        self.progress.param.update(value=0, max=max(1, int(total)), visible=True)
        self.status.object = message("info", text)

    def show(self, value, text: str) -> None:
        """Progress ``value`` (None: unchanged) and a status line."""
        if value is not None:
            self.progress.value = max(0, min(int(value), self.progress.max))
        self.status.object = message("info", text)

    def end(self, kind: str, text: str) -> None:
        self.status.object = message(kind, text)
        self.progress.visible = False
        self.button.param.update(label=self.label, disabled=not self.ready())
        self.stop_button.disabled = True

    def reporter(self, describe, every: float = 0.2):
        """A ``callback(done, total)`` for the library: it moves the progress bar (``describe(done, total,
        seconds)`` is the status line) at most every ``every`` seconds, on the page's thread, and raises
        :class:`Cancelled` once Stop was pressed or the session ended."""
        started, last = time.perf_counter(), [0.0]
        job, workspace = self.job, self.workspace

        def report(done, total):
            if job.cancelled.is_set() or workspace.closed:
                raise Cancelled
            now = time.perf_counter()
            if now - last[0] < every and done < total:
                return
            last[0] = now

            def apply():
                self.progress.max = max(1, int(total))
                self.show(done, describe(done, total, now - started))

            workspace.dispatch(apply)

        return report

    def run(self, compute, finished, wait: bool = False) -> bool:
        """Run ``compute()`` in the background; then, on the page's thread, ``finished(result, seconds)`` returns
        the status line. A :class:`Cancelled` or any error ends with its message, the current results kept. False
        when the job is already running."""
        started = time.perf_counter()
        dispatch = self.workspace.dispatch

        def work():
            try:
                result = compute()
            except Cancelled:
                dispatch(lambda: self.end("warn", "stopped; the previous candidates are kept"))
                return
            except Exception as exc:
                text = error_text(exc)
                dispatch(lambda: self.end("error", text))
                return
            seconds = time.perf_counter() - started
            dispatch(lambda: self.end(*finished(result, seconds)))

        started_ok = self.job.start(work)
        if wait:
            self.job.wait()
        return started_ok
