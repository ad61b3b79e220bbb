"""Checkpoint payloads (explorer.generators.payload): a network made with a checkpoint's weights."""

import itertools

import pytest
import torch
from torch import nn

from explorer.config import PRETRAINED_DIR
from explorer.generators.langevin.model import ScoreNetwork
from explorer.generators.payload import read_payload, with_weights
from explorer.models import build_model


def tensors(module: nn.Module) -> dict:
    return dict(itertools.chain(module.named_parameters(), module.named_buffers()))


@pytest.mark.parametrize("path, build", [("langevin_dimenetpp.pt", lambda p: ScoreNetwork(**p["model"])),
                                         ("cfm_normal_transformer.pt", lambda p: build_model(p["model"]))])
def test_a_shipped_network_built_without_initialisation_holds_the_checkpoints_numbers(path, build):
    payload = read_payload(PRETRAINED_DIR / path)
    made = with_weights(lambda: build(payload), payload["state_dict"])
    usual = build(payload)
    usual.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    ours, theirs = tensors(made), tensors(usual)
    assert ours.keys() == theirs.keys()
    assert all(t.device.type == "cpu" and t.dtype == theirs[k].dtype and torch.equal(t, theirs[k])
               for k, t in ours.items())
    assert not made.training and all(p.requires_grad for p in made.parameters())


class Computed(nn.Module):
    """A module that keeps a tensor computed at construction that no checkpoint holds."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.table = torch.arange(3.0) * 2  # not a buffer: the checkpoint cannot set it


class Reads(nn.Module):
    """A module whose construction reads a value (impossible on the meta device)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("norm", torch.ones(1) * float(torch.ones(1).sum().item()))


@pytest.mark.parametrize("cls", [Computed, Reads])
def test_a_module_that_needs_its_construction_is_built_as_usual(cls):
    state = {k: torch.full_like(v, 0.5).half() for k, v in cls().state_dict().items()}
    made = with_weights(cls, state)
    assert all(not t.is_meta and t.dtype == torch.float32 and torch.all(t == 0.5) for t in tensors(made).values())
    if cls is Computed:
        assert torch.equal(made.table, torch.tensor([0.0, 2.0, 4.0]))
