"""Polymorph groups and modification pairs: structures with identical cell contents (same species multiset
in the primitive standard cell), sorted by formation energy, give (S_i -> S_0) "lowest" pairs and
(S_i -> S_j, i > j > 0) "non-lowest" pairs (paper §2.2)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .data import ProcessedSet


def polymorph_groups(data: ProcessedSet, min_size: int = 2) -> list[np.ndarray]:
    """Row indices of structures with identical cell contents, each group sorted by energy (lowest first)."""
    groups = defaultdict(list)
    for i in range(len(data)):
        groups[data.species[i].tobytes()].append(i)
    out = []
    for members in groups.values():
        if len(members) >= min_size:
            members = np.array(members)
            out.append(members[np.argsort(data.energy[members], kind="stable")])
    return out


def lowest_pairs(groups: list[np.ndarray]) -> np.ndarray:
    """(initial, target) pairs S_i -> S_0 for every non-lowest polymorph."""
    pairs = [(g[i], g[0]) for g in groups for i in range(1, len(g))]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def non_lowest_pairs(groups: list[np.ndarray]) -> np.ndarray:
    """(initial, target) pairs S_i -> S_j with i > j > 0."""
    pairs = [(g[i], g[j]) for g in groups for i in range(2, len(g)) for j in range(1, i)]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def epoch_pairs(groups: list[np.ndarray], rng: np.random.Generator, cap_per_group: int = 6) -> np.ndarray:
    """One epoch of pairs: every group contributes at most ``cap_per_group`` lowest pairs, and as many
    non-lowest pairs (sampled) as lowest ones are drawn in total."""
    lowest, others = [], []
    for g in groups:
        low = lowest_pairs([g])
        if len(low) > cap_per_group:
            low = low[rng.choice(len(low), cap_per_group, replace=False)]
        lowest.append(low)
        high = non_lowest_pairs([g])
        if len(high):
            others.append(high[rng.choice(len(high), min(cap_per_group, len(high)), replace=False)])
    lowest = np.concatenate(lowest) if lowest else np.zeros((0, 2), np.int64)
    others = np.concatenate(others) if others else np.zeros((0, 2), np.int64)
    if len(others) > len(lowest):
        others = others[rng.choice(len(others), len(lowest), replace=False)]
    pairs = np.concatenate([lowest, others])
    return pairs[rng.permutation(len(pairs))]
