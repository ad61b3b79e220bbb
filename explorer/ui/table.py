"""The candidates table (Tabulator): formula, requested vs detected space group, target and relaxed energy,
energy above hull, minimum distance, valid, novel. Checkboxes choose candidates for export/relaxation; a click
on a row focuses that candidate."""

from __future__ import annotations

import math

import pandas as pd
import panel as pn
import param

from ..candidates import Candidate
from ..spacegroups import symbol

COLUMNS = ["#", "formula", "SG requested", "SG detected", "target E", "relaxed E", "E above hull", "min dist",
           "valid", "novel", "source", "status"]
# shares of the table's width (fit_columns: the table fills its row, whatever the content)
WIDTHS = {"#": "4%", "formula": "8%", "SG requested": "10%", "SG detected": "10%", "target E": "6.5%",
          "relaxed E": "6.5%", "E above hull": "6.5%", "min dist": "6%", "valid": "5%", "novel": "5.5%",
          "source": "10%", "status": "13%"}  # 91 % in all: the checkbox column and the scrollbar take the rest


def _sg(number: int) -> str:
    try:
        return f"{int(number)} {symbol(int(number))}"
    except Exception:
        return str(number)


def _number(value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def candidate_source(candidate: Candidate) -> str:
    """Where a candidate comes from: "prototype CsCl mp-22865" (a known structure, elements substituted; "= the
    uploaded structure" when it is that one; "distorted from Fm-3m" for one of a parent group), "random
    symmetric crystal (pyxtal)" or "network <its name>" (", relaxed (M3GNet)" when the pipeline relaxed it)."""
    extra = candidate.extra or {}
    if extra.get("prototype"):
        same = extra["prototype"].get("same_as_reference")
        return f"prototype {candidate.source()}" + (" = the uploaded structure" if same else "")
    if candidate.model == "random-symmetric":
        return "random symmetric crystal (pyxtal)"
    relaxed = f", {candidate.source()}" if candidate.source() else ""
    return (f"network {candidate.model}" if candidate.model else "network") + relaxed


def candidate_status(candidate: Candidate) -> str:
    """Relaxation status (or "generated" / "modified, ΔE …"), and why a candidate is not valid."""
    extra = candidate.extra or {}
    status = extra.get("relax_status") or (f"modified, ΔE {candidate.target_energy:+.2f}"
                                           if extra.get("kind") == "modified" else "generated")
    if extra.get("off_group"):
        status += f" · not in {candidate.spacegroup_requested}: no prototype or symmetric crystal to replace it"
    if not candidate.valid:
        status += f" · invalid: {candidate.invalid_reason or 'atoms too close'}"
    if extra.get("relax_warning"):
        status += f" · {extra['relax_warning']}"
    return status


def candidate_row(position: int, candidate: Candidate) -> dict:
    """One table row; relaxation and hull results come from ``candidate.extra``."""
    extra = candidate.extra or {}
    modified = extra.get("kind") == "modified"  # its target is an energy change, not a formation energy
    return {
        "#": position,
        "formula": candidate.formula,
        "SG requested": _sg(candidate.spacegroup_requested),
        "SG detected": _sg(candidate.spacegroup_detected),
        "target E": None if modified else round(candidate.target_energy, 3),
        "relaxed E": _number(extra.get("formation_energy")),
        "E above hull": _number(extra.get("e_above_hull")),
        "min dist": round(candidate.min_distance, 3),
        "valid": bool(candidate.valid),
        "novel": extra.get("novel"),
        "source": candidate_source(candidate),
        "status": candidate_status(candidate),
    }


# One dtype per column whatever the rows hold (no rows, none relaxed yet, a modified candidate without a target):
# Panel derives the table's column configuration from the dtypes, and a changed configuration rebuilds the table
# in the browser, which drops a data update that arrives during the rebuild (a relaxation's results, one after
# the other, left rows showing "generated").
TYPED = {"#": "int64", "target E": "float64", "relaxed E": "float64", "E above hull": "float64", "min dist": "float64",
         "valid": "bool"}
DTYPES = {column: TYPED.get(column, "object") for column in COLUMNS}


def candidates_frame(candidates) -> pd.DataFrame:
    """The table's rows, with the same dtype per column always (not relaxed: NaN, shown as "—")."""
    frame = pd.DataFrame([candidate_row(i, c) for i, c in enumerate(candidates)], columns=COLUMNS)
    return frame.astype(DTYPES)


class CandidateTable(pn.viewable.Viewer):
    """Tabulator of candidates. ``selection``: checked rows (positions); ``focus``: the last clicked row."""

    candidates = param.List(default=[], item_type=Candidate)
    selection = param.List(default=[], doc="positions of the checked candidates")
    focus = param.Integer(default=-1, doc="position of the last clicked candidate")
    height = param.Integer(default=330, bounds=(100, 3000))

    def __init__(self, **params):
        super().__init__(**params)
        from bokeh.models import NumberFormatter

        number = NumberFormatter(format="0.000", nan_format="—", null_format="—")  # not "NaN" for not relaxed
        self._table = pn.widgets.Tabulator(
            candidates_frame([]), show_index=False, selectable="checkbox", disabled=True, layout="fit_columns",
            sizing_mode="stretch_width", height=self.height, theme="bootstrap5", widths=WIDTHS,
            configuration={"columnDefaults": {"tooltip": True, "headerTooltip": True, "headerWordWrap": True}},
            stylesheets=[".tabulator { font-size: 12.5px; } .tabulator-row .tabulator-cell { padding: 4px 5px; }"
                         ".tabulator .tabulator-header .tabulator-col .tabulator-col-content { padding: 4px 5px; }"],
            formatters={"valid": {"type": "tickCross"}, "novel": {"type": "tickCross", "allowEmpty": True},
                        "target E": number, "relaxed E": number, "E above hull": number, "min dist": number},
            titles={"SG requested": "SG asked", "SG detected": "SG found", "target E": "E target",
                    "relaxed E": "E_f", "E above hull": "E−hull", "min dist": "d min"},
            header_tooltips={"SG requested": "space group requested",
                             "SG detected": "space group found (spglib, symprec 0.1)",
                             "target E": "target formation energy (eV/atom)",
                             "relaxed E": "formation energy after relaxation (eV/atom)",
                             "E above hull": "energy above the convex hull (eV/atom), after relaxation",
                             "min dist": "shortest interatomic distance (Å)",
                             "valid": "no atoms closer than 0.5 Å or 0.6 × their covalent radii",
                             "novel": "no training structure matches (StructureMatcher)",
                             "source": "a network's name, or the known structure a prototype comes from",
                             "status": "relaxation status, and why a candidate is not valid"},
            text_align={"valid": "center", "novel": "center"}, header_align="center",
        )
        self._table.on_click(self._clicked)
        self._table.param.watch(self._selection_changed, "selection")
        self._syncing = False
        self._refresh()

    def _clicked(self, event) -> None:
        if event.row is not None and event.column != "_selection":
            self.focus = int(event.row)

    def _selection_changed(self, event) -> None:
        if not self._syncing:
            self.selection = sorted(int(i) for i in event.new)

    @param.depends("candidates", watch=True)
    def _refresh(self) -> None:
        self._syncing = True
        try:
            frame = candidates_frame(self.candidates)
            if not frame.equals(self._table.value):  # no redraw when nothing changed
                self._table.value = frame
            keep = [i for i in self.selection if i < len(self.candidates)]
            self._table.selection = keep
        finally:
            self._syncing = False
        if keep != self.selection:
            self.selection = keep

    def refresh(self) -> None:
        """Redraw after candidates changed in place (relaxation results in ``extra``)."""
        self._refresh()

    @param.depends("selection", watch=True)
    def _push_selection(self) -> None:
        if sorted(self._table.selection) != sorted(self.selection):
            self._syncing = True
            try:
                self._table.selection = list(self.selection)
            finally:
                self._syncing = False

    @property
    def table(self) -> pn.widgets.Tabulator:
        return self._table

    def __panel__(self):
        return self._table
