import numpy as np
import pytest
import torch
from crystal_fixtures import TINY_SCORE_NETWORK as TINY
from crystal_fixtures import one_torch_thread
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from explorer.generators.langevin.model import ScoreNetwork
from explorer.generators.langevin.pipeline import LangevinPipeline, Template, primitive_structure
from explorer.generators.langevin.sampler import LangevinScheduler
from explorer.generators.langevin.wyckoff import asymmetric_unit, site_splits
from explorer.representation import detect_spacegroup

PRIOR = {"volumes": [0.0] + [15.0] * 118,
         "z_mean": {f: [0.5413, 0.5413, 0.5413, np.pi / 2, np.pi / 2, np.pi / 2]
                    for f in ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "hexagonal", "cubic")}}


@pytest.mark.parametrize("spacegroup, species, element", [
    ("Fm-3m", ["Cu"], "F"), ("Im-3m", ["Fe"], "I"), ("Cmcm", ["Mn", "O", "O"], "C"), ("Amm2", ["Ga", "N"], "A"),
    ("R-3m", ["Bi", "Se"], "R")])
def test_primitive_structure_removes_the_centring(spacegroup, species, element):
    coords = [[0.0, 0.0, 0.0], [0.13, 0.37, 0.21], [0.41, 0.11, 0.33]][: len(species)]
    lattice = {"R": Lattice.hexagonal(4.1, 28.6), "F": Lattice.cubic(3.6), "I": Lattice.cubic(2.9)}.get(
        element, Lattice.orthorhombic(3.1, 4.7, 5.9))
    conventional = Structure.from_spacegroup(spacegroup, lattice, species, coords)
    unit = asymmetric_unit(conventional)
    primitive = primitive_structure(unit)
    assert len(primitive) * {"F": 4, "I": 2, "C": 2, "A": 2, "R": 3}[element] == len(unit.structure())
    assert StructureMatcher().fit(primitive, conventional)


def test_scheduler_ladder_and_steps():
    scheduler = LangevinScheduler()
    scheduler.set_timesteps(5, 3)
    assert scheduler.num_steps == 15 and len(scheduler.timesteps) == 15
    assert scheduler.timesteps[0] == (0, 0.0) and scheduler.timesteps[-1] == (4, 1.0)
    high, low = scheduler.sigma(0.0), scheduler.sigma(1.0)
    assert high[0] > low[0] and high[1] > low[1]
    noise = torch.zeros(2, 3)
    move = scheduler.step_positions(torch.ones(2, 3), 1.0, noise)
    assert torch.allclose(move, torch.full((2, 3), 0.5 * scheduler.gamma_positions * low[0]))


def test_samples_have_the_requested_group_and_progress_is_reported():
    torch.manual_seed(0)
    network = ScoreNetwork(**TINY)
    pipeline = LangevinPipeline(network, PRIOR)
    pipeline.scheduler.set_timesteps(3, 2)
    requests = [([11, 17], 225), ([22, 22, 8, 8, 8, 8], 136), ([30, 30, 8, 8], 186), ([26] * 4 + [14] * 4, 62)]
    templates = []
    for species, group in requests:
        split = site_splits(species, group)[0]
        templates.append(Template(group, split.numbers, split.wyckoff))
    seen = []
    with one_torch_thread():
        units = pipeline(templates, torch.Generator().manual_seed(1), callback=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 7) for i in range(1, 8)]
    for unit, (species, group) in zip(units, requests):
        structure = primitive_structure(unit)
        assert sorted(s.specie.Z for s in structure) == sorted(species)
        assert detect_spacegroup(structure) == group  # by construction (an untrained network)


def test_a_raising_callback_stops_sampling():
    pipeline = LangevinPipeline(ScoreNetwork(**TINY), PRIOR)
    pipeline.scheduler.set_timesteps(3, 2)

    def cancel(i, n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline([Template(225, (11, 17), (10, 9))], callback=cancel)
