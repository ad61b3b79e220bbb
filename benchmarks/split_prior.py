"""Which site split does the langevin model put first? (issue 14; a val study, test once)

The langevin family samples a formula in a space group on one *site split* (which Wyckoff positions hold which
element), taken from :class:`explorer.generators.langevin.wyckoff.SplitPrior`; a row whose true split is not the
one sampled cannot match. This scores rankings of the splits by how often the row's true split (its asymmetric
unit, pyxtal 0.1 Å) comes first, and in the first 4, over rows of a split with ≤ 20 atoms whose group pyxtal
finds the row's own:

- ``prior``: the prior as shipped (position frequencies per element + the anonymised split's frequency);
- ``neighbours tau=T weight=W``: the prior plus ``W * log(1 + sum over train structures of the group with the
  same per-element counts of exp(-d / T))`` for the split each of them gives when its elements are mapped onto
  the request's (``d``: the elemental-property distance of the mapping, as ion exchange ranks templates).

``sampled4`` is the expected share of rows whose true split is among four slots as the generator fills them
(the first split, then three drawn with probability proportional to their likelihood), beside ``top4`` (the
first four distinct splits; more often the true split, but filling the slots that way did worse in the
pipeline on val — benchmarks/results/generation_pipeline_langevin_distinct_val_rejected.json). The train
structures are never of the row's formula (the splits are by reduced formula). ``--no-prototype-rows`` keeps the
rows whose group has no prototype of their stoichiometry from another formula (new structure types; matched to
``explorer evaluate generation --no-prototype-rows`` by reduced formula and group). Usage::

    python benchmarks/split_prior.py --split val --limit 400
    python benchmarks/split_prior.py --split val --limit 2000 --no-prototype-rows --grid 3:30
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--grid", default="1:3,5:3,10:3,5:10,3:30,2:100,3:100", help="tau:weight,...")
    parser.add_argument("--out", default=None)
    parser.add_argument("--no-prototype-rows", action="store_true")
    args = parser.parse_args(argv)

    from dataclasses import replace

    from explorer.config import data_file
    from explorer.generators.langevin.dataset import load_asymmetric, load_training_units
    from explorer.generators.langevin.wyckoff import SplitPrior, cell_counts, site_splits, split_key
    from explorer.spacegroups import lattice_points

    train = load_training_units()
    base = SplitPrior.counted(train)
    rows = load_asymmetric(data_file("mp_structures.csv.gz"))
    chosen = [i for i in range(len(rows)) if rows.split[i] == args.split and rows.n_atoms[i] <= 20]
    if args.no_prototype_rows:
        new_types = _new_structure_types(args.split)
        chosen = [i for i in chosen if _formula_and_group(rows.unit(i)) in new_types]
    chosen = chosen[: args.limit]
    variants = {"prior": replace(base, neighbour_weight=0.0)}
    for item in args.grid.split(","):
        tau, weight = (float(v) for v in item.split(":"))
        variants[f"neighbours tau={tau:g} weight={weight:g}"] = replace(base, neighbour_tau=tau,
                                                                         neighbour_weight=weight)
    first = {name: 0 for name in variants}
    top4 = {name: 0 for name in variants}
    sampled4 = {name: 0.0 for name in variants}
    started = time.time()
    for i in chosen:
        unit = rows.unit(i)
        g = unit.spacegroup
        truth = split_key(unit.numbers, unit.wyckoff)
        counts = cell_counts(g, unit.numbers, unit.wyckoff)
        species = [z for z, n in counts.items() for _ in range(n // lattice_points(g))]
        for name, prior in variants.items():
            try:
                options = site_splits(species, g, prior)
            except Exception:
                options = []
            keys = [split_key(s.numbers, s.wyckoff) for s in options]
            first[name] += bool(keys) and keys[0] == truth
            top4[name] += truth in keys[:4]
            if keys and keys[0] == truth:
                sampled4[name] += 1.0
            elif truth in keys:
                weights = np.exp([s.log_prob - options[0].log_prob for s in options])
                sampled4[name] += 1.0 - (1.0 - weights[keys.index(truth)] / weights.sum()) ** 3
    counted = len(chosen)
    result = {"split": args.split, "rows": counted, "no_prototype_rows": args.no_prototype_rows,
              "seconds": round(time.time() - started, 1),
              "first": {k: round(v / counted, 4) for k, v in first.items()},
              "top4": {k: round(v / counted, 4) for k, v in top4.items()},
              "sampled4": {k: round(v / counted, 4) for k, v in sampled4.items()},
              "command": "python benchmarks/split_prior.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(json.dumps(result, indent=1) + "\n")
    return 0


def _formula_and_group(unit) -> tuple[str, int]:
    from pymatgen.core import Composition

    from explorer.elements import symbols
    from explorer.generators.langevin.wyckoff import cell_counts

    counts = cell_counts(unit.spacegroup, unit.numbers, unit.wyckoff)
    names = symbols()
    return Composition({names[z - 1]: n for z, n in counts.items()}).reduced_formula, int(unit.spacegroup)


def _new_structure_types(split: str) -> set[tuple[str, int]]:
    """(reduced formula, group) of the rows of ``split`` (≤ 20 atoms) without a prototype of their group."""
    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions, evaluation_requests, rows_without_prototype

    targets, species, groups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), None, 20, split)
    requests = evaluation_requests(species, groups, energies)
    return {(targets[k].composition.reduced_formula, int(groups[k])) for k in rows_without_prototype(requests)}


if __name__ == "__main__":
    sys.exit(main())
