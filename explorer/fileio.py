"""Low-level file helpers: atomic writes, sha256 digests of files and .npz records of arrays (no explorer
imports).

An atomic write goes to a temporary file next to the target (unique per process and thread), is flushed to
disk and renamed over the target, so readers see either the old or the complete new content, never a part,
and concurrent writers never write into each other's file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (parent folders created); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def append_lines(path: str | os.PathLike, lines: list[str]) -> Path:
    """Append ``lines``, one line each, to ``path``, a JSON-lines record that a stopped run may have
    left with its last line cut short: that line is ended first, so it stays one unreadable line instead of
    swallowing the first appended one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        ended = handle.tell() == 0
        if not ended:
            handle.seek(-1, os.SEEK_END)
            ended = handle.read(1) == b"\n"
        handle.write(("" if ended else "\n").encode() + "".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def read_json_lines(path: str | os.PathLike) -> list:
    """The readable lines of a JSON-lines record written by :func:`append_lines`, parsed (a line cut short by a
    stop is left out); [] when there is no file."""
    path = Path(path)
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file's content (read in blocks, not all at once)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_arrays(path: str | os.PathLike, record) -> Path:
    """Write the fields of a dataclass of numpy arrays to ``path`` (compressed .npz), atomically."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: getattr(record, name) for name in record.__dataclass_fields__})
    return atomic_write_bytes(path, buffer.getvalue())


def read_arrays(path: str | os.PathLike, cls):
    """The dataclass ``cls`` of numpy arrays written by :func:`write_arrays`."""
    import numpy as np

    with np.load(path) as data:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def cached_arrays(path: str | os.PathLike, cls, make):
    """The dataclass ``cls`` of numpy arrays kept at ``path``: read when the file is there, else ``make()``d,
    written there (:func:`write_arrays`) and returned."""
    if Path(path).is_file():
        return read_arrays(path, cls)
    record = make()
    write_arrays(path, record)
    return record


__all__ = ["atomic_write_bytes", "atomic_write_text", "cached_arrays", "file_sha256", "read_arrays",
           "write_arrays"]
