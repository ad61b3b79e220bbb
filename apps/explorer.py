"""The explorer app: ``panel serve apps/explorer.py --static-dirs 3dmol=node_modules/3dmol/build``.

Runs with no internet: Bokeh/Panel resources come from the Panel server, 3Dmol.js from the local npm install
(``bash scripts/setup.sh``), fonts from the system. The session is autosaved to ``$EXPLORER_SESSION_DIR``
(default ``~/.explorer/session``) and restored on the next start.
"""

import os
import sys

# `panel serve` puts this folder first on sys.path, where this file would shadow the `explorer` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.abspath(getattr(sys.modules.get("explorer"), "__file__", None) or "") == os.path.abspath(__file__):
    del sys.modules["explorer"]

from explorer.ui import ExplorerApp, extension  # noqa: E402

extension()
ExplorerApp().template().servable(title="Crystal explorer")
