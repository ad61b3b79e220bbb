"""The diffcsp peer: chemeleon-dng's CSPNet and diffusion on our cells, trained in the shared loop, exported,
sampled through the generator interface (a tiny network and 8 timesteps: seconds on a CPU)."""

import json

import numpy as np
import pytest
import torch
from crystal_fixtures import cesium_chloride, cubic_srtio3, rock_salt_nacl
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice

from explorer.errors import ExplorerInputError
from explorer.generators import GenerationRequest
from explorer.generators.diffcsp.dataset import CellSet, canonical_cell
from explorer.generators.diffcsp.generator import DiffCSPGenerator, load_diffcsp
from explorer.generators.diffcsp.network import (
    build_module,
    crystal_batch,
    network_config,
    parameter_count,
    sigma_norm,
)
from explorer.generators.diffcsp.sampler import PredictorCorrectorSampler, strided_timesteps
from explorer.generators.diffcsp.training import export_diffcsp, train_diffcsp
from explorer.generators.registry import ModelInfo
from explorer.generators.training import TrainConfig

TINY = {"hidden_dim": 16, "num_layers": 1, "time_dim": 16, "num_freqs": 4, "timesteps": 8}


def cells(structures) -> CellSet:
    canon = [canonical_cell(s) for s in structures]
    sizes = [len(c) for c in canon]
    return CellSet(np.array([c.lattice.matrix for c in canon], dtype=np.float32),
                   np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                   np.concatenate([[site.specie.Z for site in c] for c in canon]).astype(np.int64),
                   np.concatenate([c.frac_coords for c in canon]).astype(np.float32),
                   np.array(["train"] * len(canon)))


def test_the_canonical_cell_is_the_same_crystal_in_its_primitive_cell():
    conventional = rock_salt_nacl()
    cell = canonical_cell(conventional)
    assert len(cell) == 2 and cell.composition.reduced_formula == "NaCl"
    assert StructureMatcher().fit(cell, conventional)
    assert np.allclose(cell.lattice.matrix, Lattice.from_parameters(*cell.lattice.parameters).matrix)


def test_a_batch_holds_every_cell_and_the_loss_is_finite():
    data = cells([rock_salt_nacl(), cubic_srtio3(), cesium_chloride()])
    batch = crystal_batch(*data.batch([0, 1, 2]))
    assert batch.num_graphs == 3 and batch.num_nodes == 2 + 5 + 2
    assert batch.batch.tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 2]
    module = build_module(TINY)
    loss = module.calculate_loss(batch)["total_loss"]
    assert torch.isfinite(loss)


def test_the_default_network_is_as_large_as_the_default_matrix_model():
    assert 1.4e6 < parameter_count(build_module({})) < 1.8e6  # cfm-normal: 1.61 M parameters
    with pytest.raises(KeyError):
        network_config(hidden=3)


