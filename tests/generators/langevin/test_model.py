import numpy as np
import torch
from crystal_fixtures import TINY_SCORE_NETWORK as TINY
from crystal_fixtures import rock_salt_nacl
from pymatgen.core import Lattice, Structure

from explorer.generators.langevin.graph import Crystals
from explorer.generators.langevin.model import ScoreNetwork
from explorer.generators.langevin.wyckoff import asymmetric_unit


def test_scores_stay_within_each_wyckoff_position():
    torch.manual_seed(0)
    wurtzite = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                         [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])
    units = [asymmetric_unit(s) for s in (rock_salt_nacl(), wurtzite)]
    crystals = Crystals.build([u.spacegroup for u in units], [u.numbers for u in units], [u.wyckoff for u in units],
                              [4.0, 3.0])
    network = ScoreNetwork(**TINY)
    for p in network.parameters():  # the output layers start at zero: give them weights
        torch.nn.init.normal_(p, std=0.3)
    points = torch.tensor(np.concatenate([u.points for u in units]), dtype=torch.float32) + 0.01
    z = crystals.lattice.encode(np.stack([u.parameters for u in units])).float()
    scores, dz, graph = network(crystals, points, z, torch.tensor([0.3, 0.7]), torch.tensor([0.1, 0.1]))
    assert scores.shape == (len(points), 3) and dz.shape == (2, 6)
    assert torch.isfinite(scores).all() and torch.isfinite(dz).all()
    # rock salt: both sites fixed (no free parameter), wurtzite: moves along c only
    assert torch.allclose(scores[:2], torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(scores[2:, :2], torch.zeros(2, 2), atol=1e-4) and scores[2:, 2].abs().max() > 0
    assert (dz[~crystals.lattice.free] == 0).all() and dz[crystals.lattice.free].abs().max() > 0
