import json

import numpy as np
import pytest
import torch
from crystal_fixtures import tiny_rows, write_csv_gz

from explorer.data import load_processed
from explorer.generators.matrix.checkpoints import load_checkpoint
from explorer.generators.matrix.training import (
    TrainConfig,
    batch_tensors,
    export_checkpoint,
    size_bucketed_batches,
    train_generation,
)
from explorer.models import make_conditions

TINY_MODEL = {"arch": "transformer", "dim": 16, "depth": 1, "heads": 2}


@pytest.fixture
def tiny_set(tmp_path):
    """A ProcessedSet of the tiny CSV through the real (cached) loading path; NaN energies removed as in
    ``load_training_data``."""
    data = load_processed(write_csv_gz(tmp_path / "tiny.csv.gz", tiny_rows()), workers=1, progress=False)
    assert list((tmp_path / "cache").glob("tiny-*.npz"))  # EXPLORER_CACHE_DIR points into tmp_path
    return data.select(np.isfinite(data.energy))


def _config(**overrides):
    values = {"method": "cfm-uniform", "model": TINY_MODEL, "batch_size": 2, "warmup_steps": 1, "max_steps": 3,
              "checkpoint_every": 100, "val_every": 100}
    values.update(overrides)
    return TrainConfig(**values)


def test_train_resume_and_export(tiny_set, tmp_path):
    train, val = tiny_set.select(tiny_set.split != "val"), tiny_set.select(tiny_set.split == "val")
    run = tmp_path / "run"
    summary = train_generation(_config(), train, val, run, progress=False)
    assert summary["steps"] == 3 and summary["train_size"] == len(train) == 4
    assert np.isfinite(summary["val_loss"])
    assert (run / "checkpoint.pt").is_file()
    assert json.loads((run / "config.json").read_text())["max_steps"] == 3
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values())

    # resuming with a larger budget continues the step count
    summary = train_generation(_config(max_steps=5), train, val, run, progress=False)
    assert summary["steps"] == 5
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 5
    # resuming a finished run trains no further
    assert train_generation(_config(max_steps=5), train, val, run, progress=False)["steps"] == 5
    finals = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [f["step"] for f in finals if f.get("final")] == [3, 5, 5]

    # export (fp32 and fp16) and load back as an inference model
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    for half in (False, True):
        path = tmp_path / f"export-{half}.pt"
        payload = export_checkpoint(run, path, half=half)
        assert payload["method"] == "cfm-uniform" and payload["model"] == TINY_MODEL
        model, method = load_checkpoint(path)
        assert method == "cfm-uniform" and not model.training
        loaded = model.state_dict()
        assert set(loaded) == set(state["ema"])
        for name, value in state["ema"].items():
            assert loaded[name].dtype == value.dtype
            torch.testing.assert_close(loaded[name], value, atol=1e-3 if half else 0, rtol=1e-3 if half else 0)
        x1, cond = batch_tensors(val, np.arange(len(val)))
        with torch.no_grad():
            assert model(x1, torch.full((len(val),), 0.5), cond).shape == x1.shape


def test_same_seed_same_weights(tiny_set, tmp_path):
    runs = []
    for name in ("a", "b"):
        train_generation(_config(method="ddpm", max_steps=2), tiny_set, tiny_set.select(tiny_set.split == ""),
                         tmp_path / name, progress=False)
        runs.append(torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["ema"])
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key])


def test_size_bucketed_batches_cover_every_structure_once():
    n_sites = np.random.default_rng(0).integers(1, 61, size=203)
    batches = size_bucketed_batches(n_sites, 8, np.random.default_rng(1))
    assert all(1 <= len(b) <= 8 for b in batches)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(203))
    # sizes inside a batch are similar (sorted within chunks of 256)
    assert np.mean([np.ptp(n_sites[b]) for b in batches]) < 10


def test_batch_tensors(tiny_set):
    x1, cond = batch_tensors(tiny_set, np.array([0, 2]))
    assert x1.shape == (2, 64, 3) and x1.dtype == torch.float32
    reference = make_conditions(tiny_set.species[[0, 2]], tiny_set.spacegroup[[0, 2]], tiny_set.energy[[0, 2]])
    assert torch.equal(cond.site_mask, reference.site_mask)
    assert cond.site_mask.sum(1).tolist() == tiny_set.n_sites[[0, 2]].tolist()


def test_warm_start_from_an_exported_checkpoint(tiny_set, tmp_path):
    train, val = tiny_set.select(tiny_set.split != "val"), tiny_set.select(tiny_set.split == "val")
    train_generation(_config(), train, val, tmp_path / "first", progress=False)
    export_checkpoint(tmp_path / "first", tmp_path / "first.pt", half=True)
    exported = torch.load(tmp_path / "first.pt", weights_only=True)["state_dict"]

    # zero training steps: the warm-started weights are exactly the checkpoint's
    train_generation(_config(init_from=str(tmp_path / "first.pt"), max_steps=0), train, val, tmp_path / "second",
                     progress=False)
    state = torch.load(tmp_path / "second" / "checkpoint.pt", weights_only=False)
    assert all(torch.equal(state["model"][k], v.float()) for k, v in exported.items())


def test_palette_cfm_warm_starts_from_a_cfm_normal_generation_checkpoint(tiny_set, tmp_path):
    from explorer.errors import ExplorerInputError
    from explorer.generators.matrix.training import load_initial_weights
    from explorer.models import build_model

    train, val = tiny_set.select(tiny_set.split != "val"), tiny_set.select(tiny_set.split == "val")
    train_generation(_config(method="cfm-normal"), train, val, tmp_path / "gen", progress=False)
    export_checkpoint(tmp_path / "gen", tmp_path / "gen.pt", half=False)
    source = torch.load(tmp_path / "gen.pt", weights_only=True)["state_dict"]
    model = build_model({**_config().model, "with_initial": True})
    load_initial_weights(model, str(tmp_path / "gen.pt"), "palette-cfm")
    state = model.state_dict()
    for key in ("site_in.weight", "lattice_in.weight"):  # the initial-structure inputs start switched off
        width = source[key].shape[1]
        assert torch.equal(state[key][:, :width], source[key]) and not state[key][:, width:].any()
    assert torch.equal(state["blocks.0.qkv.weight"], source["blocks.0.qkv.weight"])
    with pytest.raises(ExplorerInputError, match="not cfm"):  # other modification methods need their own kind
        load_initial_weights(build_model({**_config().model, "with_initial": True}), str(tmp_path / "gen.pt"), "cfm")


@pytest.mark.parametrize("overrides, message", [
    ({"init_from": "no-such-model"}, "neither a checkpoint file nor a shipped model"),
    ({"init_from": "cfm-normal"}, "not cfm-uniform"),
    ({"init_from": "cfm-uniform"}, "different architecture"),
])
def test_warm_start_refuses_what_does_not_fit(tiny_set, tmp_path, overrides, message):
    from explorer.errors import ExplorerInputError

    with pytest.raises(ExplorerInputError, match=message):
        train_generation(_config(**overrides), tiny_set, tiny_set, tmp_path / "run", progress=False)
