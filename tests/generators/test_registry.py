import json

import pytest
from crystal_fixtures import copy_shipped_model, tamper

from explorer.config import PRETRAINED_DIR
from explorer.errors import ExplorerInputError
from explorer.fileio import file_sha256
from explorer.generators import (
    GenerationRequest,
    Generator,
    available_models,
    default_model,
    get_generator,
    list_generators,
    model_info,
    read_manifest,
)
from explorer.generators.matrix.pipeline import MODIFICATION_METHODS
from explorer.generators.registry import checkpoint_path
from explorer.schedulers import make_scheduler

SHIPPED = ("ddpm", "ddim", "cfm-normal", "cfm-uniform", "mod-palette-cfm", "langevin")


def test_manifest_lists_the_shipped_models():
    manifest = read_manifest()
    assert set(SHIPPED) <= set(available_models())
    assert default_model() in available_models("generation")
    assert default_model("modification") in available_models("modification")
    for entry in manifest["models"]:
        for key in ("name", "family", "task", "file", "method", "sampler", "model", "data", "command", "sha256"):
            assert key in entry, (entry["name"], key)
        if entry["family"] == "langevin":
            assert entry["default_steps"] > 0 and {"gamma_positions", "gamma_lattice"} <= set(entry["sampler_options"])
        elif entry["family"] == "diffcsp":  # the DiffCSP peer: its own predictor-corrector sampler, strided
            assert 1 <= entry["default_steps"] <= entry["model"]["timesteps"] and "chemeleon-dng" in entry["peer"]
        elif entry["task"] == "generation":
            make_scheduler(entry["method"], entry["sampler"])  # a valid method/sampler pair
        else:
            assert entry["method"] in MODIFICATION_METHODS and entry["elements"]
        assert (PRETRAINED_DIR / entry["file"]).is_file()
        assert file_sha256(PRETRAINED_DIR / entry["file"]) == entry["sha256"]


def test_every_model_is_a_generator_of_its_family():
    for summary in list_generators():
        generator = get_generator(summary["name"])
        assert isinstance(generator, Generator)
        assert generator.family == summary["family"] and generator.task == summary["task"]
        assert summary["conditions"] == sorted(generator.conditions)
        assert set(summary["metrics"]) <= {"val", "test"}


def test_aliases_and_task_checks():
    assert model_info("palette-cfm").name == "mod-palette-cfm"
    assert model_info(None, task="modification").name == default_model("modification")
    with pytest.raises(ExplorerInputError, match="is a modification model.*explorer modify"):
        model_info("mod-cfm", task="generation")
    with pytest.raises(ExplorerInputError, match="is a generation model"):
        model_info("cfm-normal", task="modification")
    with pytest.raises(ExplorerInputError, match="unknown model 'no-such-model'; available: "):
        model_info("no-such-model")
    with pytest.raises(ExplorerInputError, match="unknown task"):
        available_models("screening")


def test_a_condition_the_model_does_not_take_is_refused():
    generation = get_generator("cfm-normal")
    with pytest.raises(ExplorerInputError, match="does not take Wyckoff site counts"):
        generation.check(GenerationRequest(species=(11, 17), spacegroup=225, energy=-2.0, wyckoff={"a": 1}))
    with pytest.raises(ExplorerInputError, match="needs a space group"):
        generation.check(GenerationRequest(species=(11, 17), energy=-2.0))


def test_the_default_follows_the_conditions_given(tmp_path):
    manifest = read_manifest()
    assert manifest["default_by_conditions"] == ["langevin", "cfm-normal"]
    assert default_model(given={"formula", "spacegroup"}) == "langevin"
    assert default_model(given={"formula", "spacegroup", "wyckoff"}) == "langevin"
    assert default_model(given={"formula", "spacegroup", "energy"}) == "cfm-normal"  # langevin takes no energy
    assert default_model(given={"formula"}) == default_model() == manifest["default"]  # none fits: the default
    assert default_model("modification", given={"formula"}) == manifest["default_modification"]
    manifest["default_by_conditions"] = ["no-such-model", "cfm-normal"]  # an entry not shipped is passed over
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert default_model(directory=tmp_path, given={"formula", "spacegroup", "energy"}) == "cfm-normal"
    assert default_model(directory=tmp_path, given={"formula", "spacegroup"}) == manifest["default"]


def test_unknown_family_is_one_line(tmp_path):
    manifest = read_manifest()
    manifest["models"][0]["family"] = "no-such-family"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    name = manifest["models"][0]["name"]
    with pytest.raises(ExplorerInputError, match="unknown generator family 'no-such-family'"):
        get_generator(name, directory=tmp_path)


def test_checkpoint_path_checks_the_manifest_hash(tmp_path):
    info = copy_shipped_model(tmp_path)
    assert checkpoint_path(model_info(info.name, directory=tmp_path), tmp_path) == tmp_path / info.file
    path = tmp_path / info.file
    tamper(path)
    with pytest.raises(ExplorerInputError, match="sha256"):
        checkpoint_path(model_info(info.name, directory=tmp_path), tmp_path)
    path.unlink()
    with pytest.raises(ExplorerInputError, match="not found"):
        checkpoint_path(model_info(info.name, directory=tmp_path), tmp_path)


def test_lookup_errors(tmp_path):
    with pytest.raises(ExplorerInputError, match="manifest"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("name", ["cfm-normal", "langevin"])
def test_two_sessions_sample_one_shared_generator_at_once(name):
    """The app's sessions share one generator per model (get_generator is cached) and may sample at the same
    time, in threads, with different step counts: each call gets exactly what it gets alone (a sampler's
    timesteps used to live on the shared pipeline, and the second call's replaced the first's mid-loop)."""
    import threading

    generator = get_generator(name)
    requests = {"cfm-normal": [GenerationRequest(species=(12, 12, 8, 8), spacegroup=225, energy=-3.0)],
                "langevin": [GenerationRequest(species=(12, 8), spacegroup=225)]}[name]
    calls = ((4, 0), (30, 1), (10, 2), (30, 3))  # (steps, seed)
    alone = [generator.sample_structures(requests * 2, steps=steps, seed=seed) for steps, seed in calls]
    barrier, together, errors = threading.Barrier(len(calls)), {}, []

    def run(i, steps, seed):
        barrier.wait()
        try:
            together[i] = generator.sample_structures(requests * 2, steps=steps, seed=seed)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i, structures in enumerate(alone):
        for a, b in zip(structures, together[i]):
            assert a.lattice.abc == pytest.approx(b.lattice.abc, abs=1e-6)
            assert a.frac_coords == pytest.approx(b.frac_coords, abs=1e-6)
