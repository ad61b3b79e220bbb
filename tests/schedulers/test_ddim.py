import math

import pytest
import torch

from explorer.schedulers import DDIMScheduler, DDPMScheduler


def _noised(scheduler, x0, noise):
    t = int(scheduler.timesteps[0])
    return scheduler.add_noise(x0, noise, torch.full((x0.shape[0],), t))


@pytest.mark.parametrize("steps", [3, 5])
def test_ddim_eta0_with_exact_noise_recovers_x0(steps):
    scheduler = DDIMScheduler(1000, eta=0.0)
    scheduler.set_timesteps(steps)
    x0 = torch.rand(2, 64, 3) * 2 - 1
    noise = torch.randn(2, 64, 3)
    x = _noised(scheduler, x0, noise)
    for t in scheduler.timesteps.tolist():
        x = scheduler.step(noise, t, x)  # the exact noise, unchanged along the deterministic path
        a_prev = float(scheduler.alphas_cumprod[t - scheduler.step_ratio]) if t >= scheduler.step_ratio else 1.0
        torch.testing.assert_close(x, math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * noise, atol=1e-4, rtol=0)
    torch.testing.assert_close(x, x0, atol=1e-4, rtol=0)


def test_ddim_eta0_is_deterministic():
    scheduler = DDIMScheduler(1000)
    scheduler.set_timesteps(4)
    sample, eps = torch.randn(1, 64, 3), torch.randn(1, 64, 3)
    t = int(scheduler.timesteps[0])
    a = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(1))
    b = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_ddim_eta1_adds_noise():
    scheduler = DDIMScheduler(1000, eta=1.0)
    scheduler.set_timesteps(4)
    sample, eps = torch.randn(1, 64, 3), torch.randn(1, 64, 3)
    t = int(scheduler.timesteps[0])
    a = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(1))
    b = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(a, b)
    # no noise on the final step
    c = scheduler.step(eps, 0, sample, generator=torch.Generator().manual_seed(1))
    d = scheduler.step(eps, 0, sample, generator=torch.Generator().manual_seed(2))
    assert torch.equal(c, d)


def test_ddim_shares_the_ddpm_schedule():
    ddim, ddpm = DDIMScheduler(1000), DDPMScheduler(1000)
    assert isinstance(ddim, DDPMScheduler)
    assert torch.equal(ddim.alphas_cumprod, ddpm.alphas_cumprod)