def test_the_score_normaliser_is_the_expectation_that_chemeleon_dng_estimates():
    """:func:`sigma_norm` against chemeleon-dng's own Monte-Carlo estimate (100,000 draws: ~0.45 % noise) and the
    narrow-σ limit 1 / σ²; the module built here carries it."""
    from chemeleon_dng.diffusion.models.dsm import get_sigma_norm

    sigmas = torch.tensor([0.005, 0.01, 0.03, 0.08, 0.15, 0.25, 0.35, 0.5])
    exact = sigma_norm(sigmas)
    estimate = get_sigma_norm(sigmas, sn=100_000)
    assert torch.allclose(exact, estimate, rtol=0.02)
    assert float(exact[0] * sigmas[0] ** 2) == pytest.approx(1.0, abs=1e-4)
    module = build_module(TINY)
    levels = module.diffusion_frac_coord.sigmas[1:]
    assert torch.equal(module.diffusion_frac_coord.sigmas_norm[1:], sigma_norm(levels))
    assert torch.equal(build_module(TINY).diffusion_frac_coord.sigmas_norm, module.diffusion_frac_coord.sigmas_norm)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny diffcsp model trained for 4 steps, exported and registered in a pretrained folder of its own."""
    folder = tmp_path_factory.mktemp("diffcsp")
    data = cells([rock_salt_nacl(), cubic_srtio3(), cesium_chloride()] * 2)
    config = TrainConfig(method="diffcsp", model=dict(TINY), batch_size=2, max_steps=4, warmup_steps=1,
                         checkpoint_every=2, val_every=2)
    summary = train_diffcsp(config, data, data, folder / "run", progress=False)
    assert summary["steps"] == 4 and np.isfinite(summary["val_loss"])
    export_diffcsp(folder / "run", folder / "tiny.pt")
    entry = {"name": "tiny-diffcsp", "family": "diffcsp", "file": "tiny.pt", "method": "diffcsp",
             "sampler": "diffcsp"}
    (folder / "manifest.json").write_text(json.dumps({"models": [entry]}))
    return DiffCSPGenerator(ModelInfo.from_entry(entry), folder)


def test_a_resumed_run_that_reached_its_budget_trains_no_further(shipped):
    run = shipped.directory / "run"
    data = cells([rock_salt_nacl()] * 2)
    config = TrainConfig(method="diffcsp", model=dict(TINY), batch_size=2, max_steps=4)
    assert train_diffcsp(config, data, data, run, progress=False)["steps"] == 4


def test_the_export_is_half_precision_and_loads_back(shipped):
    module, config = load_diffcsp(shipped.directory / "tiny.pt")
    assert config["timesteps"] == 8 and config["hidden_dim"] == 16
    assert all(p.dtype == torch.float32 for p in module.parameters())
    payload = torch.load(shipped.directory / "tiny.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())


def test_samples_have_the_cell_contents_and_repeat_with_the_seed(shipped):
    requests = [GenerationRequest(species=(11, 17)), GenerationRequest(species=(8, 8, 8, 22, 38))]
    calls = []
    first = shipped.sample_structures(requests, seed=3, device="cpu", callback=lambda d, t: calls.append((d, t)))
    again = shipped.sample_structures(requests, seed=3, device="cpu")
    assert [sorted(s.atomic_numbers) for s in first] == [[11, 17], [8, 8, 8, 22, 38]]
    assert all(np.allclose(a.frac_coords, b.frac_coords) for a, b in zip(first, again))
    assert calls[-1] == (8, 8) and len(calls) == 8


def test_the_peer_takes_a_formula_only_and_at_most_its_own_step_count(shipped):
    assert shipped.conditions == {"formula"}
    with pytest.raises(ExplorerInputError, match="does not take a space group"):
        shipped.check(GenerationRequest(species=(11, 17), spacegroup=225))
    with pytest.raises(ExplorerInputError, match="1 to 8 steps"):
        shipped.sample_structures([GenerationRequest(species=(11, 17))], steps=9)
    assert shipped.steps_used(None) == 8
    calls = []
    strided = shipped.sample_structures([GenerationRequest(species=(11, 17))], steps=3, device="cpu",
                                        callback=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (3, 3) and np.isfinite(strided[0].lattice.matrix).all()
    candidates = shipped.sample(GenerationRequest(species=(11, 17)), n=2, seed=0, device="cpu")
    assert [c.model for c in candidates] == ["tiny-diffcsp"] * 2


def test_every_timestep_is_chemeleons_own_predictor_corrector_step(shipped):
    module, config = load_diffcsp(shipped.directory / "tiny.pt")
    sampler = PredictorCorrectorSampler(module, config["step_lr"])  # no lattice clipping: p_sample has none
    assert sampler.timesteps == list(range(8, 0, -1))
    data = cells([rock_salt_nacl(), cubic_srtio3()])
    x = y = crystal_batch(*data.batch([0, 1]))
    with torch.no_grad():
        for t in sampler.timesteps:
            torch.manual_seed(t)
            x = module.p_sample(x_t=x, t=torch.full((2,), t, dtype=torch.long), step_lr=config["step_lr"])
            torch.manual_seed(t)
            y = sampler.step(module, y, t)
    assert torch.allclose(x.lattices, y.lattices, atol=1e-4)
    wrapped = (x.frac_coords - y.frac_coords + 0.5) % 1.0 - 0.5
    assert wrapped.abs().max() < 1e-4


def test_strided_schedules_keep_both_ends_and_take_the_first_step_alone():
    assert strided_timesteps(1000, 1) == [1000]
    assert strided_timesteps(1000, 2) == [1000, 1]
    assert strided_timesteps(1000, 4) == [1000, 999, 500, 1]
    assert len(strided_timesteps(1000, 100)) == 100 and strided_timesteps(1000, 100)[-1] == 1
    with pytest.raises(ValueError):
        strided_timesteps(8, 9)
