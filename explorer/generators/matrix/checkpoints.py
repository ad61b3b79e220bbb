"""Inference checkpoints of the matrix family: ``{"model": config, "method": ..., "state_dict": fp16 weights}``,
loaded with ``torch.load(weights_only=True)`` (no code is unpickled) and cast to float32."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ...errors import ExplorerInputError
from ...fileio import file_sha256
from ...models import build_model


def read_payload(path: str | Path) -> dict:
    """The dict saved in a checkpoint (inference or training), read with ``torch.load(weights_only=True)``: tensors
    and plain Python values only, never code; a file that is not such a checkpoint is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's notes on the pickle protocol are not the user's business
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpicklable, foreign or truncated file: say so in one line
        raise ExplorerInputError(f"checkpoint {path.name} cannot be read safely ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise ExplorerInputError(f"checkpoint {path.name} is not an explorer checkpoint")
    return payload


def load_checkpoint(path: str | Path, expected_sha256: str | None = None) -> tuple[torch.nn.Module, str]:
    """(model in float32 eval mode, method) from an inference checkpoint; verifies the sha256 if given."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"checkpoint not found: {path}")
    if expected_sha256 and file_sha256(path) != expected_sha256:
        raise ExplorerInputError(f"checkpoint {path.name} does not match its manifest sha256 (corrupted file?)")
    payload = read_payload(path)
    if not {"model", "method", "state_dict"} <= set(payload):
        raise ExplorerInputError(f"checkpoint {path.name} is not an inference checkpoint (model, method, state_dict)")
    model = build_model(payload["model"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return model.eval(), payload["method"]
