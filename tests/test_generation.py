import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from explorer.candidates import Candidate, condition_score, make_candidate
from explorer.errors import ExplorerInputError
from explorer.generation import check_energy, generate, generation_request, parse_formula
from explorer.generators import available_models, default_model, get_generator


@pytest.fixture(scope="module")
def candidates():
    """Three SrTiO3 samples of the default shipped model (3 Euler/diffusion steps), as sampled."""
    return generate("SrTiO3", 221, -3.5, n=3, steps=3, seed=0, device="cpu", network_only=True)


def test_generate_returns_n_candidates_of_the_requested_composition(candidates):
    assert len(candidates) == 3
    for i, c in enumerate(candidates):
        assert isinstance(c, Candidate)
        assert c.structure.composition == Composition("SrTiO3")
        assert c.formula == "SrTiO3"
        assert np.all((c.structure.frac_coords >= 0) & (c.structure.frac_coords < 1))
        assert c.structure.volume > 0 and np.isfinite(c.structure.lattice.matrix).all()
        assert c.spacegroup_requested == 221 and 1 <= c.spacegroup_detected <= 230
        assert c.target_energy == -3.5
        assert c.model == default_model() and c.steps == 3 and c.seed == 0 and c.index == i
        assert c.min_distance > 0 and c.valid == (not c.invalid_reason)
        assert not c.valid or c.min_distance >= 0.5
        summary = c.summary()
        assert summary["n_sites"] == 5 and summary["formula"] == "SrTiO3" and summary["volume"] > 0


def test_candidate_dict_round_trip(candidates):
    original = candidates[0]
    restored = Candidate.from_dict(original.as_dict())
    assert isinstance(restored.structure, Structure)
    assert restored.structure == original.structure
    assert restored.summary() == original.summary()


def test_same_seed_same_structures(candidates):
    again = generate("SrTiO3", 221, -3.5, n=3, steps=3, seed=0, device="cpu", network_only=True)
    for a, b in zip(candidates, again):
        np.testing.assert_allclose(a.structure.lattice.matrix, b.structure.lattice.matrix, atol=1e-6)
        np.testing.assert_allclose(a.structure.frac_coords, b.structure.frac_coords, atol=1e-6)
    other = generate("SrTiO3", 221, -3.5, n=1, steps=3, seed=1, device="cpu", network_only=True)[0]
    assert not np.allclose(other.structure.frac_coords, candidates[0].structure.frac_coords)


@pytest.mark.parametrize("model", sorted(set(available_models("generation")) - {default_model()}))
def test_every_shipped_model_generates(model):
    conditions = get_generator(model).conditions
    energy = -2.0 if "energy" in conditions else None
    spacegroup = 225 if "spacegroup" in conditions else None  # the descriptor family takes a formula only
    formula = {"descriptor-carbon": "C2", "descriptor-perov": "SrTiO3"}.get(model, "NaCl")  # training elements
    steps = None if get_generator(model).family == "diffcsp" else 3  # DiffCSP samples with its own 1000 steps
    (c,) = generate(formula, spacegroup, energy, n=1, steps=steps, seed=0, model=model, device="cpu",
                    network_only=True)
    assert c.model == model and c.structure.composition == Composition(formula) and c.structure.volume > 0


def test_parse_formula():
    assert parse_formula("NaCl") == [11, 17]
    assert parse_formula("Ta2 W2 B12") == [5] * 12 + [73] * 2 + [74] * 2
    assert parse_formula("SrTiO3") == [8, 8, 8, 22, 38]
    assert len(parse_formula("Na30Cl30")) == 60


@pytest.mark.parametrize("formula", ["Xx", "Xx2O", "", "   ", "NaCl0.5", "Na31Cl30", "Rf2", None, "NaCl0", "Na0Cl",
                                     "Na-1Cl"])
def test_parse_formula_rejects(formula):
    with pytest.raises(ExplorerInputError):
        parse_formula(formula)


@pytest.mark.parametrize("energy", [float("nan"), "nan", float("inf"), "-inf", "abc", None, 10.5, -11])
def test_check_energy_rejects(energy):
    with pytest.raises(ExplorerInputError):
        check_energy(energy)


