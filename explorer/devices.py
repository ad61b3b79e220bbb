"""Where tensors run: ``resolve_device('auto')`` picks CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from .errors import ExplorerInputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch.device (one-line error when it
    is unknown or asks for a GPU that is not there)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ExplorerInputError(f"unknown device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ExplorerInputError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    return resolved
