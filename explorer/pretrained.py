"""Shipped checkpoints under ``pretrained/``: the manifest, sha256 checks and safe loading.

``pretrained/manifest.json`` lists every model (name, file, method, sampler, data, training command,
epochs, wall time, device, val/test metrics, sha256) and names the default (best on val).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from .config import PRETRAINED_DIR
from .errors import ExplorerInputError
from .models import build_model


@dataclass
class ModelEntry:
    name: str
    file: str
    method: str
    sampler: str | None
    info: dict


def read_manifest(directory: Path = PRETRAINED_DIR) -> dict:
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ExplorerInputError(f"no pretrained manifest at {path}")
    return json.loads(path.read_text())


def available_models(task: str | None = None, directory: Path = PRETRAINED_DIR) -> list[str]:
    """Names of the shipped models (only those of ``task``, 'generation' or 'modification', when given)."""
    return [m["name"] for m in read_manifest(directory)["models"]
            if task is None or m.get("task", "generation") == task]


def default_model(directory: Path = PRETRAINED_DIR) -> str:
    return read_manifest(directory)["default"]


def model_entry(name: str | None = None, directory: Path = PRETRAINED_DIR) -> ModelEntry:
    manifest = read_manifest(directory)
    name = name or manifest["default"]
    for entry in manifest["models"]:
        if entry["name"] == name:
            return ModelEntry(entry["name"], entry["file"], entry["method"], entry.get("sampler"), entry)
    names = ", ".join(m["name"] for m in manifest["models"])
    raise ExplorerInputError(f"unknown model {name!r}; available: {names}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | Path, expected_sha256: str | None = None) -> tuple[torch.nn.Module, str]:
    """(model in float32 eval mode, method) from an inference checkpoint; verifies the sha256 if given."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"checkpoint not found: {path}")
    if expected_sha256 and sha256(path) != expected_sha256:
        raise ExplorerInputError(f"checkpoint {path.name} does not match its manifest sha256 (corrupted file?)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(payload["model"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return model.eval(), payload["method"]


@lru_cache(maxsize=8)
def load_pretrained(name: str | None = None, directory: Path = PRETRAINED_DIR):
    """(model, entry) of a shipped model by manifest name (default: the manifest's default)."""
    entry = model_entry(name, directory)
    model, method = load_checkpoint(Path(directory) / entry.file, entry.info.get("sha256"))
    if method != entry.method:
        raise ExplorerInputError(f"checkpoint {entry.file} was trained as {method}, manifest says {entry.method}")
    return model, entry
