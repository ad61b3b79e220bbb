import numpy as np
import pytest
import torch

from explorer.generators.langevin.lattice import FAMILY_FREE, LatticeMap, family, lattice_matrices, matrix_jacobian

CASES = {1: (3.1, 4.2, 5.3, 80.0, 95.0, 100.0), 12: (9.1, 3.2, 6.3, 90.0, 105.0, 90.0),
         62: (5.1, 6.2, 7.3, 90.0, 90.0, 90.0), 136: (4.6, 4.6, 2.96, 90.0, 90.0, 90.0),
         191: (3.0, 3.0, 3.3, 90.0, 90.0, 120.0), 225: (5.64, 5.64, 5.64, 90.0, 90.0, 90.0)}


@pytest.mark.parametrize("spacegroup", sorted(CASES))
def test_encode_decode_round_trip(spacegroup):
    parameters = np.array([CASES[spacegroup]])
    lattice = LatticeMap([spacegroup], [4.0])
    z = lattice.encode(parameters)
    back = lattice.parameters(z).numpy()[0]
    assert np.allclose(back[:3], parameters[0, :3], atol=1e-6)
    assert np.allclose(np.degrees(back[3:]), parameters[0, 3:], atol=1e-6)
    assert lattice.free[0].sum() == len(FAMILY_FREE[family(spacegroup)])


def test_tied_entries_follow_the_free_ones():
    lattice = LatticeMap([225, 191], [4.0, 4.0])
    z = torch.randn(2, 6)
    p = lattice.parameters(z)
    assert torch.allclose(p[0, :3], p[0, :1].expand(3)) and torch.allclose(p[1, 0], p[1, 1])
    assert torch.allclose(torch.rad2deg(p[1, 3:]), torch.tensor([90.0, 90.0, 120.0]))


def test_matrix_jacobian_matches_finite_differences():
    torch.set_default_dtype(torch.float64)
    try:
        lattice = LatticeMap([1, 12], [4.0, 5.0])
        z = lattice.encode(np.array([CASES[1], CASES[12]]))
        jac = matrix_jacobian(lattice, z)
        h = 1e-6
        for k in range(6):
            step = torch.zeros(2, 6)
            step[:, k] = h
            numeric = (lattice.matrices(z + step) - lattice.matrices(z - step)) / (2 * h)
            numeric = numeric * lattice.free[:, k, None, None]
            assert torch.allclose(jac[..., k], numeric, atol=1e-5)
    finally:
        torch.set_default_dtype(torch.float32)


def test_lattice_matrices_have_the_parameters():
    p = torch.tensor([[3.0, 4.0, 5.0, 1.3, 1.7, 1.9]], dtype=torch.float64)
    m = lattice_matrices(p)[0]
    a, b, c = m
    assert np.isclose(a.norm(), 3.0) and np.isclose(b.norm(), 4.0) and np.isclose(c.norm(), 5.0)
    assert np.isclose(torch.arccos(b @ c / 20.0), 1.3) and np.isclose(torch.arccos(a @ c / 15.0), 1.7)
