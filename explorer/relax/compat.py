"""Running M3GNet weights saved by matgl < 3.0 on the current (PyG) matgl.

matgl 3 rewrote M3GNet's graph convolution: the node update (Eq. 5 of the M3GNet paper) now sums the edge
messages onto the *source* atom of each directed edge (``edge_index[0]``). The weights trained with matgl < 3.0
(e.g. ``M3GNet-MP-2021.2.8-PES`` and ``M3GNet-MP-2018.6.1-Eform`` from matgl's ``pretrained_models/``) were
trained with the old DGL behaviour, which summed them onto the *destination* atom (``edge_index[1]``). With the
new aggregation those weights give wrong energies (matgl's MoS test structure: -7.45 eV instead of -10.824362 eV).

This module restores the old aggregation **per model instance**: :func:`restore_legacy_node_aggregation`
switches the class of each ``M3GNetGraphConv`` inside one loaded model to :class:`LegacyM3GNetGraphConv`, whose
only difference is the scatter index of the node update. Nothing in matgl is patched globally; models loaded
from current weights are untouched. The loader decides which models are legacy (:func:`is_legacy_checkpoint`).

The old Eform checkpoint also names its Set2Set LSTM ``readout.set2set.lstm.*`` (DGL) where the PyG model has
``readout.lstm.*`` (the same LSTM, same Set2Set algorithm), and pickles its target normaliser as a
``matgl.data.transformer.Normalizer`` object; :func:`load_legacy_model` handles both.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch
from matgl.layers._graph_convolution import M3GNetGraphConv
from matgl.utils.maths import scatter_add

# matgl's pretrained M3GNet directories that were saved before matgl 3.0 (destination-atom node update).
LEGACY_MODEL_NAMES = frozenset({
    "M3GNet-MP-2021.2.8-PES",
    "M3GNet-MP-2021.2.8-DIRECT-PES",
    "M3GNet-MP-2018.6.1-Eform",
})

# State-dict keys that only checkpoints written by matgl < 3.0 carry: the DGL Set2Set readout and the
# one-hot buffer of AtomRef (removed from current matgl).
_LEGACY_KEY_MARKERS = ("readout.set2set.", "element_refs.onehot")
_KEY_RENAMES = (("readout.set2set.lstm.", "readout.lstm."),)


class LegacyM3GNetGraphConv(M3GNetGraphConv):
    """``M3GNetGraphConv`` with the matgl < 3.0 node update: messages summed onto the destination atom."""

    def node_update_(self, edge_index, edge_feat, node_feat, rbf, u_per_edge, num_nodes):
        src, dst = edge_index[0], edge_index[1]
        if self.include_state:
            assert u_per_edge is not None
            inputs = torch.hstack([node_feat[src], node_feat[dst], edge_feat, u_per_edge])
        else:
            inputs = torch.hstack([node_feat[src], node_feat[dst], edge_feat])
        messages = self.node_update_func(inputs) * self.node_weight_func(rbf)
        return scatter_add(messages, dst, dim_size=num_nodes, dim=0)


def restore_legacy_node_aggregation(model: torch.nn.Module) -> int:
    """Give every M3GNet graph convolution inside ``model`` the old node aggregation; returns how many.

    Idempotent. Raises ``ValueError`` when the model holds no M3GNet graph convolution (not an M3GNet model).
    """
    count = 0
    for module in model.modules():
        if type(module) is M3GNetGraphConv:
            module.__class__ = LegacyM3GNetGraphConv
            count += 1
        elif type(module) is LegacyM3GNetGraphConv:
            count += 1
    if count == 0:
        raise ValueError(f"{type(model).__name__} has no M3GNet graph convolution to make legacy")
    return count


def uses_legacy_node_aggregation(model: torch.nn.Module) -> bool:
    """True when the model's M3GNet graph convolutions sum node messages onto the destination atom."""
    return any(type(module) is LegacyM3GNetGraphConv for module in model.modules())


def _model_class(path: Path) -> str:
    with open(path / "model.json") as handle:
        return json.load(handle).get("@class", "")


def _load_state(path: Path) -> dict:
    return torch.load(path / "state.pt", map_location="cpu", weights_only=True)


def is_legacy_checkpoint(path: str | os.PathLike) -> bool:
    """Whether a saved matgl model directory holds M3GNet weights from matgl < 3.0.

    A directory named like one of matgl's pre-3.0 pretrained M3GNet models, or whose state dict carries keys
    that only old checkpoints have, counts as legacy. The model files do not record the matgl version, so
    the loader also takes an explicit flag that overrides this guess.
    """
    path = Path(path)
    if path.name in LEGACY_MODEL_NAMES:
        return True
    try:
        text = (path / "model.json").read_text()
    except OSError:
        return False
    if "M3GNet" not in text:
        return False
    return any(marker in key for key in _load_state(path) for marker in _LEGACY_KEY_MARKERS)


def _normalizer_globals() -> list:
    from matgl.data.transformer import Normalizer

    return [Normalizer]


def load_legacy_model(path: str | os.PathLike):
    """Load a matgl < 3.0 M3GNet model directory (PES ``Potential`` or Eform ``TransformedTargetModel``).

    Goes through matgl's own ``IOMixIn.load`` with the state dict's legacy key names mapped to the current
    ones, then restores the old node aggregation on the loaded instance.
    """
    import matgl.apps.pes
    import matgl.models

    path = Path(path)
    classes = {"Potential": matgl.apps.pes.Potential, "TransformedTargetModel": matgl.models.TransformedTargetModel,
               "M3GNet": matgl.models.M3GNet}
    name = _model_class(path)
    if name not in classes:
        raise ValueError(f"{path} holds a {name or 'unknown'} model, not an M3GNet model matgl < 3.0 could save")
    state = _load_state(path)
    for old, new in _KEY_RENAMES:
        state = {key.replace(old, new): value for key, value in state.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    files = {"model.json": path / "model.json", "model.pt": path / "model.pt", "state.pt": buffer}
    # The Eform checkpoint pickles its target Normalizer; allow that one class, for this load only.
    with torch.serialization.safe_globals(_normalizer_globals()):
        model = classes[name].load(files)
    restore_legacy_node_aggregation(model)
    return model


__all__ = [
    "LEGACY_MODEL_NAMES",
    "LegacyM3GNetGraphConv",
    "is_legacy_checkpoint",
    "load_legacy_model",
    "restore_legacy_node_aggregation",
    "uses_legacy_node_aggregation",
]
