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


def test_a_warm_start_takes_a_shipped_checkpoint_of_its_own_family_only():
    import torch

    from explorer.errors import ExplorerInputError
    from explorer.generators.descriptor.model import VectorDenoiser
    from explorer.generators.langevin.model import ScoreNetwork
    from explorer.generators.registry import checkpoint_path, model_info
    from explorer.generators.training import warm_start

    info = model_info("langevin")
    network = ScoreNetwork(**info.info["model"])
    warm_start(network, "langevin", "langevin")  # by name: the shipped fp16 weights, as float32
    shipped = torch.load(checkpoint_path(info), weights_only=True)["state_dict"]
    name, value = next(iter(network.state_dict().items()))
    assert value.dtype == torch.float32 and torch.equal(value, shipped[name].float())
    with pytest.raises(ExplorerInputError, match="is a langevin checkpoint, not descriptor"):
        warm_start(VectorDenoiser(8, hidden=8, blocks=1), "langevin", "descriptor")
    with pytest.raises(ExplorerInputError, match="is a matrix checkpoint, not langevin"):
        warm_start(network, "cfm-normal", "langevin")
