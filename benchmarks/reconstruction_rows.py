"""Per-row reconstruction on a dataset's val rows: which structures fail, and is it the optimisation (loss above
``solved``) or the descriptor (a low loss, yet another structure)? (issue 16; val for choices; a run on test
rows only reports, as for carbon_24's test rows 40-79)

Each row is reconstructed from its own EAD block with the shipped settings (6 trials x 4 hops x 150 iterations,
8 screened starts, 3 template trials), optionally with ``--swap`` (odd hops exchange two unlike atoms) or more
``--rounds``, or ``--permute N`` (those hops try every arrangement of the elements of a cell that has at
most N), or templates from ``--template-data CSV [--template-splits S,S]`` (the rows reconstructed left out)
instead of the prototype library; one JSON line per row (loss, loose and strict match), then a summary line. Usage::

    python benchmarks/reconstruction_rows.py --dataset perov_5 --limit 100 [--swap] [--rounds R] [--permute N] \
        > rows.jsonl
    python benchmarks/reconstruction_rows.py --dataset carbon_24 --max-atoms 24 --start 32 --limit 96 > rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="perov_5")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--start", type=int, default=0,
                        help="skip the first rows (a multiple of 16 keeps the seeds of the full run)")
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--swap", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--permute", type=int, default=0)
    parser.add_argument("--template-data", default=None, help="known structures of the template trials (a CSV; "
                        "default: the prototype library); the rows reconstructed are left out of them")
    parser.add_argument("--template-splits", default="", help="its splits, comma-separated (default: all)")
    args = parser.parse_args(argv)

    from explorer.config import data_file
    from explorer.data import read_structure_rows
    from explorer.evaluation import match_all
    from explorer.generators.descriptor.ead import EADParams
    from explorer.generators.descriptor.reconstruction import Reconstructor
    from explorer.generators.descriptor.templates import with_template_source
    from explorer.generators.descriptor.vector import ead_block, reduced_cell
    from explorer.reconstruction import reference_scale

    csv = data_file(f"{args.dataset}.csv.gz")
    params = EADParams()
    rows = read_structure_rows(csv, args.split, args.max_atoms, args.limit)[args.start:]
    scale, _ = reference_scale(csv, args.max_atoms, params)
    targets = [reduced_cell(r.structure) for r in rows]
    template_data = args.template_data and {"file": args.template_data,
                                            "splits": [s for s in args.template_splits.split(",") if s]}
    templates = with_template_source({"templates": 3, "template_data": template_data},
                                     exclude=[r.structure for r in rows])
    reconstructor = Reconstructor(params, trials=6, hops=4, iterations=150, starts=8, rounds=args.rounds,
                                  swap=args.swap, permute=args.permute, **templates)
    results = []
    for start in range(0, len(targets), 16):  # the batches and seeds of `explorer evaluate reconstruction`
        part = targets[start : start + 16]
        results += reconstructor.run(ead_block(part, params), [[s.specie.Z for s in x] for x in part],
                                     [x.lattice for x in part], scale, seed=args.start + start)
    matches = match_all([r.structure for r in results], targets, 1)
    for k, (result, target, (strict, loose, _)) in enumerate(zip(results, targets, matches)):
        print(json.dumps({"row": args.start + k, "formula": target.composition.reduced_formula,
                          "loss": round(result.loss, 5), "loose": bool(loose), "strict": bool(strict)}))
    failed = [args.start + k for k, m in enumerate(matches) if not m[1]]
    print(json.dumps({"dataset": args.dataset, "split": args.split, "n": len(targets),
                      "match_rate": round(sum(m[1] for m in matches) / len(targets), 4),
                      "match_rate_strict": round(sum(m[0] for m in matches) / len(targets), 4),
                      "failed": failed,
                      "failed_above_solved": sum(results[k - args.start].loss > reconstructor.solved for k in failed),
                      "command": "python benchmarks/reconstruction_rows.py " + " ".join(
                          argv if argv is not None else sys.argv[1:])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
