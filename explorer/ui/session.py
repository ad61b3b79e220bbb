"""Sessions: the app's settings and candidates (MSONable, relaxation results included), one file per session,
``<folder>/<session id>.json``, written after every change and read back when that session is opened again.

Each browser session has its own id — random (``new_session_id``) unless the user names one — carried in the page
address (``?session=<id>``), so a reload comes back to the same work and a new visitor starts a new session; one
session never writes another's file. Folder: ``$EXPLORER_SESSION_DIR``, else ``~/.explorer/sessions``. Writes are
atomic, so a crash never leaves half a file; an unreadable file is moved aside (``<id>.json.broken``), never
fatal. A ``session.json`` of the one-session-for-everyone versions is read as the session ``default``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from pathlib import Path

from monty.json import MontyEncoder

from ..errors import ExplorerInputError
from ..fileio import atomic_write_text

SESSION_VERSION = 1
LEGACY_FILE = "session.json"
DEFAULT_SESSION = "default"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def session_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("EXPLORER_SESSION_DIR")
    if env:
        return Path(env)
    return Path.home() / ".explorer" / "sessions"


def new_session_id() -> str:
    """A random, unguessable session id (12 URL-safe characters)."""
    return secrets.token_urlsafe(9).replace("_", "x").replace("-", "y")


def check_session_id(name: str) -> str:
    """A session name: letters, digits, '-' and '_' (at most 64, starting with a letter or digit)."""
    name = str(name or "").strip()
    if not _ID.match(name):
        raise ExplorerInputError(f"a session name is 1-64 letters, digits, '-' or '_' (starting with a letter or "
                                 f"digit), got {name!r}")
    return name


def list_sessions(folder: str | os.PathLike | None = None) -> list[dict]:
    """Saved sessions, newest first: ``{"id", "saved", "candidates"}`` (each file is read whole: the Session card
    lists them when a page opens)."""
    folder = session_dir(folder)
    found = []
    for path in folder.glob("*.json"):
        name = DEFAULT_SESSION if path.name == LEGACY_FILE else path.stem
        if not _ID.match(name) or (path.name == LEGACY_FILE and (folder / f"{DEFAULT_SESSION}.json").is_file()):
            continue
        try:
            payload = json.loads(path.read_text())
            found.append({"id": name, "saved": payload.get("saved", ""),
                          "candidates": len(payload.get("candidates", [])), "mtime": path.stat().st_mtime})
        except (OSError, ValueError):
            continue
    found.sort(key=lambda item: -item["mtime"])
    return [{k: v for k, v in item.items() if k != "mtime"} for item in found]


class SessionStore:
    """Reads and writes the file of one session; thread-safe."""

    def __init__(self, folder: str | os.PathLike | None = None, session: str = DEFAULT_SESSION):
        self.folder = session_dir(folder)
        self.session = check_session_id(session)
        self.path = self.folder / f"{self.session}.json"
        self._lock = threading.Lock()

    def _source(self) -> Path:
        legacy = self.folder / LEGACY_FILE
        if not self.path.is_file() and self.session == DEFAULT_SESSION and legacy.is_file():
            return legacy
        return self.path

    def save(self, settings: dict, candidates: list, original=None) -> Path:
        """Write settings (JSON-able dict), candidates (Candidate objects) and the uploaded structure."""
        payload = {"version": SESSION_VERSION, "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "session": self.session,
                   "settings": settings, "candidates": [c.as_dict() for c in candidates],
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
            path = self._source()
            if not path.is_file():
                return None
            try:
                payload = json.loads(path.read_text())
                if payload.get("version") != SESSION_VERSION:
                    raise ValueError(f"session version {payload.get('version')}")
                candidates = [Candidate.from_dict(d) for d in payload.get("candidates", [])]
                original = payload.get("original")
                original = Structure.from_dict(original) if original else None
            except Exception:
                os.replace(path, path.with_name(path.name + ".broken"))
                return None
        return {"settings": payload.get("settings", {}), "candidates": candidates, "original": original,
                "saved": payload.get("saved", "")}

    def clear(self) -> None:
        with self._lock:
            for path in (self.path, self._source()):
                if path.is_file():
                    path.unlink()
