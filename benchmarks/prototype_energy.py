"""Does M3GNet's energy tell which of the requested group's prototypes is the real structure? (issue 14; val)

For each row (first ``--limit`` rows of a split, ≤ 20 atoms) the pipeline's prototypes — up to ``--k`` distinct
templates of other formulas, best chemical distance first, relaxed with M3GNet and refined onto the group exactly
as :func:`explorer.search.search` does — are matched against the row's structure (loose and strict), with each
one's relaxed energy per atom. One JSON line per row, then the rules scored on them: the distance order (today),
the energy order, and "distance order, unless a later prototype is lower in energy by more than delta eV/atom".
Usage::

    python benchmarks/prototype_energy.py --split val --limit 300 > benchmarks/results/prototype_energy_val.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys


def rules(records, deltas=(0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)) -> list[dict]:
    """First-candidate match rates of each rule over the rows' records."""
    def first(record, delta):
        energies = [p["energy"] for p in record["prototypes"]]
        if not energies:
            return None
        if delta is None:  # by energy alone
            known = [k for k, e in enumerate(energies) if e is not None]
            return min(known, key=lambda k: energies[k]) if known else 0
        best = 0
        for k, e in enumerate(energies[1:], 1):
            if e is not None and energies[best] is not None and e < energies[best] - delta:
                best = k
        return best

    out = []
    for name, delta in [("distance order", float("inf"))] + [(f"energy lower by > {d}", d) for d in deltas] + \
            [("energy order", None)]:
        loose = strict = 0
        for record in records:
            k = first(record, delta)
            if k is not None:
                loose += record["prototypes"][k]["loose"]
                strict += record["prototypes"][k]["strict"]
        out.append({"rule": name, "rows": len(records), "first_loose": round(loose / len(records), 4),
                    "first_strict": round(strict / len(records), 4)})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args(argv)

    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions, evaluation_requests, match_all
    from explorer.prototypes import load_prototype_library
    from explorer.search import _prototype_candidate, _relax_candidates

    targets, species, groups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), args.limit, 20,
                                                                  args.split)
    requests = evaluation_requests(species, groups, energies)
    library = load_prototype_library()
    records = []
    for row, (request, target) in enumerate(zip(requests, targets)):
        found = library.query(request.species, request.spacegroup, k=args.k, other_formulas_only=True)
        candidates = [_prototype_candidate(p, request, None) for p in found]
        _relax_candidates([(0, c) for c in candidates], [request], "cpu")
        matches = match_all([c.structure for c in candidates], [target] * len(candidates), 1)
        record = {"row": row, "formula": target.composition.reduced_formula, "spacegroup": request.spacegroup,
                  "prototypes": [{"source": c.extra["prototype"]["source_formula"],
                                  "energy": c.extra["relaxed"].get("energy_per_atom"),
                                  "strict": bool(m[0]), "loose": bool(m[1])} for c, m in zip(candidates, matches)]}
        records.append(record)
        print(json.dumps(record), flush=True)
    for line in rules(records):
        print(json.dumps({**line, "command": "python benchmarks/prototype_energy.py " + " ".join(
            argv if argv is not None else sys.argv[1:])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
