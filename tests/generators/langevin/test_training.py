import json

import numpy as np
import pytest
import torch
from crystal_fixtures import TINY_SCORE_NETWORK as TINY
from crystal_fixtures import one_torch_thread, write_data_dir

from explorer.errors import ExplorerInputError
from explorer.fileio import file_sha256
from explorer.generators import GenerationRequest
from explorer.generators.langevin.dataset import load_training_units
from explorer.generators.langevin.generator import load_langevin
from explorer.generators.langevin.training import export_langevin, train_langevin
from explorer.generators.registry import get_generator
from explorer.generators.training import TrainConfig
from explorer.representation import detect_spacegroup


@pytest.fixture
def units(tmp_path):
    data_dir = write_data_dir(tmp_path / "data")
    return load_training_units(data_dir, ("train",)), load_training_units(data_dir, ("val",))


def _config(**values):
    return TrainConfig(method="langevin", model=TINY, batch_size=2, warmup_steps=2, checkpoint_every=2, val_every=2,
                       threads=1, **values)


def test_units_of_the_data_dir(units):
    train, val = units
    # NaCl (twice: the NaN-energy row too), Si, CsCl, KBr; the broken CIF is left out; SrTiO3
    assert len(train) == 5 and len(val) == 1
    assert sorted(train.spacegroup.tolist()) == [221, 225, 225, 225, 227]
    frequencies = train.frequencies()
    assert frequencies[(225, 10)] + frequencies[(225, 11)] == 6  # Wyckoff 4b and 4a of Fm-3m: three rock salts


def test_train_resume_export_and_sample(units, tmp_path):
    train, val = units
    with one_torch_thread():
        first = train_langevin(_config(max_steps=2), train, val, tmp_path / "run", progress=False)
        resumed = train_langevin(_config(max_steps=4), train, val, tmp_path / "run", progress=False)
    assert first["steps"] == 2 and resumed["steps"] == 4 and np.isfinite(resumed["val_loss"])
    prior = json.loads((tmp_path / "run" / "prior.json").read_text())
    assert {"volumes", "frequencies", "element_frequencies", "patterns", "z_mean"} <= set(prior)
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    export_langevin(tmp_path / "run", pretrained / "tiny.pt")
    network, loaded_prior = load_langevin(pretrained / "tiny.pt")
    assert loaded_prior["patterns"] == prior["patterns"]
    assert all(p.dtype == torch.float32 for p in network.parameters())
    with one_torch_thread():  # a warm start begins from the exported weights (fp16), not from a fresh network
        warm = train_langevin(_config(max_steps=0, init_from=str(pretrained / "tiny.pt")), train, val,
                              tmp_path / "warm", progress=False)
        fresh = train_langevin(_config(max_steps=0, seed=1), train, val, tmp_path / "fresh", progress=False)
    assert warm["val_loss"] == pytest.approx(resumed["val_loss"], rel=2e-2)
    assert warm["val_loss"] != pytest.approx(fresh["val_loss"], rel=2e-2)
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["init_from"].endswith("tiny.pt")
    with pytest.raises(ExplorerInputError, match="neither a checkpoint file nor a shipped model"):
        train_langevin(_config(max_steps=0, init_from="no-such-model"), train, val, tmp_path / "x", progress=False)
    entry = {"name": "tiny-langevin", "family": "langevin", "task": "generation", "file": "tiny.pt",
             "method": "langevin", "sampler": "langevin", "default_steps": 4,
             "sampler_options": {"steps_per_level": 2}, "sha256": file_sha256(pretrained / "tiny.pt")}
    (pretrained / "manifest.json").write_text(json.dumps({"default": "tiny-langevin", "models": [entry]}))
    generator = get_generator("tiny-langevin", directory=pretrained)
    request = GenerationRequest(species=(11, 17), spacegroup=225)
    assert generator.steps_used(None) == 5  # 2 levels x 2 steps + the final denoising step
    seen = []
    with one_torch_thread():
        candidates = generator.sample(request, n=3, seed=0, callback=lambda i, n: seen.append((i, n)))
    assert [c.spacegroup_detected for c in candidates] == [225] * 3
    assert seen[-1] == (5, 5)
    assert all(c.model == "tiny-langevin" and c.steps == 5 for c in candidates)
    with pytest.raises(ExplorerInputError, match="does not take a target formation energy"):
        generator.check(GenerationRequest(species=(11, 17), spacegroup=225, energy=-1.0))
    with pytest.raises(ExplorerInputError, match="needs a space group"):
        generator.check(GenerationRequest(species=(11, 17)))
    with pytest.raises(ExplorerInputError, match="no Wyckoff positions of space group 221 hold Na1Cl3"):
        generator.check(GenerationRequest(species=(11, 17, 17, 17), spacegroup=221, wyckoff={"Cl": 2}))
    with pytest.raises(ExplorerInputError, match="sites per element"):
        generator.check(GenerationRequest(species=(11, 17), spacegroup=225, wyckoff={"4a": 1}))
    fluorite = generator.sample_structures([GenerationRequest(species=(20, 9, 9), spacegroup=225,
                                                              wyckoff={"Ca": 1, "F": 1})], steps=2)
    assert detect_spacegroup(fluorite[0]) == 225  # Ca 4a, F 8c: no free parameter


def test_not_a_langevin_checkpoint(tmp_path):
    torch.save({"model": {}, "method": "cfm-normal", "state_dict": {}}, tmp_path / "matrix.pt")
    with pytest.raises(ExplorerInputError, match="not a langevin inference checkpoint"):
        load_langevin(tmp_path / "matrix.pt")
