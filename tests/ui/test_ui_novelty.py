"""Novelty against the training structures: True / False when the data (and its processed cache) are there,
None (unknown) otherwise."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from explorer.novelty import novelty, training_available

# read (never written) here: the processed arrays that training/evaluation runs left in the user's cache
USER_CACHE = os.environ.get("EXPLORER_CACHE_DIR", str(Path.home() / ".cache" / "explorer"))
HAVE_DATA = training_available()


def test_unknown_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))  # an empty data directory
    assert not training_available()
    assert novelty([Structure(Lattice.cubic(3), ["Na"], [[0, 0, 0]])]) == [None]


@pytest.mark.skipif(not HAVE_DATA, reason="training data and its processed cache are not here")
def test_known_and_new_structures(monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", USER_CACHE)
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    odd = Structure(Lattice.cubic(7.7), ["Na", "Cl"], [[0, 0, 0], [0.31, 0.17, 0.05]])  # nothing like it exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert novelty([rock_salt, odd]) == [False, True]