def test_check_energy_accepts():
    assert check_energy("-1.25") == -1.25
    assert check_energy(0) == 0.0


@pytest.mark.parametrize("kwargs", [
    {"formula": "Xx2O"}, {"formula": "Na31Cl30"}, {"spacegroup": 0}, {"spacegroup": 231},
    {"energy": float("nan")}, {"n": 0}, {"steps": 0}, {"model": "no-such-model"},
])
def test_generate_rejects_bad_input(kwargs):
    args = {"formula": "NaCl", "spacegroup": 225, "energy": -2.0, "n": 1, "steps": 3, "device": "cpu"}
    args.update(kwargs)
    with pytest.raises(ExplorerInputError):
        generate(**args)


def test_make_candidate_flags_overlapping_atoms():
    crowded = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    c = make_candidate(crowded, 225, -1.0, model="test")
    assert not c.valid and c.min_distance == pytest.approx(0.2)
    assert c.spacegroup_requested == 225 and c.model == "test"


def test_a_modification_model_is_refused_by_generate():
    with pytest.raises(ExplorerInputError, match="modification model"):
        generate("NaCl", 225, -2.0, n=1, steps=2, model="mod-regression", device="cpu")


def test_best_of_draws_keeps_the_draw_that_best_meets_the_conditions():
    generator = get_generator(None, task="generation")
    requests = [generation_request("SrTiO3", 221, -3.5), generation_request("NaCl", 225, -2.0)]
    draws = generator.sample_structures([requests[0]] * 3 + [requests[1]] * 3, steps=3, seed=0, device="cpu")
    best = generator.sample_best(requests, 3, steps=3, seed=0, device="cpu")
    for i, (chosen, spacegroup) in enumerate(zip(best, [221, 225])):
        options = draws[3 * i : 3 * i + 3]
        scores = [condition_score(s, spacegroup) for s in options]
        assert chosen == options[scores.index(max(scores))]
    candidates = generate("SrTiO3", 221, -3.5, n=2, steps=3, seed=0, device="cpu", draws=3, network_only=True)
    assert len(candidates) == 2 and all(c.structure.composition == Composition("SrTiO3") for c in candidates)
    with pytest.raises(ExplorerInputError, match="draws"):
        generate("SrTiO3", 221, -3.5, n=2, steps=3, draws=0)


def test_progress_callback_counts_every_sampler_step_and_can_cancel():
    seen = []
    generate("NaCl", 225, -2.0, n=2, steps=4, seed=0, device="cpu", draws=2, callback=lambda i, n: seen.append((i, n)),
             network_only=True)
    assert seen == [(i, 4) for i in range(1, 5)]  # 2 x 2 draws in one batch: 4 steps in all

    class Stop(Exception):
        pass

    def cancel(i, n):
        if i == 2:
            raise Stop

    with pytest.raises(Stop):
        generate("NaCl", 225, -2.0, n=1, steps=10, seed=0, device="cpu", callback=cancel, network_only=True)


def test_condition_score():
    cubic = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    assert condition_score(cubic, 221) == (True, True)
    assert condition_score(cubic, 62) == (True, False)


def test_a_space_group_that_cannot_hold_the_formula_is_refused():
    with pytest.raises(ExplorerInputError, match=r"space group 230 \(Ia-3d\) cannot hold a cell of Na Cl.*225 Fm-3m"):
        generate("NaCl", 230, -2.0, n=1, steps=2, device="cpu")
    with pytest.raises(ExplorerInputError, match="Pnma"):
        generate("NaCl", 62, -2.0, n=1, steps=2, device="cpu")
    (c,) = generate("NaCl", 62, -2.0, n=1, steps=2, device="cpu", check_sites=False)
    assert c.spacegroup_detected != 62  # sampled anyway when asked: it cannot have the group
    # 4 + 4 atoms fit Pnma's 4c
    assert len(generate("Na4Cl4", 62, -2.0, n=1, steps=2, device="cpu", network_only=True)) == 1
