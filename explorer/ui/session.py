"""Session autosave: the app's settings and candidates (MSONable, relaxation results included) are written to
``<folder>/session.json`` after every change and read back when the app starts again.

Folder: ``$EXPLORER_SESSION_DIR``, else ``~/.explorer/session``. Writes are atomic (temporary file + rename), so
a crash never leaves half a file; an unreadable file is moved aside (``session.json.broken``), never fatal.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from monty.json import MontyEncoder

from ..fileio import atomic_write_text

SESSION_VERSION = 1
SESSION_FILE = "session.json"


def session_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("EXPLORER_SESSION_DIR")
    if env:
        return Path(env)
    return Path.home() / ".explorer" / "session"


class SessionStore:
    """Reads and writes one session file; thread-safe."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = session_dir(folder)
        self.path = self.folder / SESSION_FILE
        self._lock = threading.Lock()

    def save(self, settings: dict, candidates: list, original=None) -> Path:
        """Write settings (JSON-able dict), candidates (Candidate objects) and the uploaded structure."""
        payload = {"version": SESSION_VERSION, "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "settings": settings,
                   "candidates": [c.as_dict() for c in candidates],
                   "original": original.as_dict() if original is not None else None}
        text = json.dumps(payload, cls=MontyEncoder)
        with self._lock:
            atomic_write_text(self.path, text)
        return self.path

    def load(self) -> dict | None:
        """``{"settings", "candidates", "original", "saved"}`` or None when there is no usable session."""
        from pymatgen.core import Structure

        from ..candidates import Candidate

        with self._lock:
            if not self.path.is_file():
                return None
            try:
                payload = json.loads(self.path.read_text())
                if payload.get("version") != SESSION_VERSION:
                    raise ValueError(f"session version {payload.get('version')}")
                candidates = [Candidate.from_dict(d) for d in payload.get("candidates", [])]
                original = payload.get("original")
                original = Structure.from_dict(original) if original else None
            except Exception:
                os.replace(self.path, self.path.with_name(SESSION_FILE + ".broken"))
                return None
        return {"settings": payload.get("settings", {}), "candidates": candidates, "original": original,
                "saved": payload.get("saved", "")}

    def clear(self) -> None:
        with self._lock:
            if self.path.is_file():
                self.path.unlink()
