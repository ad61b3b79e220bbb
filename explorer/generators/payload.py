"""Reading checkpoint files of any family safely: ``torch.load(weights_only=True)`` (tensors and plain Python
values, never code), a file that is not such a checkpoint a one-line error; and a network made with a
checkpoint's weights (:func:`with_weights`)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
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


def with_weights(build: Callable[[], torch.nn.Module], state_dict: dict) -> torch.nn.Module:
    """``build()``'s module with the weights of ``state_dict`` (floating-point ones as float32), in eval mode.

    It is built on the meta device and then given the checkpoint's tensors, so nothing is first initialised at
    random only to be overwritten (DimeNet++'s orthogonal initialisation alone takes seconds). A module that
    keeps a tensor the checkpoint does not set (or cannot be built without data) is built on the CPU and loaded
    as usual; either way it holds the same numbers."""
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    try:
        with torch.device("meta"):
            module = build()
        module.load_state_dict(weights, assign=True)
        if not _holds_meta(module):
            return module.eval()
    except Exception:  # e.g. a build that computes values from tensors: built as usual below
        pass
    module = build()
    module.load_state_dict(weights)
    return module.eval()


def _holds_meta(module: torch.nn.Module) -> bool:
    """Whether a parameter, buffer or tensor attribute of ``module`` is still on the meta device."""
    if any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        return True
    for sub in module.modules():
        for value in vars(sub).values():
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
            if any(isinstance(item, torch.Tensor) and item.is_meta for item in items):
                return True
    return False
