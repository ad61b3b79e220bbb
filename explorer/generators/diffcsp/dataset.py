"""Training cells of the diffcsp family: the rows of mp_structures + wbm_structures (the train split our other
families learn from; val for the validation loss) as primitive cells with at most 20 atoms, Niggli-reduced and
put in the canonical orientation of their lattice parameters (as DiffCSP and chemeleon-dng read MP-20).

Each structure file is read once and cached as ``<cache_dir>/<name>-<sha256>[:16]-diffcsp-v<VERSION>.npz``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

from ...config import data_file
from ...data import TRAINING_FILES, read_rows, source_cache_path
from ...fileio import cached_arrays

VERSION = 1
MAX_ATOMS = 20


@dataclass
class CellSet:
    """Cells as flat arrays: cell ``i`` owns atoms ``offsets[i]:offsets[i + 1]``."""

    lattices: np.ndarray  # (S, 3, 3) row vectors, Å
    offsets: np.ndarray  # (S + 1,)
    numbers: np.ndarray  # (T,)
    frac_coords: np.ndarray  # (T, 3)
    split: np.ndarray  # (S,) str

    def __len__(self) -> int:
        return len(self.lattices)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, index) -> tuple:
        """(numbers, frac_coords, lattices, sizes) of the cells ``index``, for :func:`.network.crystal_batch`."""
        atoms = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in index])
        return self.numbers[atoms], self.frac_coords[atoms], self.lattices[index], self.sizes[index]

    def select(self, mask: np.ndarray) -> CellSet:
        index = np.flatnonzero(mask)
        atoms = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in index] or [[]]).astype(int)
        return CellSet(self.lattices[index], np.concatenate([[0], np.cumsum(self.sizes[index])]).astype(np.int64),
                       self.numbers[atoms], self.frac_coords[atoms], self.split[index])


def canonical_cell(structure):
    """The primitive standard cell of ``structure``, Niggli-reduced, in the orientation that
    ``Lattice.from_parameters`` gives its parameters."""
    from pymatgen.core import Lattice, Structure

    from ...representation import canonical_structure

    primitive, _ = canonical_structure(structure)
    reduced = primitive.get_reduced_structure()
    return Structure(Lattice.from_parameters(*reduced.lattice.parameters), reduced.species, reduced.frac_coords)


def _cell_of_row(row: tuple[str, str]):
    from ...structure_io import parse_cif

    cif, split = row
    try:
        cell = canonical_cell(parse_cif(cif))
    except Exception:  # an unreadable row is left out, as in the other families' processing
        return None
    if len(cell) > MAX_ATOMS or max(site.specie.Z for site in cell) > 100:
        return None
    return cell.lattice.matrix, np.array([s.specie.Z for s in cell]), cell.frac_coords % 1.0, split


def load_cells(path: str | os.PathLike, workers: int = 1) -> CellSet:
    """The train and val cells of a structure CSV(.gz) (cached)."""
    def make() -> CellSet:
        rows = [(r["cif"], r.get("split", "")) for r in read_rows(path) if r.get("split", "") in ("train", "val")]
        if workers > 1:
            with get_context("spawn").Pool(workers) as pool:
                cells = [c for c in pool.imap(_cell_of_row, rows, chunksize=64) if c is not None]
        else:
            cells = [c for c in map(_cell_of_row, rows) if c is not None]
        sizes = [len(c[1]) for c in cells]
        return CellSet(np.array([c[0] for c in cells], dtype=np.float32).reshape(-1, 3, 3),
                       np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                       np.concatenate([c[1] for c in cells]).astype(np.int64),
                       np.concatenate([c[2] for c in cells]).astype(np.float32), np.array([c[3] for c in cells]))

    return cached_arrays(source_cache_path(path, VERSION, "diffcsp"), CellSet, make)


def load_training_cells(data_dir=None, workers: int = 1) -> tuple[CellSet, CellSet]:
    """(train, val) cells of every training file of the data directory."""
    parts = [load_cells(data_file(name, data_dir), workers) for name in TRAINING_FILES]
    cells = CellSet(np.concatenate([p.lattices for p in parts]),
                    np.concatenate([[0], np.cumsum(np.concatenate([p.sizes for p in parts]))]).astype(np.int64),
                    np.concatenate([p.numbers for p in parts]), np.concatenate([p.frac_coords for p in parts]),
                    np.concatenate([p.split for p in parts]))
    return cells.select(cells.split == "train"), cells.select(cells.split == "val")
