"""The explorer app for ``panel serve`` (``explorer app`` serves the same page, on this machine only by default):

    panel serve apps/explorer.py --address 127.0.0.1 --allow-websocket-origin localhost:5006 \
        --static-dirs 3dmol=node_modules/3dmol/build

Runs with no internet: Bokeh/Panel resources come from the Panel server, 3Dmol.js from the local npm install
(``bash scripts/setup.sh``), fonts from the system. Each browser session is saved to its own file in
``$EXPLORER_SESSION_DIR`` (default ``~/.explorer/sessions``); the page address (``?session=<id>``) brings it back.
"""

import os
import sys

# `panel serve` puts this folder first on sys.path, where this file would shadow the `explorer` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.abspath(getattr(sys.modules.get("explorer"), "__file__", None) or "") == os.path.abspath(__file__):
    del sys.modules["explorer"]

from explorer.ui.serving import page  # noqa: E402

page().servable(title="Crystal explorer")
