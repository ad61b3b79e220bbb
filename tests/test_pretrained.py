import json
import shutil

import pytest
import torch

from explorer.config import PRETRAINED_DIR
from explorer.errors import ExplorerInputError
from explorer.modification import METHODS as MODIFICATION_METHODS
from explorer.objectives import make_scheduler
from explorer.pretrained import (
    available_models,
    default_model,
    load_checkpoint,
    load_pretrained,
    model_entry,
    read_manifest,
    sha256,
)

SHIPPED = ("ddpm", "ddim", "cfm-normal", "cfm-uniform", "mod-palette-cfm")


def test_manifest_lists_the_shipped_models():
    manifest = read_manifest()
    assert set(SHIPPED) <= set(available_models())
    assert default_model() in available_models("generation")
    assert manifest["default_modification"] in available_models("modification")
    for entry in manifest["models"]:
        for key in ("name", "file", "method", "sampler", "model", "data", "command", "sha256"):
            assert key in entry, (entry["name"], key)
        if entry["task"] == "generation":
            make_scheduler(entry["method"], entry["sampler"])  # a valid method/sampler pair
        else:
            assert entry["method"] in MODIFICATION_METHODS and entry["elements"]
        assert (PRETRAINED_DIR / entry["file"]).is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints_match_their_sha256_and_load(name):
    entry = model_entry(name)
    assert sha256(PRETRAINED_DIR / entry.file) == entry.info["sha256"]
    model, loaded = load_pretrained(name)
    assert loaded.name == name and loaded.method == entry.method
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config["arch"] == entry.info["model"]["arch"]


def _copy_shipped(tmp_path, name="cfm-uniform"):
    entry = model_entry(name)
    shutil.copy(PRETRAINED_DIR / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(PRETRAINED_DIR / entry.file, tmp_path / entry.file)
    return entry


def test_intact_copy_loads_from_another_directory(tmp_path):
    entry = _copy_shipped(tmp_path)
    model, method = load_checkpoint(tmp_path / entry.file, entry.info["sha256"])
    assert method == entry.method
    copy_model, copy_entry = load_pretrained(entry.name, directory=tmp_path)
    assert copy_entry.file == entry.file
    for (k, a), (_, b) in zip(model.state_dict().items(), copy_model.state_dict().items()):
        assert torch.equal(a, b), k


def test_sha256_check_rejects_a_tampered_copy(tmp_path):
    entry = _copy_shipped(tmp_path)
    path = tmp_path / entry.file
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(b ^ 0xFF for b in raw[middle : middle + 16])
    path.write_bytes(bytes(raw))
    tampered = model_entry(entry.name, directory=tmp_path)
    with pytest.raises(ExplorerInputError, match="sha256"):
        load_checkpoint(path, tampered.info["sha256"])
    with pytest.raises(ExplorerInputError, match="sha256"):
        load_pretrained(entry.name, directory=tmp_path)


def test_method_mismatch_is_detected(tmp_path):
    entry = _copy_shipped(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for item in manifest["models"]:
        if item["name"] == entry.name:
            item["method"] = "ddpm" if entry.method != "ddpm" else "cfm-normal"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExplorerInputError, match="trained as"):
        load_pretrained(entry.name, directory=tmp_path)


def test_lookup_errors(tmp_path):
    with pytest.raises(ExplorerInputError, match="unknown model"):
        model_entry("no-such-model")
    with pytest.raises(ExplorerInputError, match="manifest"):
        read_manifest(tmp_path)
    with pytest.raises(ExplorerInputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
