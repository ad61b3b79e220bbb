"""Does agreement between the pipeline's candidates say which one to put first? (issue 14; a val study)

``explorer generate`` puts the best known prototype of the requested group first (elemental similarity,
relaxed). The network samples beside it are drawn independently of retrieval, so a prototype that a network
sample reproduces (StructureMatcher, loose tolerances) has two witnesses. This study runs the pipeline exactly as
``explorer evaluate generation --pipeline --n 8`` does (the default model for a formula and a space group,
other formulas' templates only, seed 0), chunk by chunk, and writes one JSON line per row: each candidate's
source, relaxed energy, strict / loose match with the row's structure, and which other candidates it matches
(loose). The rankers are then scored on those records without re-running anything. Resumable. Usage::

    python benchmarks/agreement.py --split val --limit 300 --out benchmarks/results/agreement_val.jsonl
    python benchmarks/agreement.py --out benchmarks/results/agreement_val.jsonl --report-only
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

from prototype_ranking import run_study

CHUNK = 16


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def agreement(structures) -> list[list[int]]:
    """For each structure, the indices of the others it matches (loose tolerances)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from explorer.representation import LOOSE

    matcher = StructureMatcher(**LOOSE)
    same = [[] for _ in structures]
    for i in range(len(structures)):
        for j in range(i + 1, len(structures)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    hit = bool(matcher.fit(structures[i], structures[j]))
                except Exception:
                    hit = False
            if hit:
                same[i].append(j)
                same[j].append(i)
    return same


def study(split: str, limit: int, out: Path) -> None:
    from explorer.config import data_file
    from explorer.evaluation import DEFAULT_GIVEN, evaluation_conditions, evaluation_requests, match_all
    from explorer.generators import default_model, get_generator
    from explorer.search import relaxed_energy, search

    targets, species, groups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), limit, 20, split)
    generator = get_generator(default_model("generation", given=DEFAULT_GIVEN), task="generation")
    requests = evaluation_requests(species, groups, energies, generator)
    done = {r["row"] for r in read_records(out)}
    started = time.time()
    for first in range(0, len(requests), CHUNK):
        rows = [row for row in range(first, min(first + CHUNK, len(requests))) if row not in done]
        if not rows:
            continue
        found = search(generator, [requests[row] for row in rows], 8, seed=0, other_formulas_only=True)
        with out.open("a") as handle:
            for row, candidates in zip(rows, found):
                matches = match_all([c.structure for c in candidates], [targets[row]] * len(candidates), 1)
                same = agreement([c.structure for c in candidates])
                record = {"row": row, "formula": targets[row].composition.reduced_formula,
                          "spacegroup": requests[row].spacegroup, "candidates": [
                              {"model": c.model, "strict": bool(m[0]), "loose": bool(m[1]),
                               "energy": None if relaxed_energy(c) == float("inf") else relaxed_energy(c),
                               "distance": (c.extra.get("prototype") or {}).get("distance"),
                               "parent": (c.extra.get("prototype") or {}).get("parent_spacegroup"), "same": s}
                              for c, m, s in zip(candidates, matches, same)]}
                handle.write(json.dumps(record) + "\n")
        print(f"rows {first}-{rows[-1]} of {len(requests)}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)


def shipped(candidates) -> list[int]:
    return list(range(len(candidates)))


def by_support(min_support: int, network_only: bool, network_first: int | None = None):
    """Order: the shipped one, except that the prototypes (in the shipped order) are sorted by how many network
    samples match them (``network_only``; else how many other candidates); with ``network_first``, a network
    sample that that many *other* network samples match, and no prototype does, goes before the prototypes."""
    def order(candidates) -> list[int]:
        def network(j):
            return candidates[j]["model"] not in ("prototype", "random-symmetric")

        def support(i):
            return sum(1 for j in candidates[i]["same"] if network(j) or not network_only)

        prototypes = [i for i, c in enumerate(candidates) if c["model"] == "prototype" and not c["parent"]]
        ranked = sorted(prototypes, key=lambda i: (-(support(i) if support(i) >= min_support else 0), i))
        head = []
        if network_first is not None and not any(support(i) for i in prototypes):
            cluster = [j for j, c in enumerate(candidates) if network(j)
                       and sum(1 for other in c["same"] if network(other)) >= network_first]
            head = cluster[:1]
        rest = [i for i in range(len(candidates)) if i not in ranked and i not in head]
        return head + ranked + rest
    return order


def rankers():
    yield "shipped", shipped
    for network_only in (True, False):
        for least in (1, 2):
            yield f"prototypes by support >= {least} ({'network' if network_only else 'any'})", \
                by_support(least, network_only)
    for cluster in (1, 2, 3):
        yield f"prototypes by network support, a network cluster of {cluster + 1} first where none", \
            by_support(1, True, cluster)


def report(path: Path) -> list[dict]:
    records = read_records(path)
    n = len(records)
    rows = []
    for name, order in rankers():
        firsts = [r["candidates"][order(r["candidates"])[0]] for r in records if r["candidates"]]
        rows.append({"ranker": name, "rows": n, "first_loose": round(sum(c["loose"] for c in firsts) / n, 4),
                     "first_strict": round(sum(c["strict"] for c in firsts) / n, 4)})
    rows.append({"ranker": "any of 8 (ceiling)", "rows": n,
                 "first_loose": round(sum(any(c["loose"] for c in r["candidates"]) for r in records) / n, 4),
                 "first_strict": round(sum(any(c["strict"] for c in r["candidates"]) for r in records) / n, 4)})
    return rows


def main(argv=None) -> int:
    return run_study(study, report, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
