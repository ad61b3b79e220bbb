"""The explorer app (Panel). Every part is a ``pn.viewable.Viewer`` that also works alone in Jupyter::

    from explorer.ui import ExplorerApp, StructureViewer, HullPlot, CandidateTable, extension
    extension()                                   # once per notebook: Tabulator + HoloViews/Bokeh
    StructureViewer(structure=candidates[0].structure)

Serve the app with ``panel serve apps/explorer.py --static-dirs 3dmol=node_modules/3dmol/build``.
Only this sub-package imports Panel; the library (``explorer`` outside ``explorer.ui``) never does.
"""

from __future__ import annotations


def extension(**kwargs) -> None:
    """Load what the components need in the browser (Tabulator, HoloViews' Bokeh backend)."""
    import holoviews as hv
    import panel as pn

    pn.extension("tabulator", **kwargs)
    hv.extension("bokeh", logo=False)


from .app import ExplorerApp, device_label  # noqa: E402
from .export import ExportPanel  # noqa: E402
from .generate import GeneratePanel  # noqa: E402
from .hull import HullPlot  # noqa: E402
from .modify import ModifyPanel  # noqa: E402
from .relaxation import RelaxPanel  # noqa: E402
from .results import ResultsView  # noqa: E402
from .table import CandidateTable  # noqa: E402
from .viewer import Crystal3D, StructureGrid, StructureViewer  # noqa: E402
from .workspace import Workspace  # noqa: E402

__all__ = ["CandidateTable", "Crystal3D", "ExplorerApp", "ExportPanel", "GeneratePanel", "HullPlot", "ModifyPanel",
           "RelaxPanel", "ResultsView", "StructureGrid", "StructureViewer", "Workspace", "device_label", "extension"]
