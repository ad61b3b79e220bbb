"""Matrix-family modification models: polymorph pairs, site alignment, objectives, the sampling loops and
training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data import ProcessedSet
from explorer.generators.matrix.modification import (
    ModificationObjective,
    align_sites,
    pair_tensors,
    perturbed_pairs,
)
from explorer.generators.matrix.pipeline import GenerationPipeline, ModificationPipeline
from explorer.models import CrystalTransformer
from explorer.polymorphs import epoch_pairs, lowest_pairs, non_lowest_pairs, polymorph_groups
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
    from explorer.generators.matrix.training import widen_inputs
    from explorer.models import build_model

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


def test_best_of_draws_keeps_a_sample_that_meets_the_conditions(nacl):
    from explorer.candidates import condition_score
    from explorer.errors import ExplorerInputError
    from explorer.generators import GenerationRequest, get_generator

    request = GenerationRequest(spacegroup=225, energy_delta=-0.1, initial=nacl)
    modifier = get_generator("mod-cfm", task="modification")
    one = modifier.sample_best([request] * 2, 1, steps=3, seed=0, device="cpu")
    best = modifier.sample_best([request] * 2, 3, steps=3, seed=0, device="cpu")
    assert len(best) == 2 and all(condition_score(b, 225) >= condition_score(o, 225) for b, o in zip(best, one))
    with pytest.raises(ExplorerInputError, match="deterministic"):
        get_generator("mod-regression", task="modification").sample_best([request] * 2, 2, device="cpu")


def test_untrained_regression_is_the_identity(nacl, si):
    """The one-step model predicts a displacement, so with zero-initialised outputs it returns the input."""
    data = _polymorph_set(nacl, si)
    model = CrystalTransformer(dim=32, depth=1, heads=2, with_initial=True).eval()
    _, cond = pair_tensors(data, lowest_pairs(polymorph_groups(data)))
    out = ModificationPipeline(model, "regression")(cond)
    assert torch.allclose(out, cond.initial, atol=1e-6)


def test_perturbed_pairs_rattle_and_strain_a_copy_of_the_target(nacl, si):
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
    from explorer.generators.matrix.training import TrainConfig, train_modification

    data = _polymorph_set(nacl, si)
    config = TrainConfig(method="palette-cfm", model={"arch": "transformer", "dim": 32, "depth": 1, "heads": 2,
                                                      "with_initial": True},
                         batch_size=2, warmup_steps=1, max_steps=4, checkpoint_every=100, val_every=100,
                         augment=augment)
    summary = train_modification(config, data, data, tmp_path / "run", progress=False)
    assert summary["steps"] == 4 and np.isfinite(summary["val_loss"]) and summary["groups"] == 1
