"""Langevin samples on the rows without a template of their group (new structure types), before and after the
pipeline's M3GNet relaxation (issue 14; a val study). Per sample: strict / loose match before and after, relaxed
energy, group; then a summary line (any of the draws). Which one an energy order puts first is read from the JSON.

    python benchmarks/new_types_relax.py val 4   # -> benchmarks/results/new_types_relax_val_d4.json
    python benchmarks/new_types_relax.py report benchmarks/results/new_types_relax_val_d16.json  # pools

``report``: what a pool of the first m draws gives when its samples are ordered by relaxed energy (those that
keep the requested group after relaxation, as the pipeline keeps them): the lowest-energy one, any of the
lowest-energy j, and any of the m.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def main(split: str, draws: int) -> None:
    from explorer.candidates import make_candidate
    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions, evaluation_requests, match_all, rows_without_prototype
    from explorer.generators import get_generator
    from explorer.relax import relax
    from explorer.relax.potentials import shared_potential

    warnings.simplefilter("ignore")
    targets, species, groups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), max_atoms=20,
                                                                   split=split)
    generator = get_generator("langevin", task="generation")
    requests = evaluation_requests(species, groups, energies, generator)
    keep = rows_without_prototype(requests)
    flat = [requests[k] for k in keep for _ in range(draws)]
    wanted = [targets[k] for k in keep for _ in range(draws)]
    started = time.time()
    samples = generator.sample_best(flat, 1, seed=0, device="cpu")
    candidates = [make_candidate(s, r.spacegroup, None, snap=True, model="langevin") for s, r in zip(samples, flat)]
    before = match_all([c.structure for c in candidates], wanted, 1)
    results = relax([c.structure for c in candidates], potential=shared_potential("m3gnet"), fmax=0.05, steps=300,
                    formation="none", device="cpu")
    relaxed = []
    for candidate, result, request in zip(candidates, results, flat):
        if result.structure is None:
            relaxed.append((candidate.structure, None, candidate.spacegroup_detected))
            continue
        again = make_candidate(result.structure, request.spacegroup, None, snap=True, model="langevin")
        relaxed.append((again.structure, result.energy_per_atom, again.spacegroup_detected))
    after = match_all([r[0] for r in relaxed], wanted, 1)
    out = [{"row": keep[i // draws], "draw": i % draws, "formula": wanted[i].composition.reduced_formula,
            "group": flat[i].spacegroup, "before": [bool(b[0]), bool(b[1])], "after": [bool(a[0]), bool(a[1])],
            "energy": r[1], "sg_before": c.spacegroup_detected, "sg_after": r[2]}
           for i, (c, b, a, r) in enumerate(zip(candidates, before, after, relaxed))]
    with open(f"benchmarks/results/new_types_relax_{split}_d{draws}.json", "w") as handle:
        json.dump(out, handle)

    def rate(key: str, j: int) -> float:
        hit = {}
        for o in out:
            hit[o["row"]] = hit.get(o["row"], False) or o[key][j]
        return sum(hit.values()) / len(keep)

    print(json.dumps({"rows": len(keep), "draws": draws, "before_strict": rate("before", 0),
                      "before_loose": rate("before", 1), "after_strict": rate("after", 0),
                      "after_loose": rate("after", 1), "seconds": round(time.time() - started)}))


def pool_report(path: str) -> list[dict]:
    records = json.load(open(path))
    rows = sorted({r["row"] for r in records})
    draws = 1 + max(r["draw"] for r in records)
    out = []
    for m in sorted({1, 2, 4, 8, draws} & set(range(1, draws + 1))):
        line = {"pool": m, "rows": len(rows)}
        for j in (1, 2, 4, 6):
            if j > m:
                continue
            for key, index in (("strict", 0), ("loose", 1)):
                hits = 0
                for row in rows:
                    pool = [r for r in records if r["row"] == row and r["draw"] < m]
                    kept = sorted((r for r in pool if r["energy"] is not None and r["sg_after"] == r["group"]),
                                  key=lambda r: r["energy"])
                    hits += any(r["after"][index] for r in kept[:j])
                line[f"lowest_{j}_{key}"] = round(hits / len(rows), 4)
        for key, index in (("strict", 0), ("loose", 1)):
            line[f"any_{key}"] = round(sum(any(r["after"][index] for r in records if r["row"] == row and r["draw"] < m)
                                           for row in rows) / len(rows), 4)
        out.append(line)
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["report"]:
        for line in pool_report(sys.argv[2]):
            print(json.dumps(line))
        sys.exit(0)
    main(sys.argv[1] if len(sys.argv) > 1 else "val", int(sys.argv[2]) if len(sys.argv) > 2 else 1)
