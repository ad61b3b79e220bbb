"""The datasets of the descriptor family and their vectors (cached per source file, EAD parameters and rows).

- mp: mp_structures.csv.gz, trained on its train split (<= 20 atoms), measured on its test split (MP-20 setting);
- perov: perov_5.csv.gz, trained on its train + val parts (only 975 of Perov-5's train rows are here), measured
  on its test part;
- carbon: carbon_24.csv.gz, trained on its val part (only Carbon-24's val and test parts are here), measured on
  its test part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...config import data_file
from ...data import keyed_cache_path
from ...errors import ExplorerInputError
from ...fileio import cached_arrays, file_sha256
from .ead import EADParams
from .vector import Layout, describe

VERSION = 1


@dataclass(frozen=True)
class DatasetSpec:
    file: str
    train_splits: tuple[str, ...]
    test_split: str
    max_atoms: int
    struct_cutoff: float  # CDVAE's coverage thresholds for this dataset (its COV_Cutoffs)
    comp_cutoff: float


DATASETS = {
    "mp": DatasetSpec("mp_structures.csv.gz", ("train",), "test", 20, 0.4, 10.0),
    "perov": DatasetSpec("perov_5.csv.gz", ("train", "val"), "test", 20, 0.2, 4.0),
    "carbon": DatasetSpec("carbon_24.csv.gz", ("val",), "test", 24, 0.2, 4.0),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ExplorerInputError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


@dataclass
class VectorSet:
    """Vectors (S, D) of the structures of some splits, with their row ids."""

    vectors: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)


def dataset_structures(path, splits, max_atoms: int, limit: int | None = None, shuffle_seed: int | None = None):
    """(structures, ids) of the rows of ``splits`` with at most ``max_atoms`` atoms."""
    from ...data import read_structure_rows

    rows = []
    for split in splits:
        rows += read_structure_rows(path, split, max_atoms, limit, shuffle_seed=shuffle_seed)
    return [r.structure for r in rows], np.arange(len(rows))


def training_elements(name: str, directory=None) -> tuple[int, ...]:
    """Atomic numbers present in the training rows of a dataset (the composition block of its vectors)."""
    spec = dataset_spec(name)
    structures, _ = dataset_structures(data_file(spec.file, directory), spec.train_splits, spec.max_atoms)
    return tuple(sorted({site.specie.Z for s in structures for site in s}))


def load_vectors(name: str, layout: Layout, splits=None, directory=None, progress: bool = False) -> VectorSet:
    """Vectors of a dataset's ``splits`` (default: its training splits) under ``layout``, cached on disk."""
    spec = dataset_spec(name)
    splits = tuple(splits or spec.train_splits)
    path = data_file(spec.file, directory)
    cached = keyed_cache_path(f"descriptor-{name}", [file_sha256(path), splits, spec.max_atoms, layout.to_json(),
                                                     VERSION])

    def make() -> VectorSet:
        structures, ids = dataset_structures(path, splits, spec.max_atoms)
        vectors = []
        for start in range(0, len(structures), 256):
            vectors.append(describe(structures[start : start + 256], layout))
            if progress:
                print(f"vectors {name}: {min(start + 256, len(structures))}/{len(structures)}", flush=True)
        return VectorSet(np.concatenate(vectors).astype(np.float32), ids)

    return cached_arrays(cached, VectorSet, make)


def default_layout(name: str, directory=None, params: EADParams | None = None) -> Layout:
    return Layout(params or EADParams(), training_elements(name, directory))


__all__ = ["DATASETS", "DatasetSpec", "VectorSet", "dataset_spec", "dataset_structures", "default_layout",
           "load_vectors", "training_elements"]
