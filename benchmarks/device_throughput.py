"""Sampling and relaxation throughput (structures/s) on whatever device this machine has, with a batch-size sweep.

Sampling: each ``--models`` model (default: cfm-normal, langevin, cspnet) samples the first B rows (≤ 20 atoms) of
the MP validation split at its default steps for every B in ``--batch-sizes``: one warm-up batch, then the
median of ``--repeats`` timed batches. Relaxation: explorer's batched relaxer (M3GNet, FIRE + FrechetCellFilter,
fmax 0.05 eV/Å, at most ``--relax-steps`` steps) on ``--n`` rattled and strained validation structures (as
``relax_throughput.py`` picks them) for every B in ``--batch-sizes``. ``--device auto`` takes CUDA when present.
Writes benchmarks/results/device_throughput_<device>.json.

    python benchmarks/device_throughput.py [--device auto] [--batch-sizes 1 8 32 64] [--models cfm-normal]
    python benchmarks/device_throughput.py --quick     # a smoke run: tiny sweep, seconds on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from relax_throughput import pick_structures, summary  # noqa: E402  (the same structures, the same summary)

RESULTS = Path(__file__).parent / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--models", nargs="*", default=["cfm-normal", "langevin", "cspnet"])
    parser.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 8, 32, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=64, help="structures to relax per batch size (default 64)")
    parser.add_argument("--relax-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quick", action="store_true", help="smoke run: cfm-normal, batch sizes 1 2, 2 structures")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/device_throughput_<device>.json")
    # what pick_structures reads
    parser.add_argument("--split", default="val")
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rattle", type=float, default=0.05)
    parser.add_argument("--strain", type=float, default=0.03)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.batch_sizes, args.repeats, args.n, args.relax_steps = ["cfm-normal"], [1, 2], 1, 2, 5
    return args


def sampling(args, device) -> list[dict]:
    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions, evaluation_requests
    from explorer.generators import get_generator

    largest = max(args.batch_sizes)
    _, species, spacegroups, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz", args.data_dir),
                                                                 limit=largest, max_atoms=20, split="val")
    rows = []
    for name in args.models:
        generator = get_generator(name, task="generation")
        requests = evaluation_requests(species, spacegroups, energies, generator)
        for batch in args.batch_sizes:
            chosen = requests[:batch]
            generator.sample_structures(chosen, device=device, batch_size=batch)  # warm-up
            times = []
            for repeat in range(args.repeats):
                _synchronize(device)
                start = time.perf_counter()
                generator.sample_structures(chosen, seed=repeat, device=device, batch_size=batch)
                _synchronize(device)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            rows.append({"model": name, "batch": len(chosen), "steps": generator.steps_used(None),
                         "structures_per_s": round(len(chosen) / seconds, 3), "seconds_per_batch": round(seconds, 3)})
            print(json.dumps({"sampling": rows[-1]}), flush=True)
    return rows


def relaxation(args, device) -> list[dict]:
    from explorer.relax import load_potential, relax

    potential = load_potential("m3gnet")
    structures = [s for _, s in pick_structures(args, potential)]
    relax(structures[:2], potential=potential, steps=2, formation="none", batch_size=2, device=device)  # warm-up
    rows = []
    for batch in args.batch_sizes:
        _synchronize(device)
        start = time.perf_counter()
        results = relax(structures, potential=potential, fmax=0.05, steps=args.relax_steps, formation="none",
                        batch_size=batch, device=device)
        _synchronize(device)
        seconds = time.perf_counter() - start
        records = [{"status": r.status, "steps": r.steps} for r in results]
        rows.append({"batch": batch, **summary(seconds, records)})
        print(json.dumps({"relaxation": rows[-1]}), flush=True)
    return rows


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    from explorer.devices import resolve_device

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    report = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
              "device": name, "torch": torch.__version__, "torch_threads": args.threads,
              "load_average_at_start": round(os.getloadavg()[0], 2), "quick": args.quick,
              "sampling": sampling(args, device), "relaxation": relaxation(args, device)}
    out = Path(args.out) if args.out else RESULTS / f"device_throughput_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
