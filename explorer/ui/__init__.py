"""The explorer app (Panel). Every part is a ``pn.viewable.Viewer`` that also works alone in Jupyter::

    from explorer.ui import ExplorerApp, StructureViewer, HullPlot, CandidateTable, extension
    extension()                                   # once per notebook: Tabulator + HoloViews/Bokeh
    StructureViewer(structure=candidates[0].structure)

Serve the app with ``panel serve apps/explorer.py --static-dirs 3dmol=node_modules/3dmol/build``.
Only this sub-package imports Panel; the library (``explorer`` outside ``explorer.ui``) never does.
"""

from __future__ import annotations

from .app import ExplorerApp, device_label
from .export import ExportPanel
from .generate import GeneratePanel
from .hull import HullPlot
from .modify import ModifyPanel
from .relaxation import RelaxPanel
from .results import ResultsView
from .serving import extension
from .table import CandidateTable
from .viewer import Crystal3D, StructureGrid, StructureViewer
from .workspace import Workspace

__all__ = ["CandidateTable", "Crystal3D", "ExplorerApp", "ExportPanel", "GeneratePanel", "HullPlot", "ModifyPanel",
           "RelaxPanel", "ResultsView", "StructureGrid", "StructureViewer", "Workspace", "device_label", "extension"]
