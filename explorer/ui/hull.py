"""The convex-hull plot (HoloViews/Bokeh) of a chemical system with the candidates on it.

The hull comes from :func:`explorer.relax.hull_analysis` (pymatgen PhaseDiagram over Materials Project
formation energies when the data directory has them, else the elements alone; the selector above the plot picks
Materials Project, the elements, AFLOW (its AFLUX API, cached per system) or an uploaded CSV of composition,
formation_energy_per_atom). A candidate sits at its relaxed
formation energy once relaxed, before that at its target energy (drawn in another colour), so relaxation moves
the points. Hover shows formula, energy and energy above hull; a click selects the candidate (``selected``).

Views: ``composition`` (binary: formation energy against composition with the hull line; ternary: the
composition triangle with the hull tie lines) and ``energy`` (formation energy against energy above hull —
any number of elements; the hull is the line E_hull = 0). ``auto`` = composition for binaries, else energy.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd
import panel as pn
import param

from ..errors import ExplorerInputError
from .widgets import button_style

STATES = {"target (not relaxed)": "#f4a582", "relaxed": "#b2182b"}
REFERENCE_CHOICES = (("hull: MP, else elements", "auto"), ("Materials Project", "mp"), ("elements only", "elements"),
                     ("AFLOW (online, cached)", "aflow"))
_HOVER = [("candidate", "@label"), ("formula", "@formula"), ("E_f (eV/atom)", "@formation_energy{0.000}"),
          ("E above hull (eV/atom)", "@e_above_hull{0.000}"), ("energy", "@state")]


def chemical_system(formula: str) -> str:
    """``"TaWB6"`` -> ``"B-Ta-W"`` (sorted symbols)."""
    from pymatgen.core import Composition

    try:
        composition = Composition(formula)
    except Exception:
        raise ExplorerInputError(f"cannot parse formula {formula!r}") from None
    return "-".join(sorted(e.symbol for e in composition.elements))


def default_reference() -> str:
    """'mp' when the MP formation energies are in the data directory, else 'elements'."""
    from ..config import data_file
    from ..relax.hull import MP_FORMATION_ENERGIES

    try:
        data_file(MP_FORMATION_ENERGIES)
        return "mp"
    except ExplorerInputError:
        return "elements"


def hull_energy(formula: str, reference: str = "auto") -> float | None:
    """Formation energy (eV/atom) of the hull at the composition of ``formula``; None when unknown (no MP data:
    the hull of the bare elements says nothing)."""
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.core import Composition

    from ..relax import reference_entries

    reference = default_reference() if reference == "auto" else reference
    if reference != "mp":
        return None
    entries = reference_entries(chemical_system(formula), "mp")
    return float(PhaseDiagram(entries).get_hull_energy_per_atom(Composition(formula)))


def _draw_on_canvas(plot, element) -> None:
    """Bokeh's 2D canvas, not WebGL: a few hundred points, and on software WebGL (headless or remote
    browsers) every WebGL repaint costs a slow copy to the page (measured: 0.75 s of the first click)."""
    plot.state.output_backend = "canvas"


class HullPlot(pn.viewable.Viewer):
    """Hull of ``chemsys`` with ``points`` (dicts: ``index``, ``label``, ``formula``, ``energy``, ``relaxed``) on
    it. ``selected`` is the ``index`` of the clicked point. ``rows`` holds the energies above hull found."""

    chemsys = param.String(default="", doc="e.g. 'B-Ta-W'")
    reference = param.Selector(default="auto", objects=["auto", "mp", "elements", "aflow"], check_on_set=False,
                               doc="auto, mp, elements, aflow, or the path of a CSV of composition, formation "
                                   "energy per atom (an uploaded one)")
    view = param.Selector(default="auto", objects=["auto", "composition", "energy"])
    points = param.List(default=[])
    selected = param.Integer(default=-1)
    rows = param.List(default=[], doc="per point: dict(index, formation_energy, e_above_hull, decomposition)")
    height = param.Integer(default=430, bounds=(150, 3000))
    message = param.String(default="")

    def __init__(self, **params):
        import holoviews as hv

        if "bokeh" not in hv.Store.loaded_backends():
            hv.extension("bokeh", logo=False)
        super().__init__(**params)
        self._pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", height=self.height, min_width=300)
        self._note = pn.pane.HTML("", sizing_mode="stretch_width", styles={"font-size": "12px", "color": "#555"},
                                  margin=(0, 5))
        self._view_toggle = pn.widgets.RadioButtonGroup(options=["auto", "composition", "energy"], value=self.view,
                                                        **button_style("light"), width=230)
        self._view_toggle.link(self, value="view", bidirectional=True)
        self._reference_select = pn.widgets.Select(options=dict(REFERENCE_CHOICES), value=self.reference, width=200,
                                                   margin=(5, 5))
        self._reference_select.link(self, value="reference", bidirectional=True)
        self._reference_file = pn.widgets.FileInput(accept=".csv,.gz", multiple=False, width=200, margin=(5, 5))
        self._reference_file.param.watch(self._uploaded_reference, "value")
        self._uploads: dict[str, str] = {}  # stored path -> the uploaded file's name
        self._pipe = None
        self._ring = None
        self._elements: tuple[str, ...] = ()
        self._mode = "energy"
        self._frame = pd.DataFrame()
        self._base_note = ""
        # one watcher for everything the plot shows: a batched change (a new chemical system with its points) is
        # one rebuild with the data in it, never a data update to the plot being replaced followed by another
        # to the new one (that pair, in one message, froze the browser in Bokeh's render loop)
        self.param.watch(self._changed, ["chemsys", "reference", "view", "height", "points"])
        self._rebuild()

    # ------------------------------------------------------------------ geometry
    def _resolved_reference(self) -> str:
        return default_reference() if self.reference == "auto" else self.reference

    def _xy(self, row) -> tuple[float, float]:
        elements = self._elements
        if self._mode == "binary":
            return row.fractions[elements[1]], row.formation_energy_per_atom
        if self._mode == "ternary":
            b, c = row.fractions[elements[1]], row.fractions[elements[2]]
            return b + c / 2, c * math.sqrt(3) / 2
        return row.formation_energy_per_atom, row.e_above_hull

    def _analysis(self, points):
        from ..relax import hull_analysis

        items = [(str(p.get("index", i)), p["formula"], float(p["energy"])) for i, p in enumerate(points)
                 if p.get("energy") is not None and math.isfinite(float(p["energy"]))]
        return hull_analysis(items, self.chemsys, reference=self._resolved_reference())

    # ------------------------------------------------------------------ building
    def _changed(self, *events) -> None:
        if any(e.name != "points" for e in events):
            self._rebuild()
        else:
            self._update_points()

    def _rebuild(self) -> None:
        import holoviews as hv

        from ..relax import hull_figure

        self._pipe = None
        if not self.chemsys:
            self._pane.object = None
            self._note.object = "The hull appears once candidates exist."
            return
        try:
            base_analysis = self._analysis([])
        except ExplorerInputError as exc:
            self._pane.object = None
            self._note.object = f"No hull: {exc}"
            self.message = str(exc)
            return
        self._elements = base_analysis.chemsys
        n = len(self._elements)
        view = self.view if self.view != "auto" else ("composition" if n == 2 else "energy")
        self._mode = {2: "binary", 3: "ternary"}.get(n, "energy") if view == "composition" else "energy"
        if self._mode == "energy":
            base = self._energy_base(hv, base_analysis)
        else:
            base = hull_figure(base_analysis)
        kdims = {"binary": ["x", "formation_energy"], "ternary": ["x", "y"]}.get(
            self._mode, ["formation_energy", "e_above_hull"])
        self._kdims = kdims
        self._frame, rows = self._placed()  # the first data go in with the plot (no update right after it)
        self._pipe = hv.streams.Pipe(data=self._frame)
        self._ring_pipe = hv.streams.Pipe(data=self._ring_frame())
        vdims = ["label", "formula", "formation_energy", "e_above_hull", "state", "index"]
        vdims = [d for d in vdims if d not in kdims]

        def candidates(data):
            # colours per row (not a colour mapper with a legend: Bokeh cannot draw the legend of a category
            # that has no rows yet)
            return hv.Points(data, kdims=kdims, vdims=vdims).opts(
                color=hv.dim("state").categorize(STATES, default="#999999"), size=13, marker="diamond",
                line_color="black", tools=["tap", "hover"], hover_tooltips=_HOVER, nonselection_alpha=0.5,
                selection_line_color="#0072B5", selection_line_width=2, show_legend=False, framewise=True)

        def ring(data):
            return hv.Points(data, kdims=kdims, vdims=vdims).opts(
                size=26, marker="circle", fill_alpha=0, line_color="#0072B5", line_width=2.5, color=None,
                tools=[], show_legend=False, framewise=True)

        layer = hv.DynamicMap(candidates, streams=[self._pipe])
        ring_layer = hv.DynamicMap(ring, streams=[self._ring_pipe])
        self._tap = hv.streams.Selection1D(source=layer)
        self._tap.add_subscriber(self._tapped)
        overlay = (base * layer * ring_layer).opts(responsive=True, height=self.height, title="",
                                                   legend_position="bottom_right", toolbar="right",
                                                   hooks=[_draw_on_canvas])
        if self._mode == "energy":
            overlay = overlay.opts(xlabel="formation energy (eV/atom)", ylabel="energy above hull (eV/atom)")
        if self._mode == "binary":
            first, second = self._elements
            overlay = overlay.opts(xlabel=f"x in {first}(1-x) {second}(x)", ylabel="formation energy (eV/atom)")
        if self._mode == "ternary":
            overlay = overlay.opts(data_aspect=None, xaxis=None, yaxis=None, legend_position="top_right")
        self._pane.object = overlay
        source = self.reference_source()
        swatch = '<span style="color:{};font-size:14px">◆</span>'
        self._base_note = (f"Hull of <b>{'-'.join(self._elements)}</b> from {source}. Candidates: "
                           f"{swatch.format(STATES['target (not relaxed)'])} at the target energy (not relaxed), "
                           f"{swatch.format(STATES['relaxed'])} relaxed. Click a point to select it.")
        self._note.object = self._base_note + self._unrelaxed_note()
        self.rows = rows

    def _unrelaxed_note(self) -> str:
        """Unrelaxed candidates sit at their target energy: several share one point — say so."""
        energies: dict[float, int] = {}
        for p in self.points:
            if not p.get("relaxed") and p.get("energy") is not None and math.isfinite(float(p["energy"])):
                key = round(float(p["energy"]), 3)
                energies[key] = energies.get(key, 0) + 1
        shared = {e: n for e, n in energies.items() if n > 1}
        if not shared:
            return ""
        where = ", ".join(f"{n} at {e:+.2f} eV/atom" for e, n in sorted(shared.items()))
        return (f" <b>Not relaxed yet</b>: {where} — drawn on one point per target energy and formula; relax them to "
                "place each at its own energy.")

    def _energy_base(self, hv, analysis):
        records = [{"formation_energy": r.formation_energy_per_atom, "e_above_hull": r.e_above_hull,
                    "label": r.label, "formula": r.formula} for r in analysis.references]
        frame = pd.DataFrame(records, columns=["formation_energy", "e_above_hull", "label", "formula"])
        hull = hv.HLine(0).opts(color="black", line_dash="dashed", line_width=1)
        refs = hv.Points(frame, kdims=["formation_energy", "e_above_hull"], vdims=["label", "formula"],
                         label="references").opts(
            color="gray", size=7, alpha=0.7, tools=["hover"],
            hover_tooltips=[("entry", "@label"), ("formula", "@formula"),
                            ("E_f (eV/atom)", "@formation_energy{0.000}"), ("E above hull", "@e_above_hull{0.000}")])
        return (hull * refs).opts(xlabel="formation energy (eV/atom)", ylabel="energy above hull (eV/atom)",
                                  show_grid=True, title=f"{'-'.join(analysis.chemsys)}")

    def _empty(self) -> pd.DataFrame:
        columns = list(dict.fromkeys([*getattr(self, "_kdims", []), "label", "formula", "formation_energy",
                                      "e_above_hull", "state", "index"]))
        return pd.DataFrame({c: [] for c in columns})

    # ------------------------------------------------------------------ updates
    def _placed(self) -> tuple[pd.DataFrame, list[dict]]:
        """(plot records, rows) of the current points on the current hull."""
        try:
            analysis = self._analysis(self.points)
        except ExplorerInputError as exc:
            self._note.object = f"No hull placement: {exc}"
            return self._empty(), []
        usable = [p for p in self.points if p.get("energy") is not None and math.isfinite(float(p["energy"]))]
        records, rows = [], []
        for point, row in zip(usable, analysis.candidates):
            x, y = self._xy(row)
            records.append({self._kdims[0]: x, self._kdims[1]: y, "label": point.get("label", row.label),
                            "formula": row.formula, "formation_energy": row.formation_energy_per_atom,
                            "e_above_hull": row.e_above_hull,
                            "state": "relaxed" if point.get("relaxed") else "target (not relaxed)",
                            "index": int(point.get("index", 0))})
            rows.append({"index": int(point.get("index", 0)), "formation_energy": row.formation_energy_per_atom,
                         "e_above_hull": row.e_above_hull, "decomposition": row.decomposition_text(),
                         "relaxed": bool(point.get("relaxed"))})
        return pd.DataFrame(records, columns=self._empty().columns), rows

    def _ring_frame(self) -> pd.DataFrame:
        frame = self._frame
        if len(frame):
            frame = frame[frame["index"] == self.selected]
        return frame if len(frame) else self._empty()

    def _update_points(self) -> None:
        if self._pipe is None:
            self.rows = []
            return
        self._frame, rows = self._placed()
        self._pipe.send(self._frame)
        self._note.object = self._base_note + self._unrelaxed_note()
        self.rows = rows
        self._update_ring()

    @param.depends("selected", watch=True)
    def _update_ring(self) -> None:
        if self._pipe is not None:
            self._ring_pipe.send(self._ring_frame())

    def _tapped(self, index) -> None:
        if index and len(self._frame) > index[0]:
            self.selected = int(self._frame.iloc[index[0]]["index"])

    def _uploaded_reference(self, event) -> None:
        """An uploaded CSV of composition, formation_energy_per_atom becomes the hull's references."""
        if not event.new:
            return
        from ..config import cache_dir
        from ..fileio import atomic_write_bytes

        name = self._reference_file.filename or "references.csv"
        suffix = ".csv.gz" if name.endswith(".gz") else ".csv"
        path = atomic_write_bytes(cache_dir() / "uploads" / f"{hashlib.sha256(event.new).hexdigest()[:16]}{suffix}",
                                  event.new)
        options = {k: v for k, v in REFERENCE_CHOICES}
        options[f"file: {name}"] = str(path)
        self._uploads[str(path)] = name
        self._reference_select.options = options
        self.reference = str(path)

    def reference_source(self) -> str:
        """Words for where the hull's references come from."""
        reference = self._resolved_reference()
        return {"mp": "Materials Project", "elements": "the elements only (no MP data)",
                "aflow": "AFLOW (AFLUX API, cached)", "ml": "ML-relaxed MP/WBM structures"}.get(
            reference, f"your file {self._uploads.get(reference, Path(reference).name)}")

    def __panel__(self):
        controls = pn.Row(self._reference_select, self._reference_file, sizing_mode="stretch_width")
        return pn.Column(pn.Row(self._note, self._view_toggle, sizing_mode="stretch_width"), controls, self._pane,
                         sizing_mode="stretch_width")
