"""Reading the structure CSV.gz files and turning them into cached arrays for training and evaluation.

A processed file is cached as ``<cache_dir>/<name>-<sha256 of the source>[:16]-v<VERSION>.npz``, so a
second run starts in seconds and a changed source file is processed again.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import threading
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .config import cache_dir
from .elements import N_ELEMENTS
from .errors import ExplorerInputError
from .fileio import cached_arrays, file_sha256
from .representation import MATRIX_ROWS, MAX_SITES, encode
from .structure_io import parse_cif

PROCESSING_VERSION = 1
TRAINING_FILES = ("mp_structures.csv.gz", "wbm_structures.csv.gz")


def read_rows(path: str | os.PathLike, column: str | None = "cif") -> list[dict]:
    """Rows of a CSV (plain or gzip) as dicts; a structure CSV needs a ``cif`` column (``column=None``: any CSV)."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"file not found: {path}")
    csv.field_size_limit(2**31 - 1)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExplorerInputError(f"cannot read {path}: {exc}") from None
    if column and rows and column not in rows[0]:
        raise ExplorerInputError(f"{path} has no '{column}' column")
    return rows


def row_energy(row: dict) -> float:
    """Formation energy (eV/atom) of a row; NaN when absent."""
    for key in ("formation_energy_per_atom", "heat_ref"):
        value = row.get(key)
        if value not in (None, ""):
            return float(value)
    return math.nan


