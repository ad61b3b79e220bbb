import pytest
import torch

from explorer.representation import MATRIX_ROWS
from explorer.schedulers import FlowEulerScheduler, minimum_image, wrap_coordinates


def _integrate(scheduler, x, velocity_fn, steps):
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        x = scheduler.step(velocity_fn(x, t), t, x)
    return x


@pytest.mark.parametrize("steps", [1, 3, 5])
def test_euler_with_exact_constant_velocity_reaches_x1(steps):
    x0, x1 = torch.randn(2, 64, 3), torch.randn(2, 64, 3)
    x = _integrate(FlowEulerScheduler(), x0, lambda x, t: x1 - x0, steps)
    torch.testing.assert_close(x, x1, atol=1e-5, rtol=0)


@pytest.mark.parametrize("steps", [3, 5])
def test_periodic_euler_takes_the_minimum_image_path(steps):
    x0, x1 = torch.rand(2, 64, 3), torch.rand(2, 64, 3)
    x1[:, MATRIX_ROWS - 3 :] = torch.randn(2, 3, 3)  # lattice rows are not periodic
    velocity = x1 - x0
    velocity[:, : MATRIX_ROWS - 3] = minimum_image(velocity[:, : MATRIX_ROWS - 3])
    scheduler = FlowEulerScheduler(periodic=True)
    scheduler.set_timesteps(steps)
    x = x0
    for t in scheduler.timesteps:
        x = scheduler.step(velocity, t, x)
        coords = x[:, : MATRIX_ROWS - 3]
        assert torch.all((coords >= 0) & (coords < 1))
    gap = minimum_image(x - x1)
    gap[:, MATRIX_ROWS - 3 :] = (x - x1)[:, MATRIX_ROWS - 3 :]
    assert float(gap.abs().max()) < 1e-5


def test_timesteps_and_model_time():
    scheduler = FlowEulerScheduler()
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert float(scheduler.model_time(scheduler.timesteps[2])) == 0.5
    with pytest.raises(ValueError):
        scheduler.set_timesteps(0)


def test_wrap_coordinates_and_minimum_image():
    x = torch.full((1, 64, 3), -0.25)
    wrapped = wrap_coordinates(x)
    assert torch.all(wrapped[:, : MATRIX_ROWS - 3] == 0.75)
    assert torch.all(wrapped[:, MATRIX_ROWS - 3 :] == -0.25)  # lattice untouched
    assert torch.all(x == -0.25)  # input not modified in place
    delta = torch.tensor([0.7, -0.7, 0.2, 1.4, -0.49])
    torch.testing.assert_close(minimum_image(delta), torch.tensor([-0.3, 0.3, 0.2, 0.4, -0.49]))
