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


@pytest.mark.parametrize("method", ["regression", "palette", "cfm"])
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


def test_untrained_regression_is_the_identity(nacl, si):
    """The one-step model predicts a displacement, so with zero-initialised outputs it returns the input."""
    data = _polymorph_set(nacl, si)
    model = CrystalTransformer(dim=32, depth=1, heads=2, with_initial=True).eval()
    _, cond = pair_tensors(data, lowest_pairs(polymorph_groups(data)))
    out = ModificationPipeline(model, "regression")(cond)
    assert torch.allclose(out, cond.initial, atol=1e-6)


@pytest.mark.parametrize("model", ["mod-regression", "mod-palette", "mod-cfm"])
def test_modify_with_every_shipped_model_keeps_the_composition(model, nacl):
    from pymatgen.core import Composition

    from explorer.modification import modify

    candidates = modify(nacl, 221, -0.1, model=model, n=2, steps=3, seed=0, device="cpu")
    assert len(candidates) == 2
    for c in candidates:
        assert c.structure.composition.reduced_composition == Composition("NaCl")
        assert c.structure.volume > 0 and c.spacegroup_requested == 221 and c.model == model


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
