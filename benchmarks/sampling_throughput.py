"""Sampling throughput of the shipped generation models (structures/s).

Conditions: the first 64 rows (≤ 20 atoms) of the MP validation split; one batch of 64, each model's default
steps (``--steps`` for all),
``--threads`` torch threads (default 2 = this machine's cores). One warm-up batch, then the median of
``--repeats`` timed batches. Writes benchmarks/results/sampling_throughput.json.

    python benchmarks/sampling_throughput.py [--models ddpm ddim cfm-normal cfm-uniform] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from explorer.config import data_file
from explorer.evaluation import evaluation_conditions, evaluation_requests
from explorer.generators import available_models, get_generator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: each model's own)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sampling_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, species, spacegroups, energies, _ = evaluation_conditions(
        data_file("mp_structures.csv.gz"), limit=args.batch, max_atoms=20, split="val")
    results = []
    for name in args.models or available_models("generation"):
        generator = get_generator(name, task="generation")
        requests = evaluation_requests(species, spacegroups, energies, generator)
        generator.sample_structures(requests[:2], steps=args.steps, device=args.device)  # warm-up
        times = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            generator.sample_structures(requests, steps=args.steps, seed=repeat, device=args.device,
                                        batch_size=args.batch)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        results.append({"model": name, "steps": generator.steps_used(args.steps),
                        "structures_per_s": round(args.batch / seconds, 2), "seconds_per_batch": round(seconds, 3),
                        "all_seconds": [round(t, 3) for t in times]})
        print(json.dumps(results[-1]), flush=True)
    report = {
        "command": "python " + " ".join(sys.argv),
        "device": args.device if args.device != "cpu" else f"CPU {platform.processor() or platform.machine()}",
        "torch_threads": args.threads, "batch": args.batch, "steps": args.steps,
        "mean_sites": round(sum(map(len, species)) / len(species), 2),
        "torch": torch.__version__, "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
