"""Distorted parent-group prototypes (PrototypeLibrary.query_subgroup) on the rows without a template of their
group (new structure types), before and after M3GNet relaxation (issue 14; a val study): per prototype its rank,
parent group and strict / loose match; then the rows matched by the first, first 2 and first 4.

    python benchmarks/new_types_parents.py val 4   # -> benchmarks/results/new_types_parents_val_k4.json
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def new_type_rows(split: str):
    """(targets, requests, the indices of the rows without a template of their group, the prototype library) of
    mp_structures' ``split``, ≤ 20 atoms."""
    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions, evaluation_requests, rows_without_prototype
    from explorer.prototypes import load_prototype_library

    warnings.simplefilter("ignore")
    targets, species, groups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), max_atoms=20,
                                                                   split=split)
    requests = evaluation_requests(species, groups, energies)
    return targets, requests, rows_without_prototype(requests), load_prototype_library()


def main(split: str, k: int) -> None:
    from explorer.candidates import make_candidate
    from explorer.evaluation import match_all
    from explorer.relax import relax
    from explorer.relax.potentials import shared_potential
    from explorer.search import meets_request

    targets, requests, keep, library = new_type_rows(split)
    started = time.time()
    items = [(row, p) for row in keep for p in library.query_subgroup(requests[row].species, requests[row].spacegroup,
                                                                      k=k, other_formulas_only=True)]
    before = match_all([p.structure for _, p in items], [targets[row] for row, _ in items], 1)
    results = relax([p.structure for _, p in items], potential=shared_potential("m3gnet"), fmax=0.05, steps=300,
                    formation="none", device="cpu")
    relaxed = []
    for (row, p), result in zip(items, results):
        structure = p.structure
        if result.structure is not None:
            again = make_candidate(result.structure, requests[row].spacegroup, None, snap=True)
            if meets_request(again):
                structure = again.structure
        relaxed.append(structure)
    after = match_all(relaxed, [targets[row] for row, _ in items], 1)
    out = [{"row": row, "rank": p.rank, "parent": p.parent_spacegroup, "group": requests[row].spacegroup,
            "source": p.source_formula, "before": [bool(b[0]), bool(b[1])], "after": [bool(a[0]), bool(a[1])],
            "energy": r.energy_per_atom if r.structure is not None else None}
           for (row, p), b, a, r in zip(items, before, after, results)]
    with open(f"benchmarks/results/new_types_parents_{split}_k{k}.json", "w") as handle:
        json.dump(out, handle)
    for key in ("before", "after"):
        for top in (1, 2, 4):
            print(key, top, "strict", len({o["row"] for o in out if o[key][0] and o["rank"] < top}) / len(keep),
                  "loose", len({o["row"] for o in out if o[key][1] and o["rank"] < top}) / len(keep))
    print("rows", len(keep), "with a parent prototype", len({row for row, _ in items}),
          "seconds", round(time.time() - started))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "val", int(sys.argv[2]) if len(sys.argv) > 2 else 4)
