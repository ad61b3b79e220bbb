"""Inference checkpoints of the matrix family: ``{"model": config, "method": ..., "state_dict": fp16 weights}``,
loaded with ``torch.load(weights_only=True)`` (no code is unpickled) and cast to float32."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import ExplorerInputError
from ...fileio import file_sha256
from ...models import build_model
from ..payload import read_payload, with_weights


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
    return with_weights(lambda: build_model(payload["model"]), payload["state_dict"]), payload["method"]
