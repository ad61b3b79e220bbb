"""The main area: the candidates table, the large 3D view (and the uploaded structure in Modify mode), the grid of
3D views and the convex hull — all showing the session's :class:`~explorer.ui.workspace.Workspace`, all selecting
the same candidate."""

from __future__ import annotations

import panel as pn

from ..errors import ExplorerInputError
from ..spacegroups import symbol
from .hull import HullPlot, chemical_system
from .table import CandidateTable
from .viewer import MAX_GRID, StructureGrid, StructureViewer, describe
from .workspace import Workspace, message


def grid_label(i: int, c) -> str:
    mark = "✓" if c.valid else "✗"
    try:
        group = symbol(c.spacegroup_detected)
    except Exception:
        group = str(c.spacegroup_detected)
    label = f"#{i} {group} {mark}"
    if c.extra.get("e_above_hull") is not None:
        label += f" Eₕ{c.extra['e_above_hull']:+.2f}"
    return label


def hull_points(candidates) -> list[dict]:
    """Hull plot points: a relaxed candidate at its formation energy, an unrelaxed generated one at its target
    energy; an unrelaxed modified one is left out (its target is an energy change)."""
    points = []
    for i, c in enumerate(candidates):
        relaxed = c.extra.get("formation_energy")
        if c.extra.get("kind") == "modified" and relaxed is None:
            continue
        energy = relaxed if relaxed is not None else c.target_energy
        points.append({"index": i, "label": f"#{i}", "formula": c.structure.composition.formula,
                       "energy": float(energy), "relaxed": relaxed is not None})
    return points


