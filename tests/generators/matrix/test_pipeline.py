import numpy as np
import pytest
import torch

from explorer.devices import resolve_device
from explorer.errors import ExplorerInputError
from explorer.generators.matrix.pipeline import GenerationPipeline
from explorer.models import CrystalTransformer, make_conditions
from explorer.representation import MATRIX_ROWS


def _conditions():
    species = np.zeros((2, 60), dtype=np.int64)
    species[0, :5] = [8, 8, 8, 22, 38]
    species[1, :2] = [11, 17]
    return make_conditions(species, np.array([221, 225]), np.array([-3.5, -2.1]))


@pytest.fixture(scope="module")
def tiny_model():
    model = CrystalTransformer(dim=16, depth=1, heads=2)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("method, sampler", [("ddpm", "ddpm"), ("ddpm", "ddim"), ("cfm-normal", "euler"),
                                             ("cfm-uniform", "euler")])
def test_pipeline_output(method, sampler, tiny_model):
    pipeline = GenerationPipeline(tiny_model, method, sampler, device="cpu")
    cond = _conditions()
    calls = []
    out = pipeline(cond, steps=3, generator=torch.Generator().manual_seed(0), callback=lambda i, n: calls.append(i))
    assert calls == [1, 2, 3]
    assert out.shape == (2, MATRIX_ROWS, 3) and out.dtype == torch.float32 and torch.isfinite(out).all()
    coords = out[:, : MATRIX_ROWS - 3]
    assert torch.all((coords >= 0) & (coords < 1))
    assert torch.all(out[0, 5:61] == 0) and torch.all(out[1, 2:61] == 0)  # empty rows stay empty
    again = pipeline(cond, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    other = pipeline(cond, steps=3, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(out, other)


class ConstantVelocityTo(torch.nn.Module):
    """Velocity field whose Euler integration from any x_t lands on ``target`` at t = 1."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, x, t, cond):
        return (self.target - x) / (1 - t).view(-1, 1, 1)


def test_flow_pipeline_reaches_the_target():
    cond = _conditions()
    target = torch.rand(2, MATRIX_ROWS, 3) * cond.row_mask().unsqueeze(-1)
    target[:, MATRIX_ROWS - 3 :] = torch.eye(3) * 1.2
    pipeline = GenerationPipeline(ConstantVelocityTo(target), "cfm-normal", device="cpu")
    out = pipeline(cond, steps=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target, atol=1e-5, rtol=0)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ExplorerInputError):
        resolve_device("not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ExplorerInputError, match="CUDA"):
            resolve_device("cuda")


def test_pipeline_rejects_mismatched_sampler(tiny_model):
    with pytest.raises(ValueError):
        GenerationPipeline(tiny_model, "cfm-uniform", "ddim", device="cpu")
