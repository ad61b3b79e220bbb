"""Browser assets of the app: 3Dmol.js from the npm package ``3dmol`` (``npm ci`` in the repository root,
done by ``scripts/setup.sh``), served by Panel from the local static route ``/3dmol/`` — never from a CDN.

``panel serve apps/explorer.py --static-dirs 3dmol=node_modules/3dmol/build`` serves it; the viewers load
``3dmol/3Dmol-min.js`` from there. Where no such route exists (a Jupyter notebook, or ``panel serve`` without
``--static-dirs``) a viewer asks its Python side for the file once over the existing websocket/comm.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..config import REPO_ROOT

STATIC_ROUTE = "3dmol"
LIBRARY_FILE = "3Dmol-min.js"
LIB_URL = f"{STATIC_ROUTE}/{LIBRARY_FILE}"


def threedmol_dir() -> Path | None:
    """Folder holding ``3Dmol-min.js``: ``$EXPLORER_3DMOL_DIR``, else ``node_modules/3dmol/build`` in the
    repository checkout or the current directory; None when npm has not installed it."""
    candidates = []
    if os.environ.get("EXPLORER_3DMOL_DIR"):
        candidates.append(Path(os.environ["EXPLORER_3DMOL_DIR"]))
    candidates += [REPO_ROOT / "node_modules" / "3dmol" / "build", Path.cwd() / "node_modules" / "3dmol" / "build"]
    for folder in candidates:
        if (folder / LIBRARY_FILE).is_file():
            return folder
    return None


@lru_cache(maxsize=1)
def threedmol_source() -> str:
    """The text of 3Dmol-min.js (for the websocket fallback); raises a clear error when it is missing."""
    folder = threedmol_dir()
    if folder is None:
        raise FileNotFoundError("3Dmol.js is not installed: run `bash scripts/setup.sh` (npm ci) in the repository")
    return (folder / LIBRARY_FILE).read_text(encoding="utf-8")


def static_dirs() -> dict[str, str]:
    """``{route: folder}`` for ``pn.serve(..., static_dirs=...)`` / ``panel serve --static-dirs``."""
    folder = threedmol_dir()
    return {STATIC_ROUTE: str(folder)} if folder is not None else {}
