"""How many reconstruction rounds a *sampled* descriptor vector is worth. Rounds (``Reconstructor(rounds=...)``)
give the cells whose loss is still above 0.01 fresh trials; a real structure's own vector reaches that threshold,
a sampled one almost never does, so every round runs for it. This reconstructs the same samples (same seed) with
each number of rounds and scores them as ``explorer evaluate coverage`` does (unconditional samples against the
split's first 1,000 rows, CDVAE's thresholds) and, with ``--formulas``, as ``explorer evaluate generation`` does
(one sample per row, the row's formula fixed, matched against the row's structure), one JSON line each:

    python benchmarks/sampling_rounds.py --model descriptor-perov --split val --n 64 --rounds 1 3 12
    python benchmarks/sampling_rounds.py --model descriptor-perov --split val --n 48 --rounds 1 3 12 --formulas
"""

from __future__ import annotations

import argparse
import json
import time

from descriptor_compositions import CUTOFFS, DATASETS  # the model's data file, cell size and coverage thresholds

from explorer.config import data_file
from explorer.coverage import coverage_metrics, fingerprints, reference_fingerprints
from explorer.data import read_structure_rows
from explorer.evaluation import match_metrics
from explorer.generators import GenerationRequest, get_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="descriptor-perov", choices=sorted(DATASETS))
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=64, help="samples (with --formulas: the split's first N rows)")
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 3, 12])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formulas", action="store_true",
                        help="one sample per row with the row's formula, matched against the row's structure")
    args = parser.parse_args()
    (csv, max_atoms), cutoffs = DATASETS[args.model], CUTOFFS[args.model]
    generator = get_generator(args.model, task="generation")
    if args.formulas:
        rows = read_structure_rows(data_file(csv), args.split, max_atoms, args.n)
        requests = [GenerationRequest(species=tuple(r.species)) for r in rows]
    else:
        reference = reference_fingerprints(data_file(csv), args.split, max_atoms, 1000, 1)
        requests = [GenerationRequest() for _ in range(args.n)]
    for rounds in args.rounds:
        started = time.time()
        structures = generator.sample_structures(requests, seed=args.seed, device="cpu",
                                                 reconstruction={"rounds": rounds})
        seconds = time.time() - started
        if args.formulas:
            metrics = match_metrics(structures, [r.structure for r in rows], workers=1)
        else:
            metrics = coverage_metrics(fingerprints(structures, 1), reference, *cutoffs)
        print(json.dumps({"model": args.model, "split": args.split, "n": args.n, "seed": args.seed,
                          "formulas": args.formulas, "rounds": rounds, **metrics,
                          "seconds_per_sample": round(seconds / len(requests), 2),
                          "command": f"python benchmarks/sampling_rounds.py --model {args.model} --split "
                                     f"{args.split} --n {args.n} --rounds {rounds} --seed {args.seed}"
                                     + (" --formulas" if args.formulas else "")}), flush=True)


if __name__ == "__main__":
    main()
