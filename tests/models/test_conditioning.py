import numpy as np
import pytest
import torch

from explorer.elements import ELEMENT_FEATURES, feature_matrix
from explorer.models import build_model, make_conditions
from explorer.models.conditioning import timestep_embedding
from explorer.spacegroups import operations


def test_make_conditions_shapes_and_masks():
    species = np.zeros((2, 60), dtype=np.int64)
    species[0, :2] = [11, 17]
    species[1, :5] = [8, 8, 8, 22, 38]
    cond = make_conditions(species, np.array([225, 221]), np.array([-2.0, -3.5]))
    assert cond.elements.shape == (2, 64, ELEMENT_FEATURES)
    assert cond.site_mask.shape == (2, 64) and cond.site_mask.sum(1).tolist() == [2, 5]
    assert cond.n_sites.tolist() == [2, 5]
    np.testing.assert_array_equal(cond.elements[0, 1].numpy(), feature_matrix()[16])
    assert torch.all(cond.elements[0, 2:] == 0)
    np.testing.assert_array_equal(cond.spacegroup[0].numpy(), operations(225))
    assert cond.energy.dtype == torch.float32 and cond.initial is None
    rows = cond.row_mask()
    assert rows[0, :2].all() and not rows[0, 2:61].any() and rows[:, 61:].all()
    assert not cond.site_mask[:, 61:].any()  # row_mask does not modify site_mask


def test_timestep_embedding():
    emb = timestep_embedding(torch.tensor([0.0, 0.5, 1.0]), 16)
    assert emb.shape == (3, 16)
    torch.testing.assert_close(emb[0, :8], torch.ones(8))  # cos(0)
    torch.testing.assert_close(emb[0, 8:], torch.zeros(8))  # sin(0)


def test_build_model_rejects_unknown_architecture():
    with pytest.raises(ValueError):
        build_model({"arch": "mlp"})


def test_two_sessions_sampling_at_once_never_take_each_others_encoding():
    """The network is shared between sessions; its sampling cache of the encoded conditions must pair each call's
    conditions with their own tensors (a race once gave one call the other's batch: "size of tensor a (6) must
    match the size of tensor b (4)")."""
    import sys
    import threading

    from explorer.models.conditioning import ConditionEncoder

    encoder = ConditionEncoder(16).eval()
    species = np.zeros((6, 60), dtype=np.int64)
    species[:, :2] = [11, 17]
    batches = [make_conditions(species[:b], np.full(b, 225), np.full(b, -1.0)) for b in (4, 6)]
    errors = []

    def sample(cond):
        t = torch.zeros(cond.energy.shape[0])
        try:
            with torch.no_grad():
                for _ in range(300):
                    encoder._encoded = None  # every call encodes anew: the widest window for a race
                    vector, per_site = encoder(t, cond)
                    assert vector.shape[0] == per_site.shape[0] == cond.energy.shape[0]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=sample, args=(cond,)) for cond in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
