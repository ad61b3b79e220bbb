import pytest

from explorer.generators.training import TrainConfig, learning_rate


def test_learning_rate_schedule():
    config = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=110)
    assert learning_rate(0, config) == pytest.approx(1e-4)
    assert learning_rate(9, config) == pytest.approx(1e-3)
    assert learning_rate(10, config) == pytest.approx(1e-3)
    assert learning_rate(60, config) == pytest.approx(1e-3 * (0.1 + 0.45))
    assert learning_rate(110, config) == pytest.approx(1e-4)
    assert learning_rate(10_000, config) == pytest.approx(1e-4)
    timed = TrainConfig(lr=1e-3, warmup_steps=0, max_steps=10**9, max_minutes=1.0)
    assert learning_rate(5, timed, elapsed=60.0) == pytest.approx(1e-4)
