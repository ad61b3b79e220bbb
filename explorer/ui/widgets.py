"""Small input widgets of the sidebar: a clickable periodic table, the space-group choices and the energy
scale with the hull marker."""

from __future__ import annotations

from functools import cache

import panel as pn
import param
from panel.custom import JSComponent

from ..spacegroups import COMMON_SPACEGROUPS, crystal_system, symbol

SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")


def spacegroup_label(number: int) -> str:
    return f"{number} · {symbol(number)} · {crystal_system(number)}"


@cache
def spacegroup_groups(common_only: bool = True) -> dict[str, dict[str, int]]:
    """Options for a grouped Select: crystal system -> {label: number}."""
    numbers = COMMON_SPACEGROUPS if common_only else range(1, 231)
    groups: dict[str, dict[str, int]] = {name: {} for name in SYSTEMS}
    for number in numbers:
        groups[crystal_system(number)][spacegroup_label(number)] = number
    return {name.capitalize(): options for name, options in groups.items() if options}


class SpacegroupSelect(pn.viewable.Viewer):
    """A grouped space-group Select (crystal system -> "191 · P6/mmm · hexagonal") bound both ways to the integer
    parameter ``name`` of ``owner``: choosing an option sets the parameter, and a new parameter value (typed in
    Python, restored from a session) is what the widget shows — the common groups first, all 230 when the value is
    not among them or the "all 230" box is ticked."""

    def __init__(self, owner: param.Parameterized, name: str, label: str = "Space group", all_toggle: bool = True):
        super().__init__()
        self.owner, self.parameter = owner, name
        self.all_groups = pn.widgets.Checkbox(label="all 230 space groups", value=False, visible=all_toggle)
        self.select = pn.widgets.Select(label=label, groups=spacegroup_groups(True), sizing_mode="stretch_width",
                                        description="number · Hermann–Mauguin symbol · crystal system")
        self._syncing = False
        self._show()
        owner.param.watch(lambda event: self._show(), name)
        self.all_groups.param.watch(lambda event: self._show(), "value")
        self.select.param.watch(self._picked, "value")

    def _show(self) -> None:
        value = int(getattr(self.owner, self.parameter))
        groups = spacegroup_groups(not self.all_groups.value)
        if value not in {v for options in groups.values() for v in options.values()}:
            groups = spacegroup_groups(False)
        self._syncing = True
        try:
            if self.select.groups != groups:
                self.select.groups = groups
            if self.select.value != value:
                self.select.value = value
        finally:
            self._syncing = False

    def _picked(self, event) -> None:
        if not self._syncing and event.new is not None and int(event.new) != getattr(self.owner, self.parameter):
            setattr(self.owner, self.parameter, int(event.new))

    @property
    def value(self) -> int:
        return int(self.select.value)

    def __panel__(self):
        return pn.Column(self.select, self.all_groups, sizing_mode="stretch_width", margin=0)


def button_style(color: str, outline: bool = False) -> dict:
    """Keyword arguments for a button's colour: ``color``/``variant`` (Panel ≥ 1.8), else ``button_type``/
    ``button_style``."""
    if "color" in pn.widgets.Button.param:
        return {"color": color, **({"variant": "outline"} if outline else {})}
    return {"button_type": color, **({"button_style": "outline"} if outline else {})}


@cache
def periodic_layout(max_z: int = 103) -> list[dict]:
    """``{z, symbol, row, col}`` on an 18-column table, lanthanides/actinides on rows 9-10."""
    from pymatgen.core import Element

    cells = []
    for z in range(1, max_z + 1):
        element = Element.from_Z(z)
        if 57 <= z <= 71:
            row, col = 9, 3 + (z - 57)
        elif 89 <= z <= 103:
            row, col = 10, 3 + (z - 89)
        else:
            row, col = element.row, element.group
        cells.append({"z": z, "symbol": element.symbol, "row": int(row), "col": int(col)})
    return cells


class PeriodicTable(JSComponent):
    """Clickable periodic table: a click calls the ``on_pick(symbol)`` callbacks; ``highlight`` marks elements."""

    cells = param.List(default=[])
    highlight = param.List(default=[])

    _esm = """
    export function render({model, el}) {
      const grid = document.createElement("div")
      grid.style.cssText = "display:grid;grid-template-columns:repeat(18,1fr);gap:1px;font-size:9px;" +
                           "font-family:system-ui,sans-serif;user-select:none"
      const buttons = {}
      for (const c of model.cells) {
        const b = document.createElement("div")
        b.textContent = c.symbol
        b.title = c.symbol + " (Z=" + c.z + ")"
        b.style.cssText = `grid-row:${c.row};grid-column:${c.col};text-align:center;padding:2px 0;cursor:pointer;` +
                          "border:1px solid #d6dbe1;border-radius:2px;background:#f7f9fb;line-height:1.2"
        b.addEventListener("click", () => model.send_msg({symbol: c.symbol}))
        buttons[c.symbol] = b
        grid.appendChild(b)
      }
      const mark = () => {
        for (const [s, b] of Object.entries(buttons)) {
          const on = model.highlight.includes(s)
          b.style.background = on ? "#0072B5" : "#f7f9fb"
          b.style.color = on ? "white" : "#222"
        }
      }
      mark()
      model.on("highlight", mark)
      return grid
    }
    """

    def __init__(self, **params):
        params.setdefault("cells", periodic_layout())
        super().__init__(**params)
        self._callbacks = []

    def on_pick(self, callback) -> None:
        self._callbacks.append(callback)

    def _handle_msg(self, msg) -> None:
        if isinstance(msg, dict) and msg.get("symbol"):
            for callback in self._callbacks:
                callback(str(msg["symbol"]))


def add_element(formula: str, element: str) -> str:
    """``add_element("TaW", "B")`` -> ``"TaWB"``; ``add_element("TaWB", "B")`` -> ``"TaWB2"`` (order kept)."""
    import re

    parts = re.findall(r"([A-Z][a-z]?)(\d*)", formula or "")
    counts: dict[str, int] = {}
    for symbol_, count in parts:
        counts[symbol_] = counts.get(symbol_, 0) + (int(count) if count else 1)
    counts[element] = counts.get(element, 0) + 1
    return "".join(f"{s}{c if c > 1 else ''}" for s, c in counts.items())


def energy_scale_html(low: float, high: float, target: float, hull: float | None, width_note: str = "") -> str:
    """A bar under the energy slider: the target (blue) and the hull energy of the composition (black ▲)."""

    def pos(value: float) -> float:
        return max(0.0, min(100.0, 100.0 * (value - low) / (high - low)))

    marks = (f'<div title="target" style="position:absolute;left:{pos(target):.2f}%;top:0;width:2px;height:10px;'
             'background:#0072B5;transform:translateX(-1px)"></div>')
    if hull is not None:
        marks += (f'<div title="hull energy" style="position:absolute;left:{pos(hull):.2f}%;top:8px;'
                  'transform:translateX(-5px);font-size:10px;line-height:10px">▲</div>')
        text = (f"hull at this composition: <b>{hull:+.3f}</b> eV/atom · target {target - hull:+.3f} from hull"
                f"{width_note}")
    else:
        text = "hull energy of this composition unknown (no MP formation energies found)" + width_note
    return ('<div style="position:relative;height:18px;margin:0 8px;border-top:1px solid #c9d1d9">'
            f"{marks}</div><div style=\"font-size:11px;color:#555;margin:0 8px\">{text}</div>")
