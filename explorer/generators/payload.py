"""Reading checkpoint files of any family safely: ``torch.load(weights_only=True)`` (tensors and plain Python
values, never code), a file that is not such a checkpoint a one-line error."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import ExplorerInputError


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
