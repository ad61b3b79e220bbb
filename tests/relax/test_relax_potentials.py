"""Potential loading: models directory resolution, paths and names, CHGNet as the offline fallback."""

from __future__ import annotations

import pytest

from explorer.config import models_dir
from explorer.errors import ExplorerInputError
from explorer.relax import load_potential, relax_one, shared_potential


def test_models_dir_resolution(tmp_path, monkeypatch):
    assert models_dir(tmp_path) == tmp_path
    monkeypatch.setenv("EXPLORER_MODELS_DIR", str(tmp_path / "env"))
    assert models_dir() == tmp_path / "env"


def test_path_name_and_spec_load_the_same_weights(m3gnet, pes_path):
    by_path = load_potential(pes_path)
    by_name = load_potential(pes_path.name, models=pes_path.parent)
    again = load_potential(m3gnet.spec)  # what a worker process does
    assert by_path.fingerprint == by_name.fingerprint == again.fingerprint == m3gnet.fingerprint
    assert load_potential(m3gnet) is m3gnet


def test_shared_potential_is_loaded_once(m3gnet, pes_path):
    first = shared_potential(str(pes_path))
    assert shared_potential(str(pes_path)) is first and first.fingerprint == m3gnet.fingerprint
    assert shared_potential(m3gnet) is m3gnet


def test_bad_potentials(tmp_path, eform_path):
    with pytest.raises(ExplorerInputError, match="no matgl model"):
        load_potential(tmp_path)
    with pytest.raises(ExplorerInputError, match="not an interatomic potential"):
        load_potential(eform_path)  # the Eform regressor gives no forces


def test_chgnet_fallback_without_m3gnet_weights(tmp_path, monkeypatch, crystals):
    pytest.importorskip("chgnet")
    monkeypatch.setenv("EXPLORER_MODELS_DIR", str(tmp_path / "no-models"))
    with pytest.warns(UserWarning, match="using CHGNet instead"):
        potential = load_potential("m3gnet")
    assert potential.spec.kind == "chgnet" and potential.name.startswith("CHGNet")
    result = relax_one(potential, crystals.si(), steps=100)
    assert result.status == "ok"
    assert result.energy_per_atom == pytest.approx(-5.31, abs=0.05)  # CHGNet 0.3.0, diamond Si


def test_known_weights_are_hash_checked(pes_path, tmp_path):
    import shutil

    from crystal_fixtures import tamper

    copy = tmp_path / pes_path.name
    shutil.copytree(pes_path, copy, copy_function=shutil.copyfile)  # writable copies of read-only files
    assert load_potential(copy).name == pes_path.name  # an intact copy loads
    tamper(copy / "state.pt")
    with pytest.raises(ExplorerInputError, match="does not match the published M3GNet-MP-2021.2.8-PES weights"):
        load_potential(copy)
