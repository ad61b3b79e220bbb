import numpy as np
import pytest
import torch
from crystal_fixtures import rock_salt_nacl
from pymatgen.core import Lattice, Structure

from explorer.generators.langevin.graph import Crystals, multigraph
from explorer.generators.langevin.wyckoff import asymmetric_unit


def _batch(structures):
    units = [asymmetric_unit(s) for s in structures]
    crystals = Crystals.build([u.spacegroup for u in units], [u.numbers for u in units], [u.wyckoff for u in units],
                              [4.0] * len(units))
    points = torch.tensor(np.concatenate([u.points for u in units]), dtype=torch.float32)
    z = crystals.lattice.encode(np.stack([u.parameters for u in units])).float()
    return units, crystals, points, crystals.lattice.matrices(z)


def wurtzite() -> Structure:
    return Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                     [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])


def test_atoms_of_the_batch_are_the_conventional_cells():
    units, crystals, points, _ = _batch([rock_salt_nacl(), wurtzite()])
    coords = crystals.atom_coords(points).numpy()
    first = len(units[0].frac_coords()[1])
    assert crystals.atom_ptr.tolist() == [0, first, first + 4]
    for unit, part in zip(units, (coords[:first], coords[first:])):
        expected = unit.frac_coords()[1]
        d = np.mod(part, 1.0)[:, None] - expected[None]
        assert (np.abs(d - np.rint(d)).max(-1).min(1) < 1e-5).all()


@pytest.mark.parametrize("cutoff", [3.5, 5.0])
def test_edges_are_the_neighbours_of_each_representative(cutoff):
    units, crystals, points, matrices = _batch([rock_salt_nacl(), wurtzite()])
    graph = multigraph(crystals, points, matrices, cutoff, max_neighbors=1000)
    site = 0
    for b, unit in enumerate(units):
        conventional = unit.structure()
        for _ in range(len(unit.numbers)):
            representative = crystals.site_first[site] - crystals.atom_ptr[b]
            expected = sorted(n.nn_distance for n in conventional.get_neighbors(conventional[int(representative)],
                                                                               cutoff))
            found = sorted(graph.distances[graph.dst == site].tolist())
            assert np.allclose(found, expected, atol=1e-4)
            site += 1
    assert torch.allclose(graph.vectors.norm(dim=1), graph.distances)


def test_triplet_angles_are_those_of_the_full_crystal():
    units, crystals, points, matrices = _batch([wurtzite()])
    graph = multigraph(crystals, points, matrices, 3.5, max_neighbors=1000)
    # every angle of the multigraph appears among the angles between neighbour vectors of the full crystal
    conventional = units[0].structure()
    angles = set()
    for site in conventional:
        vectors = [n.coords - site.coords for n in conventional.get_neighbors(site, 3.5)]
        for u in vectors:
            for v in vectors:
                c = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
                angles.add(round(float(np.degrees(np.arccos(np.clip(c, -1, 1)))), 1))
    found = {round(float(a), 1) for a in np.degrees(graph.angles.numpy())}
    assert found and all(any(abs(a - b) < 0.3 for b in angles) for a in found)
