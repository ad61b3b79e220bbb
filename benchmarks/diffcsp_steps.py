"""Choose the cspnet peer's sampler on val: match rates of one sample per row for strided predictor-corrector
schedules (steps) and corrector step scales, against DiffCSP's own 1000-step schedule.

    python benchmarks/diffcsp_steps.py --split val --limit 60 --grid 100:1,100:4,200:1,1000:1 \
        --out benchmarks/results/diffcsp_steps_val.jsonl

One JSON line per setting (appended; settings already in --out are skipped, so a run resumes)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from explorer.config import data_file
from explorer.evaluation import evaluation_conditions, evaluation_requests, match_metrics, spacegroup_rate
from explorer.generators import get_generator


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cspnet")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--grid", default="100:1,100:4,200:1,1000:1", help="steps:corrector_scale,...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    targets, species, spacegroups, energies, _ = evaluation_conditions(
        data_file("mp_structures.csv.gz"), args.limit, args.max_atoms, args.split)
    generator = get_generator(args.model, task="generation")
    requests = evaluation_requests(species, spacegroups, energies, generator)
    done = set()
    if args.out.exists():
        done = {(r["steps"], r["corrector_scale"]) for r in map(json.loads, args.out.read_text().splitlines())}
    for item in args.grid.split(","):
        steps, scale = int(item.split(":")[0]), float(item.split(":")[1])
        if (steps, scale) in done:
            continue
        generator.info.info["corrector_scale"] = scale
        started = time.time()
        structures = generator.sample_structures(requests, steps=steps, seed=args.seed)
        seconds = time.time() - started
        record = {"model": args.model, "split": args.split, "n": len(targets), "steps": steps,
                  "corrector_scale": scale, **match_metrics(structures, targets, workers=1),
                  "spacegroup_rate": spacegroup_rate(structures, spacegroups),
                  "sampling_seconds_per_structure": round(seconds / len(targets), 3)}
        with args.out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
