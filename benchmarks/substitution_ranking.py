"""Does a substitution table learnt from the train split order the prototypes better? (issue 14; a val study)

Hautier et al. (Inorg. Chem. 2011) mined which ions replace each other in the same structure type. The same
statistic is counted here from the prototype library itself (train split of mp_structures + wbm_structures): two
templates of one structure type (stoichiometry pattern, space group and the sorted (site count, Wyckoff letter)
multiset of :func:`prototype_ranking.structure_type`) whose elements sit on the same Wyckoff orbits are one
observation that each element of the one replaces its counterpart in the other. ``p(b | a)`` is the share of a's
observed replacements that are b (add-α smoothed); a template's substitution score is the sum over its replaced
elements of ``log p(b | a) + log p(a | b)`` / 2, kept elements 0, with the assignment (within equal site
counts) that maximises it.

The rankers are scored on the records of ``prototype_ranking.py`` (per row and structure type: whether the type,
substituted, matches the row's structure), so nothing is matched again: the type a ranker puts first is taken as
the candidate. Usage::

    python benchmarks/substitution_ranking.py benchmarks/results/prototype_ranking_val.jsonl
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from prototype_ranking import orbit_sites, type_of_orbits

ORBITS_CACHE = Path("runs/library_orbits.json")


def library_orbits(library) -> list:
    """:func:`prototype_ranking.orbit_sites` of every template of the library (cached: spglib on 30k cells takes
    minutes)."""
    from explorer.representation import decode

    data = library.data
    if ORBITS_CACHE.is_file():
        cached = json.loads(ORBITS_CACHE.read_text())
        if len(cached) == len(data):
            return [None if o is None else {int(k): tuple(v) for k, v in o.items()} for o in cached]
    orbits = []
    for i in range(len(data)):
        orbits.append(orbit_sites(decode(data.matrix[i], data.species[i][: data.n_sites[i]])))
        if i % 2000 == 0:
            print(f"orbits {i}/{len(data)}", file=sys.stderr, flush=True)
    ORBITS_CACHE.parent.mkdir(exist_ok=True)
    ORBITS_CACHE.write_text(json.dumps(orbits))
    return orbits


def library_types(library, orbits) -> list:
    """The structure type of every template of the library."""
    data = library.data
    return [type_of_orbits(o, Counter(int(v) for v in data.species[i][: data.n_sites[i]]))
            for i, o in enumerate(orbits)]


def element_roles(orbits, z) -> dict[int, tuple] | None:
    """{element: (its site count, its orbits' Wyckoff letters)} of a template with these :func:`orbit_sites` and
    atomic numbers ``z``; None when two elements share one."""
    if orbits is None:
        return None
    letters = defaultdict(list)
    for element, letter in orbits.values():
        letters[int(element)].append(letter)
    counts = Counter(int(v) for v in z)
    found = {e: (counts[e], tuple(sorted(v))) for e, v in letters.items()}
    return found if len(set(found.values())) == len(found) else None


def substitution_counts(library, types, orbits, max_members: int = 60, seed: int = 0) -> np.ndarray:
    """counts[a, b]: how often element b sits where a sits in another template of the same structure type."""
    from explorer.elements import reduced_composition_key
    from explorer.prototypes import stoichiometry_pattern

    data = library.data
    groups = defaultdict(list)
    for i, kind in enumerate(types):
        if kind is not None:
            groups[(stoichiometry_pattern(data.species[i][: data.n_sites[i]]), int(data.spacegroup[i]), kind)].append(i)
    rng = np.random.default_rng(seed)
    counts = np.zeros((120, 120))
    for members in groups.values():
        # one template per formula (polymorphs of a formula in one type add nothing)
        by_formula = {reduced_composition_key(data.species[i][: data.n_sites[i]]): i for i in members}
        members = sorted(by_formula.values())
        if len(members) < 2:
            continue
        if len(members) > max_members:
            members = sorted(rng.choice(members, max_members, replace=False).tolist())
        found = [(i, element_roles(orbits[i], data.species[i][: data.n_sites[i]])) for i in members]
        found = [(i, r) for i, r in found if r is not None]
        for x in range(len(found)):
            inverse = {role: e for e, role in found[x][1].items()}
            for y in range(x + 1, len(found)):
                for e, role in found[y][1].items():
                    other = inverse.get(role)
                    if other is not None and other != e:
                        counts[other, e] += 1
                        counts[e, other] += 1
    return counts


def log_table(counts: np.ndarray, alpha: float) -> np.ndarray:
    """log of (p(b | a) p(a | b)) / 2, add-``alpha`` smoothed; 0 on the diagonal."""
    p = (counts + alpha) / (counts.sum(axis=1, keepdims=True) + alpha * counts.shape[0])
    table = 0.5 * (np.log(p) + np.log(p.T))
    np.fill_diagonal(table, 0.0)
    return table


def substitution_score(template_z, target_z, table: np.ndarray) -> float:
    """The highest summed log table over the bijections that keep site counts (higher: more likely)."""
    from scipy.optimize import linear_sum_assignment

    have, want = Counter(int(z) for z in template_z), Counter(int(z) for z in target_z)
    total = 0.0
    for count in sorted(set(have.values())):
        old = sorted(z for z, n in have.items() if n == count)
        new = sorted(z for z, n in want.items() if n == count)
        gain = table[np.array(old)][:, np.array(new)]
        rows, columns = linear_sum_assignment(-gain)
        total += float(gain[rows, columns].sum())
    return total


def main(records_path: str, split: str = "val") -> None:
    from explorer import prototypes
    from explorer.config import data_file
    from explorer.elements import reduced_composition_key
    from explorer.evaluation import evaluation_conditions

    records = [json.loads(line) for line in Path(records_path).read_text().splitlines() if line.strip()]
    _, species, groups, _, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), len(records), 20, split)
    library = prototypes.load_prototype_library()
    data = library.data
    orbits = library_orbits(library)
    types = library_types(library, orbits)
    counts = substitution_counts(library, types, orbits)
    print(json.dumps({"observations": int(counts.sum() / 2), "pairs": int((counts > 0).sum() / 2)}), flush=True)
    per_row = []  # per record: list of (type loose, type strict, best distance score, best substitution score)
    for record, z, group in zip(records, species, groups):
        own = reduced_composition_key(z)
        members = defaultdict(list)
        for i in library.index.get((prototypes.stoichiometry_pattern(z), int(group)), []):
            template_z = data.species[i][: data.n_sites[i]]
            if reduced_composition_key(template_z) != own:
                members[types[i]].append(i)
        entries = []
        for t in record["types"]:
            kind = None if t["type"] is None else tuple(tuple(x) for x in t["type"])
            entries.append((t, members.get(kind, [])))
        per_row.append((z, entries))
    results = []
    for alpha in (0.1, 0.5, 2.0):
        table = log_table(counts, alpha)
        scored = [[(t, max((substitution_score(data.species[i][: data.n_sites[i]], z, table)
                            - (0.0 if library.ground_state[i] else prototypes.NOT_GROUND_STATE_PENALTY)
                            for i in members), default=-1e9)) for t, members in entries]
                  for z, entries in per_row]
        for weight in (0.0, 0.25, 0.5, 1.0, 2.0, math.inf):
            loose = strict = 0
            for entries in scored:
                if not entries:
                    continue
                first = min(entries, key=lambda e: -e[1] if weight == math.inf else e[0]["scores"][0] - weight * e[1])
                loose += first[0]["loose"]
                strict += first[0]["strict"]
            results.append({"alpha": alpha, "weight": weight if weight != math.inf else "table only",
                            "rows": len(records), "first_loose": round(loose / len(records), 4),
                            "first_strict": round(strict / len(records), 4)})
            print(json.dumps(results[-1]), flush=True)
    shipped = sum(bool(e) and e[0][0]["loose"] for _, e in per_row) / len(records)
    ceiling = sum(any(t["loose"] for t, _ in e) for _, e in per_row) / len(records)
    print(json.dumps({"shipped order (distance)": round(shipped, 4), "any type (ceiling)": round(ceiling, 4)}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(*sys.argv[1:])
