"""Fixtures for the relaxation and stability tests: the real M3GNet weights (skipped when absent), one torch
thread, and one elemental-reference cache for the whole session (each element is relaxed once)."""

from __future__ import annotations

import numpy as np
import pytest
from crystal_fixtures import missing_weights, one_torch_thread
from pymatgen.core import Lattice, Structure

from explorer.config import models_dir
from explorer.relax.potentials import DEFAULT_EFORM, DEFAULT_PES


def _weights_present(name: str) -> bool:
    path = models_dir() / name
    return all((path / f).is_file() for f in ("model.json", "model.pt", "state.pt"))


@pytest.fixture(scope="session")
def pes_path():
    """Directory of the legacy M3GNet PES weights (the test is skipped without them)."""
    if not _weights_present(DEFAULT_PES):
        pytest.skip(missing_weights())
    return models_dir() / DEFAULT_PES


@pytest.fixture(scope="session")
def eform_path():
    if not _weights_present(DEFAULT_EFORM):
        pytest.skip(missing_weights("M3GNet-MP-2018.6.1-Eform"))
    return models_dir() / DEFAULT_EFORM


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def reference_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("references-cache")


@pytest.fixture(autouse=True)
def _session_cache(reference_cache, monkeypatch, _isolated_cache):
    """Caches (elemental references) shared by all relax tests, still outside ~/.cache."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(reference_cache))


@pytest.fixture(scope="session")
def m3gnet(pes_path):
    from explorer.relax import load_potential

    return load_potential("m3gnet")


@pytest.fixture(scope="session")
def references(m3gnet, reference_cache):
    from explorer.relax import ElementalReferences

    return ElementalReferences(m3gnet, cache=reference_cache / "references")


def rattled(structure: Structure, sigma: float = 0.05, seed: int = 0) -> Structure:
    rng = np.random.default_rng(seed)
    coords = structure.cart_coords + rng.normal(0.0, sigma, (len(structure), 3))
    return Structure(structure.lattice, structure.species, coords, coords_are_cartesian=True)


def conventional_nacl(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cubic_srtio3(a: float = 3.905) -> Structure:
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def diamond_si(a: float = 5.43) -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), ["Si"], [[0, 0, 0]])


def overlapping_nacl() -> Structure:
    return Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])


MALFORMED_CIF = "data_broken\nthis is not a cif\n"


class Crystals:
    """Builders of the test crystals (a fixture, so test modules need not import this conftest)."""

    nacl = staticmethod(conventional_nacl)
    srtio3 = staticmethod(cubic_srtio3)
    si = staticmethod(diamond_si)
    overlapping = staticmethod(overlapping_nacl)
    rattled = staticmethod(rattled)
    malformed_cif = MALFORMED_CIF


@pytest.fixture(scope="session")
def crystals() -> Crystals:
    return Crystals()
