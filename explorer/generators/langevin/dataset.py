"""Training data of the langevin family: the rows of mp_structures + wbm_structures as asymmetric units.

Each structure file is symmetrised once (pyxtal, 0.1 Å, about 30 ms a structure) and cached as
``<cache_dir>/<name>-<sha256>[:16]-asym-v<VERSION>.npz``; rows pyxtal cannot place are left out (counted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ...data import TRAINING_FILES, read_rows, source_cache_path
from ...errors import ExplorerInputError
from ...fileio import cached_arrays
from ...structure_io import parse_cif
from .wyckoff import AsymmetricUnit, asymmetric_unit, cell_counts, split_key, split_pattern

VERSION = 1


@dataclass
class AsymmetricSet:
    """Asymmetric units of many structures as flat arrays: structure ``i`` owns sites
    ``offsets[i]:offsets[i + 1]``."""

    spacegroup: np.ndarray  # (S,)
    parameters: np.ndarray  # (S, 6)
    n_atoms: np.ndarray  # (S,) atoms of the source row's cell
    split: np.ndarray  # (S,) str
    offsets: np.ndarray  # (S + 1,)
    numbers: np.ndarray  # (T,)
    wyckoff: np.ndarray  # (T,)
    points: np.ndarray  # (T, 3)

    def __len__(self) -> int:
        return len(self.spacegroup)

    def unit(self, i: int) -> AsymmetricUnit:
        a, b = self.offsets[i], self.offsets[i + 1]
        return AsymmetricUnit(int(self.spacegroup[i]), self.parameters[i], self.numbers[a:b], self.wyckoff[a:b],
                              self.points[a:b])

    def select(self, mask: np.ndarray) -> AsymmetricSet:
        index = np.flatnonzero(mask)
        units = [self.unit(i) for i in index]
        return AsymmetricSet.from_units(units, self.n_atoms[index], self.split[index])

    @classmethod
    def from_units(cls, units: list[AsymmetricUnit], n_atoms, split) -> AsymmetricSet:
        sizes = [len(u.numbers) for u in units]
        return cls(np.array([u.spacegroup for u in units], dtype=np.int64),
                   np.array([u.parameters for u in units], dtype=np.float64).reshape(-1, 6),
                   np.asarray(n_atoms, dtype=np.int64), np.asarray(split, dtype=str),
                   np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                   np.concatenate([u.numbers for u in units] or [np.zeros(0)]).astype(np.int64),
                   np.concatenate([u.wyckoff for u in units] or [np.zeros(0)]).astype(np.int64),
                   np.concatenate([u.points for u in units] or [np.zeros((0, 3))]).astype(np.float64))

    @classmethod
    def concatenate(cls, parts: list[AsymmetricSet]) -> AsymmetricSet:
        units = [p.unit(i) for p in parts for i in range(len(p))]
        return cls.from_units(units, np.concatenate([p.n_atoms for p in parts]),
                              np.concatenate([p.split for p in parts]))

    def frequencies(self) -> dict[tuple[int, int], int]:
        """{(space group, Wyckoff position index): sites} over these structures."""
        groups = np.repeat(self.spacegroup, np.diff(self.offsets))
        keys, counts = np.unique(np.stack([groups, self.wyckoff], 1), axis=0, return_counts=True)
        return {(int(g), int(w)): int(c) for (g, w), c in zip(keys, counts)}

    def element_frequencies(self) -> dict[tuple[int, int, int], int]:
        """{(space group, Wyckoff position index, atomic number): sites} over these structures."""
        groups = np.repeat(self.spacegroup, np.diff(self.offsets))
        keys, counts = np.unique(np.stack([groups, self.wyckoff, self.numbers], 1), axis=0, return_counts=True)
        return {(int(g), int(w), int(z)): int(c) for (g, w, z), c in zip(keys, counts)}

    def examples(self) -> dict[tuple[int, tuple], list[tuple[tuple, tuple, int]]]:
        """{(space group, sorted per-element atoms of the conventional cell): [(atomic numbers, Wyckoff position
        indices, structures)]}: each distinct split with its elements (the prior's neighbours), sites sorted."""
        from collections import Counter

        splits = Counter((int(self.spacegroup[i]), split_key(self.numbers[a:b], self.wyckoff[a:b]))
                         for i, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:])))
        out: dict = {}
        for (g, key), count in sorted(splits.items()):
            numbers, wyckoff = tuple(z for z, _ in key), tuple(w for _, w in key)
            out.setdefault((g, tuple(sorted(cell_counts(g, numbers, wyckoff).values()))), []).append(
                (numbers, wyckoff, count))
        return out

    def patterns(self) -> dict[tuple[int, tuple], int]:
        """{(space group, :func:`~.wyckoff.split_pattern`): structures} over these structures."""
        from collections import Counter

        return dict(Counter((int(self.spacegroup[i]), split_pattern(self.numbers[a:b], self.wyckoff[a:b]))
                            for i, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:]))))


def _unit_of_row(cif: str):
    try:
        structure = parse_cif(cif)
    except Exception:  # an unreadable row is left out, as in the matrix family's processing
        return None, 0
    return asymmetric_unit(structure), len(structure)


def load_asymmetric(path: str | os.PathLike, workers: int = 1, callback=None) -> AsymmetricSet:
    """The asymmetric units of a structure CSV(.gz) (cached; ``callback(done, total)`` while symmetrising)."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"file not found: {path}")

    def make() -> AsymmetricSet:
        rows = read_rows(path)
        cifs = [r["cif"] for r in rows]
        results = []
        if workers > 1:
            with get_context("spawn").Pool(workers) as pool:
                for i, result in enumerate(pool.imap(_unit_of_row, cifs, chunksize=32)):
                    results.append(result)
                    if callback is not None and i % 256 == 0:
                        callback(i, len(cifs))
        else:
            for i, cif in enumerate(cifs):
                results.append(_unit_of_row(cif))
                if callback is not None and i % 256 == 0:
                    callback(i, len(cifs))
        keep = [i for i, (unit, _) in enumerate(results) if unit is not None]
        return AsymmetricSet.from_units([results[i][0] for i in keep], [results[i][1] for i in keep],
                                        [rows[i].get("split", "") for i in keep])

    return cached_arrays(source_cache_path(path, VERSION, "asym"), AsymmetricSet, make)


def load_training_units(data_dir=None, splits=("train",), max_atoms: int = 20, workers: int = 1,
                        callback=None) -> AsymmetricSet:
    """Asymmetric units of mp_structures + wbm_structures rows of ``splits`` with at most ``max_atoms`` atoms in
    the row's cell (the matrix family's split and size limit)."""
    from ...config import data_file

    parts = [load_asymmetric(data_file(name, data_dir), workers=workers, callback=callback)
             for name in TRAINING_FILES]
    data = AsymmetricSet.concatenate(parts)
    return data.select(np.isin(data.split, list(splits)) & (data.n_atoms <= max_atoms))
