"""The EAD descriptor and the basin-hopping reconstruction of the descriptor family."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from explorer.errors import ExplorerInputError
from explorer.generators.descriptor.ead import EAD, EADParams, PairList, neighbour_weights
from explorer.generators.descriptor.reconstruction import Reconstructor, entry_scale
from explorer.generators.descriptor.vector import Layout, describe, ead_block, pack


def _nacl():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_pooled_block_is_invariant_to_cell_choice_and_translation():
    params = EADParams()
    conventional = _nacl()
    primitive = conventional.get_primitive_structure()
    moved = primitive.copy()
    moved.translate_sites(range(len(moved)), [0.13, 0.2, 0.31])
    blocks = ead_block([conventional, primitive, moved], params)
    assert blocks.shape == (3, 2 * params.size + 1)
    assert np.allclose(blocks[0], blocks[1], rtol=1e-9, atol=1e-6)
    assert np.allclose(blocks[1], blocks[2], rtol=1e-9, atol=1e-6)
    assert abs(blocks[0, -1] - 5.69 / 2) < 1e-9  # shortest distance


def test_descriptor_gradient_matches_finite_differences():
    structure = _nacl()
    structure.perturb(0.1, min_distance=0.05, seed=0)
    frac, lattice, numbers, mask = pack([structure])
    params = EADParams(n_centres=4)
    pairs = PairList.build(frac, lattice, mask, params.cutoff + 1.0)
    ead = EAD(params)

    def block(f):
        return ead.pooled(f, lattice, neighbour_weights(numbers).double(), mask, pairs)[:, :20]

    assert torch.autograd.gradcheck(block, (frac.clone().requires_grad_(True),))


def test_vector_layout_round_trip():
    layout = Layout(EADParams(), (11, 17))
    vector = describe([_nacl().get_primitive_structure()], layout)[0]
    numbers, lattice = layout.decode(vector)
    assert sorted(numbers) == [11, 17] and np.allclose(lattice[:3], 5.69 / 2**0.5)


def test_reconstruction_recovers_rock_salt_and_reports_each_hop():
    primitive = _nacl().get_primitive_structure()
    params = EADParams()
    target = ead_block([primitive], params)
    scale = entry_scale(ead_block([primitive, primitive.copy().perturb(0.3, seed=0)], params), params)
    reports = []
    out = Reconstructor(params, trials=4, hops=2, iterations=200).run(target, [[11, 17]], [primitive.lattice],
                                                                       scale, callback=reports.append)
    assert [r.hop for r in reports][-1] <= 2 and len(reports) >= 1
    from pymatgen.analysis.structure_matcher import StructureMatcher

    assert StructureMatcher().fit(out[0].structure, primitive)


def test_rounds_restart_only_the_unsolved_structures_and_keep_the_best():
    rock_salt = _nacl().get_primitive_structure()
    perovskite = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                           [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    params = EADParams()
    structures = [rock_salt, perovskite]
    targets = ead_block(structures, params)
    perturbed = [s.copy().perturb(0.3, seed=i) for i, s in enumerate(structures)]
    scale = entry_scale(ead_block(structures + perturbed, params), params)
    numbers = [[site.specie.Z for site in s] for s in structures]
    lattices = [s.lattice for s in structures]
    settings = {"trials": 2, "hops": 2, "iterations": 30}
    once = Reconstructor(params, **settings).run(targets, numbers, lattices, scale, seed=3)
    reports = []
    never_solved = Reconstructor(params, rounds=3, solved=-1.0, **settings)  # every structure gets 3 rounds
    thrice = never_solved.run(targets, numbers, lattices, scale, seed=3, callback=reports.append)
    assert [r.hop for r in reports] == [1, 2, 3, 4, 5, 6] and {r.hops for r in reports} == {6}
    assert all(b.loss <= a.loss + 1e-6 for a, b in zip(once, thrice))  # round 1 is the one-round run
    assert np.all(np.diff(np.stack([r.loss for r in reports]), axis=0) <= 1e-6)  # best so far never rises
    solved_at_once = Reconstructor(params, rounds=3, solved=np.inf, **settings)
    reports = []
    same = solved_at_once.run(targets, numbers, lattices, scale, seed=3, callback=reports.append)
    assert len(reports) == 2 and [r.loss for r in same] == [r.loss for r in once]


def test_a_swap_exchanges_two_unlike_atoms_and_leaves_one_element_trials_alone():
    from explorer.generators.descriptor.reconstruction import _swap_unlike

    cart = torch.arange(18, dtype=torch.float32).reshape(2, 3, 3)
    z = torch.tensor([[8, 8, 9], [6, 6, 0]])  # O, O, F; C, C and a padding slot
    moved, swapped = _swap_unlike(cart, z, np.random.default_rng(0))
    assert swapped.tolist() == [True, False] and torch.equal(moved[1], cart[1])
    changed = [i for i in range(3) if not torch.equal(moved[0, i], cart[0, i])]
    assert len(changed) == 2 and 2 in changed  # the F and one O exchanged places
    assert sorted(map(tuple, moved[0].tolist())) == sorted(map(tuple, cart[0].tolist()))


def test_arrangements_are_every_distinct_placement_of_the_elements_the_current_one_first():
    from explorer.generators.descriptor.reconstruction import arrangement_count, arrangements

    numbers = [31, 27, 16, 8, 8]  # GaCoSO2
    orders = arrangements(numbers)
    assert arrangement_count(numbers) == len(orders) == 60 and orders[0].tolist() == [0, 1, 2, 3, 4]
    placed = set()
    for order in orders:
        at = [0] * 5
        for slot, position in enumerate(order):
            at[position] = numbers[slot]
        placed.add(tuple(at))
    assert len(placed) == 60 and arrangement_count([6] * 8) == 1 and arrangement_count([11, 17]) == 2


class _OneStart:
    """A template source with one start: the given fractional positions, whatever the atoms."""

    def __init__(self, frac):
        self.frac = np.asarray(frac)

    def starts(self, numbers, matrix):
        return [self.frac]


def test_rearranging_puts_exchanged_cations_of_a_perovskite_back():
    """A trial stuck with the two cations exchanged (GaCoSO2 on perov_5 val ended so after 12 rounds of swaps)
    is one arrangement away: the rearranging hop tries all 60 and takes the one of lowest loss."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    ordered = Structure(Lattice.cubic(3.9), ["Ga", "Co", "S", "O", "O"],
                        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    params = EADParams()
    target = ead_block([ordered], params)
    scale = entry_scale(ead_block([ordered.copy().perturb(0.3, seed=s) for s in range(8)], params), params)
    exchanged = ordered.frac_coords[[1, 0, 2, 3, 4]]  # Ga on the Co site and Co on the Ga site
    options = {"trials": 1, "hops": 2, "iterations": 30, "templates": 1, "template_starts": _OneStart(exchanged)}
    run = {"targets": target, "numbers": [[site.specie.Z for site in ordered]], "lattices": [ordered.lattice],
           "scale": scale}
    stuck = Reconstructor(params, **options).run(**run)[0]
    assert not StructureMatcher().fit(stuck.structure, ordered)
    out = Reconstructor(params, permute=120, **options).run(**run)[0]
    assert StructureMatcher().fit(out.structure, ordered) and out.loss < 0.1 * stuck.loss
    with pytest.raises(ExplorerInputError, match="permute"):
        Reconstructor(params, permute=-1)


def test_reconstruction_with_swaps_finds_an_ordered_perovskite():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    ordered = Structure(Lattice.cubic(3.9), ["Ba", "Ti", "O", "O", "F"],
                        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    params = EADParams()
    target = ead_block([ordered], params)
    # a seeded perturbation (the scale depended on the global random state) and rounds for the unsolved:
    # with 3 trials and one round, 7 of 24 (scale, seed) pairs missed; with 6 trials and 3 rounds none did
    scale = entry_scale(ead_block([ordered, ordered.copy().perturb(0.3, seed=0)], params), params)
    out = Reconstructor(params, trials=6, hops=4, iterations=100, swap=True, rounds=3).run(
        target, [[site.specie.Z for site in ordered]], [ordered.lattice], scale, seed=0)
    assert StructureMatcher().fit(out[0].structure, ordered)
