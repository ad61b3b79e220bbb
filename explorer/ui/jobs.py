"""Heavy work off the UI thread: one background thread per kind of job, never two at once, with updates
handed back to the Bokeh document's event loop (``add_next_tick_callback``, the one thread-safe entry point
of a Bokeh document). Outside a server (Jupyter, scripts) updates run directly."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

import panel as pn


class UiDispatcher:
    """Runs callables on the session's event loop (server) or directly (notebook)."""

    def __init__(self):
        self.doc = pn.state.curdoc
        self.served = bool(self.doc is not None and self.doc.session_context is not None)
        self.closed = False  # the session ended: updates are dropped

    def __call__(self, fn: Callable[[], None]) -> None:
        if self.closed:
            return
        if not self.served:
            fn()
            return
        doc = self.doc

        def run():
            from panel.io.state import set_curdoc

            with set_curdoc(doc):
                try:
                    fn()
                except Exception:  # an update must never kill the event loop
                    traceback.print_exc()

        try:
            doc.add_next_tick_callback(run)
        except Exception:  # the session is gone (page closed)
            pass


class Job:
    """A background task that can run once at a time; ``start`` returns False while it is busy."""

    def __init__(self, name: str):
        self.name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.cancelled = threading.Event()
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, target: Callable[[], None]) -> bool:
        with self._lock:
            if self.busy:
                return False
            self.cancelled.clear()
            self.error = None

            def run():
                try:
                    target()
                except BaseException as exc:  # reported by the target's own handlers; kept for callers
                    self.error = exc
                    traceback.print_exc()

            self._thread = threading.Thread(target=run, name=f"explorer-{self.name}", daemon=True)
            self._thread.start()
            return True

    def cancel(self) -> None:
        self.cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to finish; True when it is not running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy
