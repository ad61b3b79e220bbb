"""Shared fixtures: tiny crystals built in code and a tiny structure CSV.gz written to a temporary folder.

Nothing here reads the third-party data directory; every test runs in seconds on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from crystal_fixtures import (  # noqa: F401
    cesium_chloride,
    cubic_srtio3,
    diamond_si,
    fcc_copper,
    rock_salt_nacl,
    tiny_rows,
    write_csv_gz,
)
from pymatgen.core import Structure

if os.environ.get("PYTEST_XDIST_WORKER"):
    # the suite runs on two xdist workers (pyproject addopts: -n 2) on a 2-core machine: one thread each, and the
    # same for what they start (the CLI, the app server, dask workers), so that the two never fight for the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """The grouped tests (the headless-browser ones, ``xdist_group``) first: with ``--dist loadgroup`` the longest
    part of the suite starts at once on one worker and the rest is shared out beside it."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)


@pytest.fixture
def nacl() -> Structure:
    return rock_salt_nacl()


@pytest.fixture
def si() -> Structure:
    return diamond_si()


@pytest.fixture
def srtio3() -> Structure:
    return cubic_srtio3()


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    """Path of a tiny structure CSV.gz (columns as in the shared data files)."""
    return write_csv_gz(tmp_path / "tiny_structures.csv.gz", tiny_rows())


@pytest.fixture(scope="session")
def tiny_csv_session(tmp_path_factory) -> Path:
    return write_csv_gz(tmp_path_factory.mktemp("data") / "tiny_structures.csv.gz", tiny_rows())


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Processed-array caches go to the test's temporary folder, never to ~/.cache."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny_data_dir(tmp_path, monkeypatch) -> Path:
    """EXPLORER_DATA_DIR pointed at a tiny data directory (see :func:`crystal_fixtures.write_data_dir`)."""
    from crystal_fixtures import write_data_dir

    folder = write_data_dir(tmp_path / "data")
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def potential():
    """M3GNet (the default PES of the models directory), loaded once per module; skips without its weights."""
    from crystal_fixtures import missing_weights

    from explorer.config import models_dir
    from explorer.relax import load_potential
    from explorer.relax.potentials import DEFAULT_PES

    if not (models_dir() / DEFAULT_PES / "model.json").is_file():
        pytest.skip(missing_weights())
    return load_potential("m3gnet")


@pytest.fixture(scope="module")
def references(potential, tmp_path_factory):
    """Elemental references from ASE's crystals only (no data directory), relaxed once per module."""
    from explorer.relax import ElementalReferences

    return ElementalReferences(potential, polymorphs=0, cache=tmp_path_factory.mktemp("references"))
