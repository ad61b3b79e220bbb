"""The Export card: the checked candidates (or all) as CIF, POSCAR or extended XYZ — one file, or a zip for
several — through the library's one export path (:func:`explorer.structure_io.export_structures`)."""

from __future__ import annotations

import io

import panel as pn
import param

from ..errors import ExplorerInputError
from ..structure_io import EXPORT_FORMATS, export_structures
from .widgets import button_style
from .workspace import Workspace, message

HINT = "Exports the checked candidates (or all)."


class ExportPanel(pn.viewable.Viewer):
    export_format = param.Selector(default="cif", objects=list(EXPORT_FORMATS))
    export_relaxed = param.Boolean(default=True, doc="export relaxed structures where there are")

    SETTINGS = ("export_format", "export_relaxed")

    def __init__(self, workspace: Workspace, **params):
        super().__init__(**params)
        self.workspace = workspace
        w = pn.widgets
        self.format_select = w.Select.from_param(self.param.export_format, label="Format", width=110)
        self.relaxed_box = w.Checkbox.from_param(self.param.export_relaxed, label="relaxed where available")
        self.download = w.FileDownload(callback=self._export_file, filename="candidates.zip", label="Download",
                                       **button_style("default"), sizing_mode="stretch_width")
        self.status = pn.pane.HTML(message("info", HINT), sizing_mode="stretch_width", margin=(0, 10))
        workspace.param.watch(lambda event: setattr(self.status, "object", message("info", HINT)), "candidates")

    def __panel__(self):
        return pn.Column(pn.Row(self.format_select, self.relaxed_box), self.download, self.status,
                         sizing_mode="stretch_width")

    def export_selected(self) -> tuple[str, bytes]:
        """(file name, content) of the checked candidates (or all) in the chosen format; a zip for several."""
        candidates = self.workspace.candidates
        structures, names = [], []
        for i in self.workspace.chosen():
            c = candidates[i]
            relaxed = c.extra.get("relaxed_structure") if self.export_relaxed else None
            structures.append(relaxed or c.structure)
            names.append(f"{i:03d}_{c.formula}{'_relaxed' if relaxed is not None else ''}")
        return export_structures(structures, self.export_format, names)

    def _export_file(self):
        try:
            filename, content = self.export_selected()
        except ExplorerInputError as exc:
            self.status.object = message("error", str(exc))
            self.download.filename = "nothing.txt"
            return io.BytesIO(f"{exc}\n".encode())
        self.download.filename = filename
        self.status.object = message("ok", f"{filename} ({len(content) / 1024:.1f} KiB)")
        return io.BytesIO(content)