class ResultsView(pn.viewable.Viewer):
    def __init__(self, workspace: Workspace, **params):
        super().__init__(**params)
        self.workspace = workspace
        self.table = CandidateTable(height=340)
        self.table.param.watch(lambda e: self._set_focus(e.new), "focus")
        self.table.param.watch(lambda e: setattr(workspace, "selection", list(e.new)), "selection")
        self.viewer = StructureViewer(title="Selected candidate", height=470, view_id="large")
        self.original_viewer = StructureViewer(title="Original (uploaded)", height=470, view_id="original",
                                               visible=workspace.mode == "Modify")
        self.grid = StructureGrid(height=520, view_id="grid")
        self.grid.param.watch(lambda e: self._set_focus(e.new), "selected")
        self.hull = HullPlot(height=440)
        self.hull.param.watch(lambda e: self._set_focus(e.new), "selected")
        self.hull.param.watch(self._hull_rows, "rows")
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        workspace.param.watch(lambda e: self.show(), "candidates")
        workspace.param.watch(lambda e: self.refresh(), "revision")
        workspace.param.watch(lambda e: self._focus_changed(), "focus")
        workspace.param.watch(lambda e: self._mode_changed(), "mode")
        workspace.param.watch(lambda e: self._original_changed(), "original")
        workspace.param.watch(lambda e: self._selection_changed(), "selection")
        self._original_changed()
        self.show()

    def __panel__(self):
        # Every size here comes from the page, none from the content: the table fills its row and fits its columns
        # to it, and the two views below share their row by fixed fractions.
        fixed = {"flex": "1 1 0", "min-width": "0"}
        table = pn.Column(pn.Row(pn.pane.HTML("<b>Candidates</b>", margin=(0, 5)), self.summary,
                                 sizing_mode="stretch_width"), self.table, sizing_mode="stretch_width")
        views = pn.Row(pn.Column(self.original_viewer, self.viewer, sizing_mode="stretch_width", styles=fixed),
                       pn.Column(pn.pane.HTML(f"<b>Candidates in 3D</b> (first {MAX_GRID}; click one to select it)",
                                              margin=(0, 5)), self.grid, sizing_mode="stretch_width",
                                 styles={**fixed, "flex": "1.3 1 0"}),
                       sizing_mode="stretch_width", styles={"gap": "14px"})
        hull = pn.Column(pn.pane.HTML("<b>Convex hull</b>", margin=(0, 5)), self.hull, sizing_mode="stretch_width")
        return pn.Column(table, views, hull, sizing_mode="stretch_width")

    # ------------------------------------------------------------------ updates
    def show(self) -> None:
        """New candidates: everything redrawn."""
        candidates = self.workspace.candidates
        # the 3D grid first: the page applies updates in this order, and filling the table takes it ~0.5 s
        shown = candidates[:MAX_GRID]
        self.grid.param.update(structures=[c.structure for c in shown],
                               labels=[grid_label(i, c) for i, c in enumerate(shown)],
                               bad=[not c.valid for c in shown])
        self.table.param.update(candidates=candidates, selection=[])
        self._update_hull()
        self._update_summary()
        self._focus_changed()

    def refresh(self) -> None:
        """Candidates changed in place (relaxation, novelty)."""
        self.table.refresh()
        self._update_hull()
        self._update_summary()
        self._update_labels()
        self._focus_changed()

    def _update_labels(self) -> None:
        self.grid.labels = [grid_label(i, c) for i, c in enumerate(self.workspace.candidates[:MAX_GRID])]

    def _update_summary(self) -> None:
        c = self.workspace.candidates
        if not c:
            self.summary.object = message("info", "No candidates yet: choose a composition and press Generate.")
            return
        relaxed = [x for x in c if x.extra.get("formation_energy") is not None]
        novel = [x for x in c if x.extra.get("novel") is True]
        text = f"{len(c)} candidates · {sum(x.valid for x in c)} valid · {len(relaxed)} relaxed"
        if any(x.extra.get("novel") is not None for x in c):
            text += f" · {len(novel)} novel"
        placed = [x for x in relaxed if x.extra.get("e_above_hull") is not None]
        if placed:
            low = min(placed, key=lambda x: x.extra["e_above_hull"])
            text += f" · lowest E above hull {low.extra['e_above_hull']:+.3f} eV/atom (#{c.index(low)})"
        self.summary.object = message("info", text)

    def _update_hull(self) -> None:
        candidates = self.workspace.candidates
        if not candidates:
            self.hull.points = []
            return
        try:
            chemsys = chemical_system(candidates[0].structure.composition.formula)
        except ExplorerInputError:
            return
        self.hull.param.update(chemsys=chemsys, points=hull_points(candidates))

    def show_system(self, chemsys: str | None) -> None:
        """Before any candidates exist, the hull shows the chosen chemical system's known phases (so the browser
        builds the plot now, not on the first click)."""
        if not self.workspace.candidates and chemsys and chemsys != self.hull.chemsys:
            self.hull.param.update(points=[], chemsys=chemsys)

    def _hull_rows(self, event) -> None:
        candidates, changed = self.workspace.candidates, False
        for row in event.new:
            i = row["index"]
            if 0 <= i < len(candidates) and row.get("relaxed"):
                extra = candidates[i].extra
                value = round(float(row["e_above_hull"]), 6)
                if extra.get("e_above_hull") != value:
                    extra["e_above_hull"] = value
                    extra["decomposition"] = row.get("decomposition", "")
                    changed = True
        if changed:
            self.table.refresh()
            self._update_summary()
            self._update_labels()

    def _set_focus(self, index) -> None:
        if index is not None and 0 <= index < len(self.workspace.candidates):
            self.workspace.focus = int(index)

    def _focus_changed(self) -> None:
        candidates, i = self.workspace.candidates, self.workspace.focus
        if not (0 <= i < len(candidates)):
            self.viewer.param.update(structure=None, title="Selected candidate")
            return
        c = candidates[i]
        relaxed = c.extra.get("relaxed_structure")
        state = "relaxed" if relaxed is not None else "as generated"
        self.viewer.param.update(structure=relaxed or c.structure, title=f"Candidate #{i} ({state})")
        self.grid.selected = i if i < MAX_GRID else -1
        self.hull.selected = i
        if self.table.focus != i:
            self.table.focus = i

    def _selection_changed(self) -> None:
        if self.table.selection != self.workspace.selection:
            self.table.selection = list(self.workspace.selection)

    def _mode_changed(self) -> None:
        self.original_viewer.visible = self.workspace.mode == "Modify"

    def _original_changed(self) -> None:
        s = self.workspace.original
        self.original_viewer.param.update(structure=s, title="Original (uploaded)")
        if s is not None:
            self.original_viewer._info.object = describe(s)
