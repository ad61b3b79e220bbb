"""Is a candidate new? StructureMatcher (the paper's strict tolerances) against the training structures
(``mp_structures`` + ``wbm_structures``, split ``train``) of the same reduced composition.

The training structures come from the processed-array cache of :mod:`explorer.data` (written by the first
training or evaluation run). Without a data directory, or before that cache exists, the answer is ``None``
(unknown), never a guess — building the cache takes minutes of both cores, which an app must not start.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from functools import lru_cache

import numpy as np

from .elements import reduced_composition_key

_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _training_index(data_dir: str | None):
    """(ProcessedSet of the training split, reduced composition key -> row indices)."""
    from .data import load_training_data

    data = load_training_data(data_dir, splits=("train",))
    index: dict[tuple, list[int]] = defaultdict(list)
    keys: dict[bytes, tuple] = {}
    for i in range(len(data)):
        species = data.species[i, : int(data.n_sites[i])]
        raw = np.sort(species).tobytes()
        if raw not in keys:
            keys[raw] = reduced_composition_key(species)
        index[keys[raw]].append(i)
    return data, dict(index)


def training_available(data_dir=None) -> bool:
    """Whether the training structure files and their processed-array caches are there."""
    from .data import training_data_cached

    return training_data_cached(data_dir)


def training_matches(structure, data_dir=None, limit: int = 200) -> list[str]:
    """Ids of training structures that match ``structure`` (StructureMatcher, ltol 0.2, stol 0.3, 5°)."""
    from .matching import Matcher
    from .representation import STRICT, decode

    with _LOCK:
        data, index = _training_index(None if data_dir is None else str(data_dir))
    rows = index.get(reduced_composition_key([site.specie.Z for site in structure]), [])[:limit]
    if not rows:
        return []
    matcher = Matcher(**STRICT)
    try:
        mine = matcher.reduced(structure)
    except Exception:  # a cell pymatgen cannot reduce matches nothing (as when every fit raised)
        return []
    found = []
    for i in rows:
        try:
            if matcher.fit(mine, matcher.reduced(decode(data.matrix[i], data.species[i, : int(data.n_sites[i])]))):
                found.append(str(data.ids[i]))
        except Exception:
            continue
    return found


def novelty(structures, data_dir=None) -> list[bool | None]:
    """Per structure: True = no training structure matches, False = one does, None = unknown (no data)."""
    structures = list(structures)
    if not training_available(data_dir):
        return [None] * len(structures)
    return [not training_matches(s, data_dir) for s in structures]


__all__ = ["novelty", "training_available", "training_matches"]
