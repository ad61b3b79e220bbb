"""Novelty against the training structures: True / False when the data (and its processed cache) are there,
None (unknown) otherwise. Everything comes from the tiny data directory and the test's own cache, never the
machine-wide one."""

from __future__ import annotations

import warnings

from pymatgen.core import Lattice, Structure

from explorer.novelty import novelty, training_available


def test_unknown_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))  # an empty data directory
    assert not training_available()
    assert novelty([Structure(Lattice.cubic(3), ["Na"], [[0, 0, 0]])]) == [None]


def test_known_and_new_structures(tiny_data_dir):
    from explorer.data import load_training_data

    assert not training_available()  # the data files are there, their arrays not cached yet: unknown
    load_training_data(splits=("train",), workers=1)
    assert training_available()
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    odd = Structure(Lattice.cubic(7.7), ["Na", "Cl"], [[0, 0, 0], [0.31, 0.17, 0.05]])  # nothing like it exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert novelty([rock_salt, odd]) == [False, True]
