import numpy as np
import pytest
import torch

from explorer.models import CrystalTransformer, build_model, make_conditions
from explorer.representation import MATRIX_ROWS


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Output layers start at zero; give every weight a random value so the tests see a non-trivial map."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model.eval()


@pytest.fixture
def model():
    return _randomised(CrystalTransformer(dim=32, depth=2, heads=2))


def _conditions():
    species = np.zeros((2, 60), dtype=np.int64)
    species[0, :5] = [8, 8, 8, 22, 38]  # SrTiO3
    species[1, :2] = [11, 17]  # NaCl
    return make_conditions(species, np.array([221, 225]), np.array([-3.5, -2.1]))


def _inputs(cond):
    x = torch.rand(2, MATRIX_ROWS, 3) * cond.row_mask().unsqueeze(-1)
    x[:, MATRIX_ROWS - 3 :] = torch.randn(2, 3, 3)
    return x


def test_fresh_transformer_outputs_zero(model):
    fresh = CrystalTransformer(dim=32, depth=2, heads=2)
    cond = _conditions()
    assert torch.all(fresh(_inputs(cond), torch.rand(2), cond) == 0)


def test_output_shape_and_zero_padding_rows(model):
    cond = _conditions()
    x = _inputs(cond)
    with torch.no_grad():
        out = model(x, torch.tensor([0.3, 0.7]), cond)
    assert out.shape == (2, MATRIX_ROWS, 3) and torch.isfinite(out).all()
    assert torch.all(out[0, 5:61] == 0) and torch.all(out[1, 2:61] == 0)
    assert out[0, :5].abs().sum() > 0 and out[:, 61:].abs().sum() > 0
    # garbage in padding rows does not leak into the output
    noisy = x.clone()
    noisy[1, 2:5] = torch.rand(3, 3)
    with torch.no_grad():
        again = model(noisy, torch.tensor([0.3, 0.7]), cond)
    torch.testing.assert_close(again[1], out[1], atol=1e-5, rtol=1e-5)


def test_permutation_equivariance_over_same_element_atoms(model):
    cond = _conditions()
    x = _inputs(cond)
    t = torch.tensor([0.4, 0.4])
    perm = torch.arange(MATRIX_ROWS)
    perm[:3] = torch.tensor([2, 0, 1])  # the three O atoms of SrTiO3 (rows 0..2)
    perm_x = x.clone()
    perm_x[0] = x[0, perm]
    with torch.no_grad():
        out = model(x, t, cond)
        perm_out = model(perm_x, t, cond)
    torch.testing.assert_close(perm_out[0], out[0, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(perm_out[1], out[1], atol=1e-5, rtol=1e-5)


def test_conditions_matter(model):
    cond = _conditions()
    x = _inputs(cond)
    t = torch.tensor([0.4, 0.4])
    other = _conditions()
    other.energy = other.energy + 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x, t, cond), model(x, t, other))


def test_build_model_from_config_and_gradients(model):
    copy = build_model(model.config)
    copy.load_state_dict(model.state_dict())
    cond = _conditions()
    x = _inputs(cond)
    t = torch.tensor([0.1, 0.9])
    torch.testing.assert_close(copy.eval()(x, t, cond), model(x, t, cond).detach())
    loss = model.train()(x, t, cond).pow(2).sum()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_with_initial_structure():
    model = _randomised(CrystalTransformer(dim=16, depth=1, heads=2, with_initial=True))
    species = np.zeros((1, 60), dtype=np.int64)
    species[0, :2] = [11, 17]
    initial = np.zeros((1, 64, 3), dtype=np.float32)
    initial[0, 1] = 0.5
    initial[0, 61:] = np.eye(3)
    cond = make_conditions(species, np.array([225]), np.array([0.1]), initial=initial)
    with torch.no_grad():
        out = model(torch.rand(1, 64, 3), torch.tensor([0.5]), cond)
    assert out.shape == (1, 64, 3) and torch.all(out[0, 2:61] == 0)
