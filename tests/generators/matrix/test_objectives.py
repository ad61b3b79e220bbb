import math

import numpy as np
import pytest
import torch
from crystal_fixtures import tiny_rows

from explorer.data import process_rows
from explorer.generators.matrix.objectives import METHODS, Objective, sample_source
from explorer.generators.matrix.training import batch_tensors
from explorer.models import CrystalTransformer, UNet1D
from explorer.representation import MATRIX_ROWS, minimum_image
from explorer.schedulers import DDIMScheduler, DDPMScheduler, FlowEulerScheduler, make_scheduler


@pytest.fixture(scope="module")
def batch():
    data = process_rows(tiny_rows()[:5], workers=1)
    return batch_tensors(data, np.arange(len(data)))


def test_make_scheduler():
    assert type(make_scheduler("ddpm")) is DDPMScheduler
    assert type(make_scheduler("ddpm", "ddpm")) is DDPMScheduler
    assert type(make_scheduler("ddpm", "ddim")) is DDIMScheduler
    normal, uniform = make_scheduler("cfm-normal", "euler"), make_scheduler("cfm-uniform")
    assert isinstance(normal, FlowEulerScheduler) and not normal.periodic
    assert isinstance(uniform, FlowEulerScheduler) and uniform.periodic
    for method, sampler in [("ddpm", "euler"), ("cfm-normal", "ddim"), ("cfm-uniform", "ddpm"), ("gan", None)]:
        with pytest.raises(ValueError):
            make_scheduler(method, sampler)
    with pytest.raises(ValueError):
        Objective("gan")


def test_sample_source():
    generator = torch.Generator().manual_seed(0)
    uniform = sample_source("cfm-uniform", (4, 64, 3), generator)
    assert uniform.min() >= 0 and uniform.max() < 1
    normal = sample_source("ddpm", (64, 64, 3), torch.Generator().manual_seed(0))
    assert normal.min() < 0 and abs(float(normal.mean())) < 0.05 and abs(float(normal.std()) - 1) < 0.05
    again = sample_source("ddpm", (64, 64, 3), torch.Generator().manual_seed(0))
    assert torch.equal(normal, again)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ["transformer", "unet1d"])
def test_objective_loss_and_gradients(method, arch, batch):
    x1, cond = batch
    model = CrystalTransformer(dim=16, depth=1, heads=2) if arch == "transformer" else UNet1D(8, 1, (1, 2), (2,))
    loss, logs = Objective(method)(model, x1, cond)
    assert loss.ndim == 0 and math.isfinite(float(loss.detach())) and float(loss.detach()) > 0
    assert "mse" in logs
    assert ("pbc" in logs) == (method != "cfm-uniform")
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


class Oracle(torch.nn.Module):
    """A 'network' that knows the clean batch x1 and returns the exact regression target."""

    def __init__(self, method, x1):
        super().__init__()
        self.method, self.x1 = method, x1
        self.abar = DDPMScheduler(1000).alphas_cumprod.float()

    def forward(self, xt, t, cond):
        if self.method == "ddpm":
            a = self.abar[torch.round(t * 1000).long()].view(-1, 1, 1)
            return (xt - a.sqrt() * self.x1) / (1 - a).sqrt()
        delta = self.x1 - xt
        if self.method == "cfm-uniform":
            delta[:, : MATRIX_ROWS - 3] = minimum_image(delta[:, : MATRIX_ROWS - 3])
        return delta / (1 - t).view(-1, 1, 1)


@pytest.mark.parametrize("method", METHODS)
def test_exact_prediction_has_zero_loss(method, batch):
    x1, cond = batch
    torch.manual_seed(3)
    loss, logs = Objective(method)(Oracle(method, x1), x1, cond)
    assert logs["mse"] < 1e-4
    assert logs.get("pbc", 0.0) < 1e-3
    assert float(loss) < 1e-3
