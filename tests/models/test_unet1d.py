import numpy as np
import pytest
import torch

from explorer.models import UNet1D, build_model, make_conditions
from explorer.representation import MATRIX_ROWS


def _conditions(batch=3):
    species = np.zeros((batch, 60), dtype=np.int64)
    counts = [5, 2, 1][:batch]
    contents = [[8, 8, 8, 22, 38], [11, 17], [29]]
    for i in range(batch):
        species[i, : counts[i]] = contents[i]
    return make_conditions(species, np.array([221, 225, 225][:batch]), np.array([-3.5, -2.1, 0.0][:batch])), counts


@pytest.fixture
def model():
    net = UNet1D(channels=16, num_res_blocks=1)
    torch.manual_seed(0)
    with torch.no_grad():  # the output layers start at zero; randomise for a non-trivial map
        for p in net.parameters():
            p.normal_(0.0, 0.1)
    return net.eval()


def test_output_shape_and_zero_on_padding_rows(model):
    cond, counts = _conditions()
    x = torch.randn(3, MATRIX_ROWS, 3)
    with torch.no_grad():
        out = model(x, torch.tensor([0.1, 0.5, 0.9]), cond)
    assert out.shape == (3, 64, 3) and torch.isfinite(out).all()
    for i, n in enumerate(counts):
        assert torch.all(out[i, n:61] == 0)
        assert out[i, :n].abs().sum() > 0
    assert out[:, 61:].abs().sum() > 0


def test_fresh_unet_outputs_zero():
    cond, _ = _conditions(2)
    out = UNet1D(channels=16, num_res_blocks=1)(torch.randn(2, 64, 3), torch.rand(2), cond)
    assert out.shape == (2, 64, 3) and torch.all(out == 0)


def test_build_model_round_trip_and_gradients(model):
    copy = build_model(model.config)
    copy.load_state_dict(model.state_dict())
    cond, _ = _conditions(2)
    x, t = torch.randn(2, 64, 3), torch.rand(2)
    torch.testing.assert_close(copy.eval()(x, t, cond), model(x, t, cond).detach())
    model.train()(x, t, cond).pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_with_initial_structure():
    net = UNet1D(channels=8, num_res_blocks=1, channel_mult=(1, 2), attention_resolutions=(2,), with_initial=True)
    species = np.zeros((1, 60), dtype=np.int64)
    species[0, :2] = [11, 17]
    initial = np.random.default_rng(0).random((1, 64, 3))
    cond = make_conditions(species, np.array([225]), np.array([0.0]), initial=initial)
    assert net(torch.randn(1, 64, 3), torch.rand(1), cond).shape == (1, 64, 3)
