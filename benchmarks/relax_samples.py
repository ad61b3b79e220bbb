"""Does relaxing a network's samples with M3GNet make them the real structure more often? (issue 14; val)

For each row (first ``--limit`` rows of a split, ≤ 20 atoms) one sample of ``--model`` (seed 0, as
``explorer evaluate generation`` draws it) is matched against the row's structure (loose and strict), then
relaxed with M3GNet and refined onto the requested group exactly as the pipeline relaxes its prototypes
(:func:`explorer.search._relax_candidates`: ≤ 300 FIRE steps to 0.05 eV/Å, cell included; a relaxation that
fails or loses the group keeps the sample as it was) and matched again. One JSON line per row, then the summary
(match rates before and after, on all rows and on the rows without a prototype of their group). Usage::

    python benchmarks/relax_samples.py --split val --limit 300 --model langevin \
        > benchmarks/results/relax_samples_langevin_val.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys


def summary(records: list[dict]) -> dict:
    """Match rates before and after the relaxation, over all rows and over the rows without a prototype."""
    out = {}
    for name, chosen in [("all", records), ("no_prototype", [r for r in records if r["no_prototype"]])]:
        n = len(chosen)
        out[name] = {"rows": n, **{f"{key}_{when}": round(sum(r[when][key] for r in chosen) / n, 4) if n else None
                                   for when in ("sampled", "relaxed") for key in ("strict", "loose")},
                     "kept_as_sampled": sum(bool(r["kept"]) for r in chosen)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--model", default="langevin")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from explorer.candidates import make_candidate
    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions, evaluation_requests, match_all, rows_without_prototype
    from explorer.generators import get_generator
    from explorer.search import _relax_candidates

    targets, species, groups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), args.limit, 20,
                                                                  args.split)
    generator = get_generator(args.model, task="generation")
    requests = evaluation_requests(species, groups, energies, generator)
    no_prototype = set(rows_without_prototype(requests))
    samples = generator.sample_best(requests, 1, seed=args.seed, device="cpu")
    candidates = [make_candidate(s, r.spacegroup, r.target, snap=True, model=generator.name)
                  for s, r in zip(samples, requests)]
    before = match_all([c.structure for c in candidates], targets, 1)
    _relax_candidates(list(enumerate(candidates)), requests, "cpu")
    after = match_all([c.structure for c in candidates], targets, 1)
    records = []
    for row, (candidate, target, b, a) in enumerate(zip(candidates, targets, before, after)):
        relaxed = candidate.extra["relaxed"]
        record = {"row": row, "formula": target.composition.reduced_formula, "spacegroup": requests[row].spacegroup,
                  "no_prototype": row in no_prototype, "sampled": {"strict": bool(b[0]), "loose": bool(b[1])},
                  "relaxed": {"strict": bool(a[0]), "loose": bool(a[1])}, "kept": relaxed.get("kept", ""),
                  "energy_per_atom": relaxed.get("energy_per_atom")}
        records.append(record)
        print(json.dumps(record), flush=True)
    print(json.dumps({**summary(records), "model": generator.name, "command": "python benchmarks/relax_samples.py "
                      + " ".join(argv if argv is not None else sys.argv[1:])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
