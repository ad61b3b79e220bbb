import pytest
import torch

from explorer.generators.matrix.losses import lattice_rows, masked_mse, pbc_loss
from explorer.representation import MATRIX_ROWS


def _batch(target_rows, pred_rows):
    """(pred, target, site_mask) with the given coordinate rows and zero elsewhere."""
    n = len(target_rows)
    target = torch.zeros(1, MATRIX_ROWS, 3)
    pred = torch.zeros(1, MATRIX_ROWS, 3)
    target[0, :n] = torch.tensor(target_rows, dtype=torch.float32)
    pred[0, :n] = torch.tensor(pred_rows, dtype=torch.float32)
    mask = torch.zeros(1, MATRIX_ROWS, dtype=torch.bool)
    mask[0, :n] = True
    return pred.requires_grad_(True), target, mask


@pytest.mark.parametrize("target, pred", [
    ([[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]),  # vertex atom on the opposite corner
    ([[0.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]),
    ([[0.0, 0.5, 0.3]], [[1.0, 0.5, 0.3]]),  # face atom on the opposite face
    ([[0.0, 0.5, 0.0], [0.25, 0.5, 0.75]], [[1.0, 0.5, 1.0], [0.25, 0.5, 0.75]]),
])
def test_pbc_loss_vanishes_on_an_equivalent_periodic_image(target, pred):
    p, t, mask = _batch(target, pred)
    loss = pbc_loss(p, t, mask)
    assert float(loss.detach()) < 1e-4
    loss.backward()
    assert torch.isfinite(p.grad).all()


def test_pbc_loss_positive_otherwise_and_equals_distance_for_interior_atoms():
    p, t, mask = _batch([[0.5, 0.5, 0.5]], [[0.5, 0.5, 0.8]])
    loss = pbc_loss(p, t, mask)
    assert float(loss.detach()) == pytest.approx(0.3, abs=1e-4)
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    # an interior component has no periodic partner inside this loss
    p, t, mask = _batch([[0.3, 0.5, 0.5]], [[1.3, 0.5, 0.5]])
    assert float(pbc_loss(p, t, mask).detach()) == pytest.approx(1.0, abs=1e-4)
    # a vertex target is matched by its nearest corner
    p, t, mask = _batch([[0.0, 0.0, 0.0]], [[0.9, 0.9, 0.9]])
    value = float(pbc_loss(p, t, mask).detach())
    assert 0 < value <= (3 * 0.1**2) ** 0.5 + 1e-4


def test_pbc_loss_ignores_padding_rows_and_averages_over_sites():
    p, t, mask = _batch([[0.5, 0.5, 0.5], [0.2, 0.2, 0.2]], [[0.5, 0.5, 0.6], [0.2, 0.2, 0.4]])
    with torch.no_grad():
        p[0, 10] = 5.0  # garbage in an empty row
        p[0, MATRIX_ROWS - 3 :] = 7.0  # lattice rows are not part of this loss
    assert float(pbc_loss(p, t, mask).detach()) == pytest.approx((0.1 + 0.2) / 2, abs=1e-4)


def test_masked_mse():
    target = torch.zeros(2, MATRIX_ROWS, 3)
    pred = torch.zeros(2, MATRIX_ROWS, 3)
    rows = torch.zeros(2, MATRIX_ROWS, dtype=torch.bool)
    rows[:, :2] = True
    pred[0, 0] = 1.0  # 3 squared errors of 1 over 2 rows x 3 columns -> 0.5
    pred[1, 30] = 100.0  # masked out
    assert float(masked_mse(pred, target, rows)) == pytest.approx(0.25)


def test_lattice_rows():
    x = torch.arange(2 * MATRIX_ROWS * 3, dtype=torch.float32).view(2, MATRIX_ROWS, 3)
    assert torch.equal(lattice_rows(x), x[:, 61:])
