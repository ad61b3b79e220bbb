"""Where explorer finds third-party data and writes caches.

Data directory (CSV.gz structure files, MP formation energies), first match wins:
1. an explicit ``data_dir`` argument,
2. the ``EXPLORER_DATA_DIR`` environment variable,
3. ``../shared/data`` next to the repository checkout (the development layout),
4. ``~/.explorer/data``.
The data are read in place and never copied into the project.

Models directory (interatomic-potential weights such as ``M3GNet-MP-2021.2.8-PES``), same order:
an explicit ``models_dir`` argument, ``EXPLORER_MODELS_DIR``, ``../shared/models`` next to the checkout,
``~/.explorer/models``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ExplorerInputError

REPO_ROOT = Path(__file__).resolve().parents[1]
PRETRAINED_DIR = Path(os.environ.get("EXPLORER_PRETRAINED_DIR", REPO_ROOT / "pretrained"))


def _configured_dir(explicit, variable: str, shared_name: str) -> Path:
    """``explicit``, else the environment variable ``variable``, else ``../shared/<shared_name>`` beside the
    repository when it is there, else ``~/.explorer/<shared_name>`` (which may not exist)."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(variable)
    if env:
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / shared_name
    if shared.is_dir():
        return shared
    return Path.home() / ".explorer" / shared_name


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return the data directory (it may not exist when nothing is configured)."""
    return _configured_dir(explicit, "EXPLORER_DATA_DIR", "data")


def data_file(name: str, explicit_dir: str | os.PathLike | None = None) -> Path:
    """Path of one data file, with a clear error when it is missing."""
    path = data_dir(explicit_dir) / name
    if not path.is_file():
        raise ExplorerInputError(
            f"data file {name!r} not found in {path.parent} "
            "(set EXPLORER_DATA_DIR or pass --data-dir)"
        )
    return path


def models_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return the directory of interatomic-potential weights (it may not exist when nothing is configured)."""
    return _configured_dir(explicit, "EXPLORER_MODELS_DIR", "models")


def cache_dir() -> Path:
    """Directory for processed-array caches (``EXPLORER_CACHE_DIR`` or ``~/.cache/explorer``)."""
    path = Path(os.environ.get("EXPLORER_CACHE_DIR", Path.home() / ".cache" / "explorer"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_json_cache(path: Path | None) -> dict:
    """The JSON object stored at ``path``; {} when there is none or it cannot be read (a cache is optional)."""
    import json

    if path is None or not path.is_file():
        return {}
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def write_json_cache(path: Path, content: dict) -> None:
    """Write ``content`` to ``path`` atomically (:func:`explorer.fileio.atomic_write_text`), so that concurrent
    processes never read a half-written cache."""
    import json

    from .fileio import atomic_write_text

    atomic_write_text(path, json.dumps(content, indent=1, sort_keys=True))
