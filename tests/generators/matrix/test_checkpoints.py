import json

import pytest
import torch
from crystal_fixtures import copy_shipped_model, tamper

from explorer.errors import ExplorerInputError
from explorer.generators import get_generator
from explorer.generators.matrix.checkpoints import load_checkpoint

SHIPPED = ("ddpm", "ddim", "cfm-normal", "cfm-uniform", "mod-palette-cfm")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints_load_in_float32_eval_mode(name):
    generator = get_generator(name)
    model = generator.network
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config["arch"] == generator.info.info["model"]["arch"]


def test_intact_copy_loads_from_another_directory(tmp_path):
    info = copy_shipped_model(tmp_path)
    model, method = load_checkpoint(tmp_path / info.file, info.info["sha256"])
    assert method == info.method
    copy = get_generator(info.name, directory=tmp_path).network
    for (k, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items()):
        assert torch.equal(a, b), k


def test_sha256_check_rejects_a_tampered_copy(tmp_path):
    info = copy_shipped_model(tmp_path)
    path = tmp_path / info.file
    tamper(path)
    with pytest.raises(ExplorerInputError, match="sha256"):
        load_checkpoint(path, info.info["sha256"])
    with pytest.raises(ExplorerInputError, match="sha256"):
        get_generator(info.name, directory=tmp_path).network  # noqa: B018


def test_a_pickle_is_refused_in_one_line(tmp_path):
    import pickle

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": object}))
    with pytest.raises(ExplorerInputError, match="cannot be read safely"):
        load_checkpoint(path)


def test_method_mismatch_is_detected(tmp_path):
    info = copy_shipped_model(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for item in manifest["models"]:
        if item["name"] == info.name:
            item["method"] = "ddpm" if info.method != "ddpm" else "cfm-normal"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExplorerInputError, match="trained as"):
        get_generator(info.name, directory=tmp_path).network  # noqa: B018


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ExplorerInputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
