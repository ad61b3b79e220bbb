"""The Relax card: relax the checked candidates (or all) with M3GNet through ``explorer.relax.irelax``, step by step
with a progress bar and a Stop button; results go into the candidates (table, hull, 3D view)."""

from __future__ import annotations

import math
import time
import warnings

import panel as pn
import param

from .controls import JobControls
from .workspace import Workspace, error_text, message


def apply_relaxation(candidate, result) -> None:
    """Store a :class:`~explorer.relax.RelaxResult` in ``candidate.extra`` (what the table, the hull and export
    read)."""
    extra = candidate.extra
    extra["relax_status"] = result.status
    energy = result.energy_per_atom
    extra["relaxed_energy_per_atom"] = round(float(energy), 6) if energy is not None and math.isfinite(energy) else None
    fe = result.formation_energy_per_atom
    extra["formation_energy"] = round(float(fe), 6) if fe is not None and math.isfinite(fe) else None
    extra["relax_steps"] = result.steps
    extra["relax_error"] = result.error
    extra["relaxed_structure"] = result.structure
    extra["relax_warning"] = getattr(result, "warning", "")
    extra.pop("e_above_hull", None)


def apply_library_relaxation(candidate) -> None:
    """A candidate ``explorer.modify`` relaxed (``extra["relaxation"]``) shown as relaxed: its structure is the
    relaxed one, its energies go where the table, the hull and export read them."""
    info = (candidate.extra or {}).get("relaxation")
    if not info:
        return
    from ..relax import RelaxResult

    result = RelaxResult(index=candidate.index, label=f"#{candidate.index}", status=info.get("status", ""),
                         energy_per_atom=info.get("energy_per_atom") if info.get("energy_per_atom") is not None
                         else math.nan, formation_energy_per_atom=info.get("formation_energy_per_atom"),
                         steps=int(info.get("steps", 0)), structure=candidate.structure,
                         error=info.get("error", ""), warning=info.get("warning", ""))
    apply_relaxation(candidate, result)


class RelaxPanel(pn.viewable.Viewer):
    """Relaxation settings and the Relax / Stop buttons."""

    relax_fmax = param.Number(default=0.1, bounds=(0.005, 2.0), step=0.005)
    relax_steps = param.Integer(default=200, bounds=(1, 5000))
    formation = param.Selector(default="references", objects=["references", "eform"])
    potential = param.String(default="m3gnet")

    SETTINGS = ("relax_fmax", "relax_steps", "formation")

    def __init__(self, workspace: Workspace, **params):
        super().__init__(**params)
        self.workspace = workspace
        self.job = workspace.job("relax")
        w = pn.widgets
        self.fmax_input = w.FloatInput.from_param(self.param.relax_fmax, label="fmax (eV/Å)", width=90)
        self.steps_input = w.IntInput.from_param(self.param.relax_steps, label="max steps", width=90)
        self.formation_select = w.Select.from_param(self.param.formation, label="E_f from", width=110)
        self.controls = JobControls(workspace, "relax", "Relax", "Relaxing…", "success", self.relax,
                                    initial="Relaxes the checked candidates (or all of them) with M3GNet.")
        self.relax_button, self.stop_button, self.status = (self.controls.button, self.controls.stop_button,
                                                             self.controls.status)

    def __panel__(self):
        return pn.Column(pn.Row(self.fmax_input, self.steps_input, self.formation_select), self.controls,
                         sizing_mode="stretch_width")

    def settings_for_modify(self) -> dict:
        """The relaxation ``explorer.modify`` runs on modified candidates."""
        return {"relax_steps": int(self.relax_steps), "relax_fmax": float(self.relax_fmax), "formation": self.formation}

    def relax(self, wait: bool = False, indices: list[int] | None = None) -> bool:
        """Relax the checked candidates (or all) in the background; False when a relaxation is already running
        or there is nothing to relax."""
        workspace = self.workspace
        if self.job.busy:
            return False
        if not workspace.candidates:
            self.status.object = message("warn", "Nothing to relax yet.")
            return False
        chosen = list(indices) if indices is not None else workspace.chosen()
        candidates = list(workspace.candidates)
        chosen = [i for i in chosen if 0 <= i < len(candidates)]
        structures = [candidates[i].structure for i in chosen]
        settings = {"fmax": float(self.relax_fmax), "steps": int(self.relax_steps), "formation": self.formation,
                    "potential": self.potential}
        self.controls.begin(len(chosen) * 100, f"loading the potential ({settings['potential']})…")
        job, dispatch = self.job, workspace.dispatch
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
                        if job.cancelled.is_set() or workspace.closed:
                            events.close()
                            break
                        if isinstance(event, RelaxStep):
                            now = time.perf_counter()
                            if now - last[0] < 0.25:
                                continue
                            last[0] = now
                            value = int(100 * (done + min(event.step / max(settings["steps"], 1), 0.99)))
                            text = (f"{done}/{len(chosen)} done · {event.label}: step {event.step}, "
                                    f"E = {event.energy_per_atom:.3f} eV/atom, fmax {event.fmax:.3f} eV/Å")
                            dispatch(lambda v=value, t=text: self.controls.show(v, t))
                        elif isinstance(event, RelaxDone):
                            done = event.done
                            target = chosen[event.index]
                            dispatch(lambda r=event.result, t=target, d=done: self._relaxed(candidates, t, r, d))
                        else:  # a reference element was relaxed / read
                            text = f"reference {event.element}: {event.energy_per_atom:.3f} eV/atom ({event.source})"
                            dispatch(lambda t=text: self.controls.show(None, t))
            except Exception as exc:
                text = error_text(exc)
                dispatch(lambda: self.controls.end("error", text))
                return
            stopped = job.cancelled.is_set()
            text = (f"{'stopped after' if stopped else 'relaxed'} {done}/{len(chosen)} in "
                    f"{time.perf_counter() - started:.1f} s")
            dispatch(lambda: self.controls.end("ok", text))

        started_ok = job.start(work)
        if wait:
            job.wait()
        return started_ok

    def _relaxed(self, candidates, position: int, result, done: int) -> None:
        if self.workspace.candidates != candidates:
            return  # new candidates arrived meanwhile
        apply_relaxation(candidates[position], result)
        progress = self.controls.progress
        progress.value = min(progress.max, 100 * done)
        self.workspace.changed()
