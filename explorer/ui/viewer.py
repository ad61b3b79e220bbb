"""3D views of crystal structures with 3Dmol.js: :class:`StructureViewer` (one interactive view: unit cell,
supercell toggle, element legend) and :class:`StructureGrid` (up to 16 small views sharing one WebGL canvas;
a click selects a structure)."""

from __future__ import annotations

from pathlib import Path

import panel as pn
import param
from panel.custom import JSComponent
from pymatgen.core import Structure

from ..spacegroups import symbol
from .assets import LIB_URL, threedmol_source
from .widgets import button_style

MAX_GRID = 16


def _served() -> bool:
    """True inside a `panel serve` session (the static route exists there), False in a notebook."""
    doc = pn.state.curdoc
    return bool(doc is not None and doc.session_context is not None)


def structure_item(structure: Structure | None, label: str = "", bad: bool = False) -> dict:
    """What the browser needs to draw one structure."""
    if structure is None:
        return {"cif": "", "label": label, "bad": bad}
    return {"cif": structure.to(fmt="cif"), "label": label, "bad": bool(bad)}


class Crystal3D(JSComponent):
    """The browser side: a 3Dmol.js view, or a grid of views on one canvas (``items`` > 1)."""

    items = param.List(default=[], doc="[{cif, label, bad}] one per view")
    supercell = param.Integer(default=1, bounds=(1, 4), doc="n: draw n×n×n cells")
    selected = param.Integer(default=-1, doc="highlighted view of a grid")
    legend = param.Boolean(default=True, doc="show the element colour legend")
    max_cols = param.Integer(default=4, bounds=(1, 8))
    lib_url = param.String(default="", doc="URL of 3Dmol-min.js on the local static route ('' = ask Python)")
    view_id = param.String(default="", doc="key of this view in window.__explorer3d (tests, benchmarks)")
    placeholder = param.String(default="No structure yet")
    drawn = param.Integer(default=0, doc="number of structures drawn (set by the browser)")
    prewarm = param.Integer(default=0, bounds=(0, 64), doc="while empty, build the canvas for this many views "
                            "and draw once in each, so the first real draw does not wait for shader compilation")

    _esm = Path(__file__).parent / "threedmol.js"

    def __init__(self, **params):
        params.setdefault("lib_url", LIB_URL if _served() else "")
        super().__init__(**params)
        self._click_callbacks = []

    def on_click(self, callback) -> None:
        """``callback(index)`` when a view is clicked (not dragged)."""
        self._click_callbacks.append(callback)

    def _handle_msg(self, msg) -> None:
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "need_lib":
            try:
                self._send_msg({"type": "lib", "source": threedmol_source()})
            except FileNotFoundError as exc:
                self._send_msg({"type": "lib", "source": "", "error": str(exc)})
        elif msg.get("type") == "click":
            index = int(msg.get("index", -1))
            for callback in self._click_callbacks:
                callback(index)


class StructureViewer(pn.viewable.Viewer):
    """One interactive 3D view of a pymatgen ``Structure``: rotate/zoom with the mouse, unit cell drawn,
    supercell toggle, element legend and a one-line description.

    >>> StructureViewer(structure=candidate.structure, title="candidate 0")    # in Jupyter: displays it
    """

    structure = param.ClassSelector(class_=Structure, allow_None=True, default=None)
    title = param.String(default="")
    supercell = param.Selector(default=1, objects=[1, 2, 3], doc="draw n×n×n unit cells")
    height = param.Integer(default=420, bounds=(120, 2000))
    view_id = param.String(default="")
    visible = param.Boolean(default=True)

    def __init__(self, **params):
        super().__init__(**params)
        self._view = Crystal3D(view_id=self.view_id, sizing_mode="stretch_width", height=self.height - 60,
                               min_width=240, placeholder="Select a candidate to see it here", prewarm=1)
        self._supercell = pn.widgets.RadioButtonGroup(options={"1×": 1, "2×": 2, "3×": 3}, value=self.supercell,
                                                      **button_style("light"), width=100, margin=(0, 14, 0, 2),
                                                      description="supercell: n×n×n unit cells")
        self._supercell.link(self, value="supercell", bidirectional=True)
        self._info = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 5),
                                  styles={"font-size": "12px", "color": "#444"})
        self._title = pn.pane.HTML("", margin=(0, 5), sizing_mode="stretch_width", min_width=60,
                                   styles={"font-weight": "600", "white-space": "nowrap", "overflow": "hidden",
                                           "text-overflow": "ellipsis"})
        self._update()

    @param.depends("structure", "title", "supercell", watch=True)
    def _update(self) -> None:
        s = self.structure
        self._title.object = self.title
        self._view.param.update(items=[structure_item(s)] if s is not None else [], supercell=int(self.supercell))
        self._info.object = describe(s) if s is not None else ""

    @property
    def view(self) -> Crystal3D:
        return self._view

    def __panel__(self):
        return pn.Column(pn.Row(self._title, self._supercell, sizing_mode="stretch_width"),
                         self._view, self._info, sizing_mode="stretch_width", min_height=self.height,
                         min_width=300, styles={"flex": "1 1 300px"}, visible=self.param.visible)


def describe(structure: Structure) -> str:
    """``TaWB6 · 8 atoms · a b c (Å) · V`` for the caption under a view."""
    a, b, c = structure.lattice.abc
    alpha, beta, gamma = structure.lattice.angles
    try:
        from ..representation import detect_spacegroup

        number = detect_spacegroup(structure)
        group = f" · {symbol(number)} ({number})"
    except Exception:
        group = ""
    return (f"<b>{structure.composition.reduced_formula}</b>{group} · {len(structure)} atoms · "
            f"a={a:.3f} b={b:.3f} c={c:.3f} Å · α={alpha:.1f} β={beta:.1f} γ={gamma:.1f}° · "
            f"V={structure.volume:.1f} Å³")


class StructureGrid(pn.viewable.Viewer):
    """Up to 16 small 3D views (one WebGL canvas); clicking one sets ``selected`` (its position)."""

    structures = param.List(default=[], item_type=Structure)
    labels = param.List(default=[], doc="caption per structure")
    bad = param.List(default=[], doc="True where a structure should be marked (e.g. invalid)")
    selected = param.Integer(default=-1)
    max_items = param.Integer(default=MAX_GRID, bounds=(1, MAX_GRID))
    height = param.Integer(default=520, bounds=(120, 3000))
    view_id = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self._view = Crystal3D(view_id=self.view_id, sizing_mode="stretch_width", height=self.height, min_width=240,
                               max_cols=4, placeholder="Generated candidates appear here", prewarm=self.max_items)
        self._view.on_click(self._clicked)
        self._update()

    def _clicked(self, index: int) -> None:
        self.selected = index

    @param.depends("structures", "labels", "bad", "max_items", watch=True)
    def _update(self) -> None:
        shown = self.structures[: self.max_items]
        labels = list(self.labels) + [""] * (len(shown) - len(self.labels))
        bad = list(self.bad) + [False] * (len(shown) - len(self.bad))
        self._view.items = [structure_item(s, labels[i], bad[i]) for i, s in enumerate(shown)]
        self._view.selected = self.selected

    @param.depends("selected", watch=True)
    def _select(self) -> None:
        self._view.selected = self.selected

    @property
    def view(self) -> Crystal3D:
        return self._view

    def __panel__(self):
        return self._view
