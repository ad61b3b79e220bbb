"""What the app prepares in the background when it starts, once per process, and says on every page while it does:
the generation model (weights and torch's first pass), the M3GNet potential, the elemental references of the
chosen formula's elements (relaxed once per potential, cached on disk), and — when the data directory holds the
structure files and their arrays are not cached yet — the prototype library (minutes, once; with a Stop).

Two background threads: one for the quick items, in order, and one for the library, so that a new formula's
references never wait for it.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from dataclasses import dataclass, field

import panel as pn

from .widgets import button_style
from .workspace import message


class Stopped(Exception):
    """Raised from a progress callback when the user pressed Stop."""


@dataclass
class Task:
    key: str
    label: str
    state: str = "waiting"  # waiting, running, done, failed, stopped
    done: int = 0
    total: int = 0
    detail: str = ""
    error: str = ""
    started: float = 0.0
    seconds: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, done: int, total: int, detail: str = "") -> None:
        """Progress from the work; raises :class:`Stopped` once Stop was pressed."""
        if self.cancel.is_set():
            raise Stopped
        self.done, self.total, self.detail = int(done), int(total), detail


class Preparation:
    """The process's preparation tasks (thread-safe)."""

    def __init__(self):
        self.tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue] = {}

    def start(self, key: str, label: str, work, lane: str = "quick") -> Task:
        """Queue ``work(task)`` under ``key`` unless it is queued, running or done already."""
        with self._lock:
            task = self.tasks.get(key)
            if task is not None and task.state in ("waiting", "running", "done"):
                return task
            task = Task(key, label)
            self.tasks[key] = task
            if lane not in self._queues:
                self._queues[lane] = queue.Queue()
                threading.Thread(target=self._run_lane, args=(self._queues[lane],), daemon=True,
                                 name=f"explorer-prepare-{lane}").start()
            self._queues[lane].put((task, work))
            return task

    @staticmethod
    def _run_lane(jobs: queue.Queue) -> None:
        while True:
            task, work = jobs.get()
            if task.cancel.is_set():
                task.state = "stopped"
                continue
            task.state, task.started = "running", time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    work(task)
                task.state = "done"
            except Stopped:
                task.state = "stopped"
            except Exception as exc:  # the user meets the real error, with its message, when the part is needed
                task.state, task.error = "failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            task.seconds = time.perf_counter() - task.started

    def stop(self, key: str) -> None:
        task = self.tasks.get(key)
        if task is not None and task.state in ("waiting", "running"):
            task.cancel.set()

    def state(self, key: str) -> str:
        task = self.tasks.get(key)
        return task.state if task is not None else ""

    def busy(self) -> list[Task]:
        return [t for t in list(self.tasks.values()) if t.state in ("waiting", "running")]


PREPARATION = Preparation()
LIBRARY = "prototypes"


def prepare(formula: str | None = None, model: str | None = None, potential: str = "m3gnet") -> None:
    """Queue what the app will need: the model, the potential, the references of ``formula``'s elements and the
    prototype library (see the module docstring)."""
    import explorer

    from ..prototypes import load_prototype_library, prototype_library_available, prototype_library_ready

    PREPARATION.start(f"model {model or ''}", "loading the generation model",
                      lambda task: explorer.generate("NaCl", 225, -2.0, n=1, model=model, steps=2, seed=0,
                                                     network_only=True))  # the network alone: the library has its lane
    PREPARATION.start(f"potential {potential}", "loading the M3GNet potential",
                      lambda task: _shared(potential))
    if formula:
        prepare_references(formula, potential)
    if prototype_library_available() and not prototype_library_ready():
        def build(task):
            def progress(done, total, name):
                task.report(done, total, name.split(".")[0])

            load_prototype_library(callback=progress)

        PREPARATION.start(LIBRARY, "building the prototype library from the data directory (once)", build,
                          lane="library")


def _shared(potential):
    from ..relax import shared_potential

    return shared_potential(potential)


def prepare_references(formula: str, potential: str = "m3gnet") -> None:
    """Relax (or read from the cache) the elemental references of ``formula``'s elements in the background."""
    from pymatgen.core import Composition

    try:
        elements = sorted(e.symbol for e in Composition(formula).elements)
    except Exception:
        return
    if not elements:
        return

    def work(task):
        from ..relax import ElementalReferences

        loaded = _shared(potential)
        references = ElementalReferences(loaded)
        for i, element in enumerate(elements):
            task.report(i, len(elements), element)
            if not loaded.unsupported_elements([element]):
                references.get(element)
        task.report(len(elements), len(elements))

    PREPARATION.start(f"references {potential} {'-'.join(elements)}",
                      f"elemental references of {', '.join(elements)} (relaxed once, then cached)", work)


class PreparationStatus(pn.viewable.Viewer):
    """One line on the page: what is still being prepared (with a Stop for the prototype library), or "ready"."""

    def __init__(self, served: bool = False):
        super().__init__()
        self.line = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.stop_button = pn.widgets.Button(label="Stop", **button_style("warning"), width=60, visible=False,
                                             description="stop building the prototype library (Modify and Generate "
                                                         "then use the networks only)")
        self.stop_button.on_click(lambda event: PREPARATION.stop(LIBRARY))
        self._callback = None
        self.update()
        if served:
            self._callback = pn.state.add_periodic_callback(self.update, period=700)

    def __panel__(self):
        return pn.Row(self.line, self.stop_button, sizing_mode="stretch_width")

    def update(self) -> None:
        busy = PREPARATION.busy()
        library = PREPARATION.tasks.get(LIBRARY)
        self.stop_button.visible = library is not None and library.state in ("waiting", "running")
        if busy:
            running = next((t for t in busy if t.state == "running"), busy[0])
            progress = ""
            if running.total:
                progress = f": {running.done:,} / {running.total:,}" + (f" ({running.detail})" if running.detail
                                                                        else "")
            more = f" · {len(busy) - 1} more to do" if len(busy) > 1 else ""
            self.line.object = message("info", f"Preparing — {running.label}{progress}{more}")
            return
        notes = []
        if library is not None and library.state == "stopped":
            notes.append("prototype library stopped: the networks only")
        failed = [t for t in PREPARATION.tasks.values() if t.state == "failed"]
        notes += [f"{t.label} failed: {t.error}" for t in failed]
        self.line.object = message("warn" if notes else "ok", "Ready" + (" · " + " · ".join(notes) if notes else ""))