@dataclass
class ProcessedSet:
    """Arrays of one structure file, aligned by row: ``matrix`` (N, 64, 3), ``species`` (N, 60) atomic numbers
    (0 = empty), ``n_sites``, ``spacegroup``, ``energy`` (eV/atom), ``split``, ``ids``."""

    matrix: np.ndarray
    species: np.ndarray
    n_sites: np.ndarray
    spacegroup: np.ndarray
    energy: np.ndarray
    split: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.n_sites)

    def select(self, mask: np.ndarray) -> ProcessedSet:
        return ProcessedSet(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    @staticmethod
    def concatenate(parts: list[ProcessedSet]) -> ProcessedSet:
        fields = ProcessedSet.__dataclass_fields__
        return ProcessedSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def _encode_row(args):
    index, cif, spacegroup = args
    try:
        crystal = encode(parse_cif(cif), spacegroup=None)
    except ExplorerInputError:
        return index, None
    return index, (crystal.matrix, crystal.atomic_numbers, crystal.spacegroup)


def process_rows(rows: list[dict], workers: int | None = None, progress: bool = False,
                 callback=None) -> ProcessedSet:
    """Encode rows (canonical primitive cell, ≤ 60 sites); rows that fail or are too large are dropped.
    ``callback(done, total)`` is called as rows are encoded (an exception raised in it stops the work). Worker
    processes are forked from the main thread, started fresh (forkserver) from any other thread, where forking
    a threaded process is unsafe."""
    jobs = [(i, row["cif"], row.get("spacegroup")) for i, row in enumerate(rows)]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 64:
        method = "fork" if threading.current_thread() is threading.main_thread() else "forkserver"
        with get_context(method).Pool(workers) as pool:
            results = pool.imap(_encode_row, jobs, chunksize=64)
            results = list(_reported(_progress(results, len(jobs), progress), len(jobs), callback))
    else:
        results = [_encode_row(job) for job in _reported(_progress(jobs, len(jobs), progress), len(jobs), callback)]
    kept = [(i, r) for i, r in results if r is not None]
    n = len(kept)
    matrix = np.zeros((n, MATRIX_ROWS, 3), dtype=np.float32)
    species = np.zeros((n, MAX_SITES), dtype=np.uint8)
    n_sites = np.zeros(n, dtype=np.int16)
    spacegroup = np.zeros(n, dtype=np.int16)
    for k, (_, (m, z, sg)) in enumerate(kept):
        matrix[k], species[k, : len(z)], n_sites[k], spacegroup[k] = m, z, len(z), sg
    index = [i for i, _ in kept]
    energy = np.array([row_energy(rows[i]) for i in index], dtype=np.float32)
    split = np.array([rows[i].get("split", "") for i in index], dtype="U8")
    ids = np.array([rows[i].get("material_id") or rows[i].get("id") or str(i) for i in index], dtype="U32")
    return ProcessedSet(matrix, species, n_sites, spacegroup, energy, split, ids)


def _reported(iterable, total: int, callback, every: int = 64):
    """``iterable`` unchanged, calling ``callback(done, total)`` every ``every`` items and at the end."""
    if callback is None:
        yield from iterable
        return
    done = 0
    for item in iterable:
        yield item
        done += 1
        if done % every == 0 or done == total:
            callback(done, total)


def _progress(iterable, total, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="encoding structures", unit="structure")


def source_cache_path(path: str | os.PathLike, version, tag: str = "") -> Path:
    """Where arrays made from the file ``path`` are cached: named after the file, its content (sha256), what was
    made of it (``tag``) and the maker's ``version``, so that a changed file or maker is made anew."""
    path = Path(path)
    return cache_dir() / f"{path.name.split('.')[0]}-{file_sha256(path)[:16]}{'-' + tag if tag else ''}-v{version}.npz"


def keyed_cache_path(prefix: str, key) -> Path:
    """Where arrays made under the settings ``key`` (JSON-able; include the source file's sha256) are cached:
    ``<prefix>-<16 hex digits of the key's sha256>.npz``."""
    import hashlib
    import json

    return cache_dir() / f"{prefix}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.npz"


def processed_cache_path(path: str | os.PathLike) -> Path:
    """Where :func:`load_processed` keeps the arrays of a structure file (it may not exist yet)."""
    return source_cache_path(path, PROCESSING_VERSION)


def load_processed(path: str | os.PathLike, workers: int | None = None, progress: bool = True,
                   callback=None) -> ProcessedSet:
    """Processed arrays for a structure CSV(.gz), read from the on-disk cache when the source is unchanged
    (``callback(done, total)``: see :func:`process_rows`)."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"file not found: {path}")
    return cached_arrays(processed_cache_path(path), ProcessedSet,
                         lambda: process_rows(read_rows(path), workers=workers, progress=progress, callback=callback))


def load_training_data(data_dir=None, splits=("train",), max_sites: int = MAX_SITES,
                       workers: int | None = None, callback=None) -> ProcessedSet:
    """Train/val/test arrays from ``mp_structures`` + ``wbm_structures`` (the ``split`` column; never mixed).
    ``workers``: processes encoding a file that is not cached yet (default all cores); ``callback(done, total,
    name)`` follows the encoding of each such file."""
    from .config import data_file

    parts = []
    for name in TRAINING_FILES:
        report = None if callback is None else (lambda done, total, name=name: callback(done, total, name))
        parts.append(load_processed(data_file(name, data_dir), workers=workers, callback=report,
                                    progress=callback is None))
    data = ProcessedSet.concatenate(parts)
    mask = np.isin(data.split, list(splits)) & (data.n_sites <= max_sites) & np.isfinite(data.energy)
    return data.select(mask)


def training_data_cached(data_dir=None) -> bool:
    """Whether both training structure files are in the data directory and their processed arrays are cached
    (so :func:`load_training_data` takes about a second, not minutes)."""
    from .config import data_file

    try:
        return all(processed_cache_path(data_file(name, data_dir)).is_file() for name in TRAINING_FILES)
    except Exception:  # no data directory, an unreadable file: not cached as far as we can tell
        return False


def cif_text(structure) -> str:
    """CIF text of a structure through pymatgen's export path."""
    return structure.to(fmt="cif")


def read_split_rows(csv_path, splits=None) -> list[dict]:
    """The rows of a structure CSV (:func:`read_rows`) whose ``split`` is one of ``splits`` (all rows when
    ``splits`` is empty or None; a one-line error when the file has no ``split`` column to filter by)."""
    rows = read_rows(csv_path)
    if splits:
        if rows and "split" not in rows[0]:
            raise ExplorerInputError(f"{csv_path} has no 'split' column")
        wanted = set(splits)
        rows = [row for row in rows if row["split"] in wanted]
    return rows


@dataclass
class Row:
    """A usable structure row: the structure as read, the atomic numbers of its primitive cell, its space group (the
    ``spacegroup`` column, else spglib's) and formation energy (None without the column)."""

    structure: object
    species: list[int]  # atomic numbers of the primitive cell
    spacegroup: int
    energy: float | None


class StructureRows(list):
    """The :class:`Row` s :func:`read_structure_rows` returns; ``malformed``: the rows it read whose CIF is not one."""

    malformed: int = 0


def read_structure_rows(csv_path, split: str | None = None, max_atoms: int | None = None, limit: int | None = None,
                        shuffle_seed: int | None = None, with_energy: bool = False) -> StructureRows:
    """Usable rows of a CSV in the data directory's format (``cif``; ``spacegroup`` and
    ``formation_energy_per_atom`` when present): only ``split`` when given, at most ``max_atoms`` atoms, the
    first ``limit`` (in a seeded random order with ``shuffle_seed``); ``with_energy``: only rows with a finite
    formation energy (the conditions of a model that takes one; the column must be there). Usable: a CIF that
    parses, a primitive cell of at most ``MAX_SITES`` atoms, elements up to Lr (Z = 103) — every row the
    matrix representation and the element features can hold. The one reader of structure rows: evaluation,
    coverage, benchmarks and the descriptor family's vectors all read through it."""
    from .representation import canonical_structure

    rows = read_split_rows(csv_path, None if split is None else [split])
    if with_energy and rows and "formation_energy_per_atom" not in rows[0]:
        raise ExplorerInputError(f"{csv_path} has no 'formation_energy_per_atom' column")
    if shuffle_seed is not None:
        rows = [rows[i] for i in np.random.default_rng(shuffle_seed).permutation(len(rows))]
    out = StructureRows()
    for row in rows:
        if limit is not None and len(out) >= limit:
            break
        energy = row_energy(row) if "formation_energy_per_atom" in row else None
        if with_energy and not (energy is not None and np.isfinite(energy)):
            continue
        try:
            structure = parse_cif(row["cif"])
        except ExplorerInputError:
            out.malformed += 1
            continue
        if max_atoms is not None and len(structure) > max_atoms:
            continue
        primitive, detected = canonical_structure(structure)
        if len(primitive) > MAX_SITES or max(site.specie.Z for site in primitive) > N_ELEMENTS:
            continue
        column = row.get("spacegroup")
        out.append(Row(structure, sorted(site.specie.Z for site in primitive),
                       int(column) if column not in (None, "") else detected, energy))
    if not out:
        raise ExplorerInputError(f"no usable rows in {csv_path}" + (f" (split {split!r})" if split else ""))
    return out


__all__ = ["ProcessedSet", "Row", "StructureRows", "load_processed", "load_training_data", "parse_cif", "read_rows",
           "read_split_rows", "read_structure_rows"]
