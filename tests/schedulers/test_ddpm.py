import math

import numpy as np
import pytest
import torch

from explorer.schedulers import DDPMScheduler, cosine_betas


def _reference_cosine_betas(T, s=0.008, max_beta=0.999):
    """squaredcos_cap_v2 (Nichol & Dhariwal 2021, improved DDPM), written independently with numpy."""
    t = np.arange(T + 1, dtype=np.float64) / T
    alpha_bar = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


@pytest.mark.parametrize("T", [10, 1000])
def test_cosine_betas_match_squaredcos_cap_v2(T):
    betas = cosine_betas(T)
    assert betas.dtype == torch.float64 and betas.shape == (T,)
    np.testing.assert_allclose(betas.numpy(), _reference_cosine_betas(T), rtol=1e-12, atol=1e-15)
    assert float(betas.max()) == pytest.approx(0.999)  # capped at the end
    assert torch.all(betas[1:] >= betas[:-1])


def test_alphas_cumprod_and_schedules():
    scheduler = DDPMScheduler(1000)
    abar = scheduler.alphas_cumprod
    assert torch.all(abar[1:] < abar[:-1]) and 0 < float(abar[-1]) < 1e-3 and float(abar[0]) > 0.999
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert float(abar[499]) == pytest.approx(f(0.5) / f(0.0), rel=1e-9)
    linear = DDPMScheduler(100, beta_schedule="linear")
    assert float(linear.alphas_cumprod[0]) == pytest.approx(1 - 1e-4)
    with pytest.raises(ValueError):
        DDPMScheduler(100, beta_schedule="nope")


def test_set_timesteps():
    scheduler = DDPMScheduler(1000)
    scheduler.set_timesteps(5)
    assert scheduler.timesteps.tolist() == [800, 600, 400, 200, 0]
    assert scheduler.step_ratio == 200
    for bad in (0, 1001):
        with pytest.raises(ValueError):
            scheduler.set_timesteps(bad)
    assert float(scheduler.model_time(500)) == pytest.approx(0.5)


def test_add_noise_formula():
    scheduler = DDPMScheduler(1000)
    x0 = torch.randn(3, 64, 3)
    noise = torch.randn(3, 64, 3)
    steps = torch.tensor([0, 400, 999])
    xt = scheduler.add_noise(x0, noise, steps)
    for i, t in enumerate(steps.tolist()):
        a = float(scheduler.alphas_cumprod[t])
        torch.testing.assert_close(xt[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * noise[i])


def _sample_with_oracle(scheduler, x0, steps, seed):
    """Run the reverse process with a network that returns the exact noise of the current sample."""
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=generator)
    x = scheduler.add_noise(x0, noise, torch.full((x0.shape[0],), int(scheduler.timesteps[0])))
    for t in scheduler.timesteps.tolist():
        a = float(scheduler.alphas_cumprod[t])
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        x = scheduler.step(eps, t, x, generator=generator)
    return x


@pytest.mark.parametrize("steps", [3, 5])
def test_ddpm_with_exact_noise_recovers_x0(steps):
    x0 = torch.rand(2, 64, 3) * 2 - 1
    x = _sample_with_oracle(DDPMScheduler(1000), x0, steps, seed=0)
    torch.testing.assert_close(x, x0, atol=1e-4, rtol=0)


def test_ddpm_step_is_stochastic_but_reproducible():
    scheduler = DDPMScheduler(1000)
    scheduler.set_timesteps(4)
    sample = torch.randn(2, 64, 3)
    eps = torch.randn(2, 64, 3)
    t = int(scheduler.timesteps[0])
    a = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(1))
    b = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(1))
    c = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.isfinite(a).all()
    # the last step (t = 0) is the posterior mean, with no noise added
    last = [scheduler.step(eps, 0, sample, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert torch.equal(last[0], last[1])


def test_predict_x0_is_clipped():
    scheduler = DDPMScheduler(1000)
    x0 = scheduler.predict_x0(torch.full((1, 64, 3), -50.0), 999, torch.zeros(1, 64, 3))
    assert float(x0.abs().max()) == pytest.approx(scheduler.clip_sample_range)
