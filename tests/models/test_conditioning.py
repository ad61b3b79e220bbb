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
