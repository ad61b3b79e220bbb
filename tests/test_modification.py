"""Modification: polymorph pairs, site alignment, objectives and the one-step / diffusion / flow samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data import ProcessedSet
from explorer.models import CrystalTransformer
from explorer.modification import (
    ModificationObjective,
    ModificationPipeline,
    align_sites,
    epoch_pairs,
    lowest_pairs,
    non_lowest_pairs,
    pair_tensors,
    polymorph_groups,
)
from explorer.representation import encode


def _polymorph_set(nacl, si) -> ProcessedSet:
    """Three NaCl 'polymorphs' (rattled copies) with different energies and one Si structure."""
    crystals, energies = [], []
    for shift, energy in ((0.0, -2.0), (0.04, -1.7), (0.08, -1.5)):
        s = nacl.copy()
        s.translate_sites([0], [shift, 0, 0])
        crystals.append(encode(s, canonicalize=False))
        energies.append(energy)
    crystals.append(encode(si))
    energies.append(0.0)
    n = len(crystals)
    species = np.zeros((n, 60), np.uint8)
    for i, c in enumerate(crystals):
        species[i, : c.n_sites] = c.atomic_numbers
    return ProcessedSet(np.stack([c.matrix for c in crystals]), species,
                        np.array([c.n_sites for c in crystals], np.int16),
                        np.array([225, 225, 225, 227], np.int16), np.array(energies, np.float32),
                        np.array(["train"] * n), np.array([f"m{i}" for i in range(n)]))


def test_groups_are_sorted_by_energy_and_pairs_follow_the_paper(nacl, si):
    data = _polymorph_set(nacl, si)
    groups = polymorph_groups(data)
    assert len(groups) == 1 and list(groups[0]) == [0, 1, 2]  # Si has no polymorph
    assert lowest_pairs(groups).tolist() == [[1, 0], [2, 0]]
    assert non_lowest_pairs(groups).tolist() == [[2, 1]]
    pairs = epoch_pairs(groups, np.random.default_rng(0))
    assert sorted(map(tuple, pairs.tolist())) == [(1, 0), (2, 0), (2, 1)]


def test_align_sites_undoes_a_permutation_within_species():
    species = np.array([11, 11, 17, 17] + [0] * 56)
    initial = np.zeros((64, 3), np.float32)
    initial[:4] = [[0.1, 0.1, 0.1], [0.6, 0.6, 0.6], [0.3, 0.3, 0.3], [0.8, 0.8, 0.8]]
    target = initial.copy()
    target[0] = [0.62, 0.6, 0.6]  # Na rows swapped and displaced; 0.98 is near 0.1 only through the
    target[1] = [0.98, 0.1, 0.1]  # periodic image
    target[[2, 3]] = target[[3, 2]]
    aligned = align_sites(initial, target, species)
    assert np.allclose(aligned[0], [0.98, 0.1, 0.1]) and np.allclose(aligned[1], [0.62, 0.6, 0.6])
    assert np.allclose(aligned[2:4], initial[2:4])
    assert np.allclose(aligned[4:], 0)


@pytest.mark.parametrize("method", ["regression", "palette", "cfm", "palette-cfm"])
def test_objective_and_pipeline_run_for_every_method(method, nacl, si):
    data = _polymorph_set(nacl, si)
    model = CrystalTransformer(dim=32, depth=1, heads=2, with_initial=True)
    x1, cond = pair_tensors(data, lowest_pairs(polymorph_groups(data)))
    assert cond.initial is not None and torch.allclose(cond.energy, torch.tensor([-0.3, -0.5]))  # E_target - E_init
    loss, logs = ModificationObjective(method)(model, x1, cond)
    loss.backward()
    assert torch.isfinite(loss) and logs
    out = ModificationPipeline(model.eval(), method)(cond, steps=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 64, 3)
    assert float(out[:, :60].min()) >= 0 and float(out[:, :60].max()) < 1
    assert torch.all(out[:, 8:61] == 0)  # padding rows stay empty


def test_palette_cfm_warm_started_from_the_generation_model_samples_like_it(nacl, si):
    """Zero columns for the initial structure: before fine-tuning, the modification model is the cfm-normal
    generation model (same samples from the same noise)."""
    from explorer.models import build_model
    from explorer.pipeline import GenerationPipeline
    from explorer.training import widen_inputs

    generation = CrystalTransformer(dim=32, depth=1, heads=2)
    torch.manual_seed(0)
    for p in generation.parameters():
        torch.nn.init.normal_(p, std=0.05)
    modification = build_model({**generation.config, "with_initial": True})
    modification.load_state_dict(widen_inputs(generation.state_dict(), modification.state_dict()))
    data = _polymorph_set(nacl, si)
    _, cond = pair_tensors(data, lowest_pairs(polymorph_groups(data)))
    plain = type(cond)(cond.elements, cond.site_mask, cond.spacegroup, cond.energy)
    a = GenerationPipeline(generation.eval(), "cfm-normal")(plain, steps=4, generator=torch.Generator().manual_seed(1))
    b = ModificationPipeline(modification, "palette-cfm")(cond, steps=4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-5)


def test_best_of_draws_keeps_a_sample_that_meets_the_conditions(nacl, si):
    from explorer.errors import ExplorerInputError
    from explorer.generation import condition_score
    from explorer.modification import sample_best_modified

    data = _polymorph_set(nacl, si)
    _, cond = pair_tensors(data, lowest_pairs(polymorph_groups(data)))
    species = [data.species[t][: data.n_sites[t]] for t in lowest_pairs(polymorph_groups(data))[:, 1]]
    model = CrystalTransformer(dim=32, depth=1, heads=2, with_initial=True).eval()
    pipeline = ModificationPipeline(model, "cfm")
    one = sample_best_modified(pipeline, cond, species, [225, 225], 1, 3, torch.Generator().manual_seed(0))
    best = sample_best_modified(pipeline, cond, species, [225, 225], 3, 3, torch.Generator().manual_seed(0))
    assert len(best) == 2 and all(condition_score(b, 225) >= condition_score(o, 225) for b, o in zip(best, one))
    with pytest.raises(ExplorerInputError, match="deterministic"):
        sample_best_modified(ModificationPipeline(model, "regression"), cond, species, [225, 225], 2)


def test_untrained_regression_is_the_identity(nacl, si):
    """The one-step model predicts a displacement, so with zero-initialised outputs it returns the input."""
    data = _polymorph_set(nacl, si)
    model = CrystalTransformer(dim=32, depth=1, heads=2, with_initial=True).eval()
    _, cond = pair_tensors(data, lowest_pairs(polymorph_groups(data)))
    out = ModificationPipeline(model, "regression")(cond)
    assert torch.allclose(out, cond.initial, atol=1e-6)


@pytest.mark.parametrize("model", ["mod-regression", "mod-palette", "mod-cfm", "mod-palette-cfm"])
def test_modify_with_every_shipped_model_keeps_the_composition(model, nacl):
    from pymatgen.core import Composition

    from explorer.modification import modify

    candidates = modify(nacl, 221, -0.1, model=model, n=2, steps=3, seed=0, device="cpu", prototypes=0,
                        relax_steps=0)
    assert len(candidates) == 2
    for c in candidates:
        assert c.structure.composition.reduced_composition == Composition("NaCl")
        assert c.structure.volume > 0 and c.spacegroup_requested == 221 and c.model == model


def test_modify_puts_known_prototypes_first(nacl, tiny_data_dir):
    from explorer.errors import ExplorerInputError
    from explorer.modification import modify

    # auto: up to 2 of 3 candidates are prototypes (here one is known), all relaxed with M3GNet
    candidates = modify(nacl, 221, -0.1, n=3, steps=2, seed=0, device="cpu", relax_steps=5)
    assert [c.model for c in candidates] == ["prototype", "mod-palette-cfm", "mod-palette-cfm"]
    assert [c.index for c in candidates] == [0, 1, 2]
    first = candidates[0]
    assert first.extra["prototype"]["source_formula"] == "CsCl" and first.spacegroup_detected == 221
    assert first.formula == "NaCl" and first.valid
    assert all(c.extra["relaxation"]["steps"] <= 5 and c.extra["relaxation"]["status"] for c in candidates)
    assert first.extra["relaxation"]["energy_per_atom"] < 0
    assert first.extra["relaxation"]["potential"].startswith("M3GNet")
    unrelaxed = modify(nacl, 221, -0.1, n=1, steps=2, device="cpu", relax_steps=0)[0]
    assert unrelaxed.structure.volume / len(unrelaxed.structure) == pytest.approx(nacl.volume / len(nacl))
    assert "relaxation" not in unrelaxed.extra
    # the uploaded structure itself (rock-salt NaCl is in the library) says so when it comes back
    own = modify(nacl, 225, -0.1, n=2, steps=2, device="cpu", relax_steps=0)[0]
    assert own.model == "prototype" and own.extra["prototype"]["same_as_reference"]
    assert not first.extra["prototype"]["same_as_reference"]
    samples = modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", prototypes=0, relax_steps=0)
    assert [c.model for c in samples] == ["mod-palette-cfm"] * 2
    by_method = modify(nacl, 221, -0.1, model="regression", n=1, device="cpu", prototypes=0, relax_steps=0)
    assert by_method[0].model == "mod-regression"  # the issue's --model regression|palette|cfm
    for bad in (-1, "many", 1.5):
        with pytest.raises(ExplorerInputError, match="prototypes"):
            modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", prototypes=bad)
    with pytest.raises(ExplorerInputError, match="relaxation steps"):
        modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", relax_steps=-1)
    with pytest.raises(ExplorerInputError, match="fmax"):
        modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", relax_fmax=float("nan"))


def test_modify_asked_for_prototypes_without_data_says_so(nacl, tmp_path, monkeypatch):
    from explorer.errors import ExplorerInputError
    from explorer.modification import evaluate_modification, modify

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "no-data"))
    auto = modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", relax_steps=0)  # auto: the network only
    assert [c.model for c in auto] == ["mod-palette-cfm"] * 2
    with pytest.raises(ExplorerInputError, match="EXPLORER_DATA_DIR"):
        modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", prototypes=True, relax_steps=0)
    with pytest.raises(ExplorerInputError, match="no-prototypes"):
        evaluate_modification(tmp_path / "any.csv.gz")


def test_evaluate_modification_uses_prototypes_of_other_formulas(tmp_path, tiny_data_dir):
    from crystal_fixtures import write_polymorph_pairs_csv

    from explorer.modification import evaluate_modification

    csv_path = write_polymorph_pairs_csv(tmp_path / "pairs.csv.gz")
    with_prototypes = evaluate_modification(csv_path, steps=2, device="cpu", workers=1, relax_steps=5)
    assert with_prototypes["n"] == 1 and with_prototypes["match_rate"] == 1.0
    assert with_prototypes["prototype_share"] == 1.0 and with_prototypes["model"] == "mod-palette-cfm+prototypes"
    assert with_prototypes["relax_steps"] == 5
    model_only = evaluate_modification(csv_path, steps=2, device="cpu", workers=1, prototypes=False, relax_steps=0)
    assert model_only["prototype_share"] == 0.0 and model_only["model"] == "mod-palette-cfm"


def test_modify_rejects_unsupported_compositions_and_bad_input(nacl):
    from pymatgen.core import Lattice, Structure

    from explorer.errors import ExplorerInputError
    from explorer.modification import modify

    with pytest.raises(ExplorerInputError, match="not trained on"):
        modify(Structure(Lattice.cubic(4.0), ["No"], [[0, 0, 0]]), 221, -0.1, device="cpu")
    with pytest.raises(ExplorerInputError, match="at most 60"):
        modify(Structure(Lattice.cubic(20.0), ["Na"] * 61, np.random.default_rng(0).random((61, 3))), 1, 0.0,
               device="cpu")
    with pytest.raises(ExplorerInputError):
        modify(nacl, 231, -0.1, device="cpu")


def test_perturbed_pairs_rattle_and_strain_a_copy_of_the_target(nacl, si):
    from explorer.modification import perturbed_pairs

    data = _polymorph_set(nacl, si)
    x1, cond = perturbed_pairs(data, np.array([0, 3]), np.random.default_rng(0))
    assert torch.equal(x1, torch.from_numpy(data.matrix[[0, 3]]))
    assert torch.all(cond.energy == 0) and cond.spacegroup.shape == (2, 192, 4, 4)
    moved = cond.initial - x1
    moved = (moved - torch.round(moved))[cond.site_mask].abs()  # minimum image: moves across the cell boundary
    assert 0 < float(moved.max()) < 0.2 and float(moved.mean()) < 0.05
    assert torch.all(cond.initial[~cond.row_mask()] == 0)  # empty rows stay empty
    assert not torch.equal(cond.initial[:, 61:], x1[:, 61:])  # strained cell


@pytest.mark.parametrize("augment", [0.0, 0.5])
def test_train_modification_runs_with_and_without_augmentation(augment, nacl, si, tmp_path):
    from explorer.training import TrainConfig, train_modification

    data = _polymorph_set(nacl, si)
    config = TrainConfig(method="palette-cfm", model={"arch": "transformer", "dim": 32, "depth": 1, "heads": 2,
                                                      "with_initial": True},
                         batch_size=2, warmup_steps=1, max_steps=4, checkpoint_every=100, val_every=100,
                         augment=augment)
    summary = train_modification(config, data, data, tmp_path / "run", progress=False)
    assert summary["steps"] == 4 and np.isfinite(summary["val_loss"]) and summary["groups"] == 1
