"""Relaxation throughput (structures/s): a serial loop over matgl's own ``Relaxer`` vs explorer's batched relaxer.

Structures: ``--n`` (default 32) rows of the MP validation split with ≤ ``--max-atoms`` (20) atoms, drawn with a
fixed seed; each is rattled (Gaussian, σ = ``--rattle`` Å) and its cell strained by a random symmetric strain
(entries uniform in ±``--strain``), also seeded, so that every structure has real relaxation work. Both
relaxers use the same potential object (M3GNet-MP-2021.2.8-PES through explorer's compatibility layer), FIRE on
a FrechetCellFilter, fmax 0.05 eV/Å and at most 500 steps, in the same process with the same torch threads
(``--threads``, default: all cores, as torch itself uses by default) and one BLAS thread. Run it on an otherwise
idle machine: the load average at the start is recorded (a busy core makes multi-threaded torch far slower).
``speedup`` = matgl serial time / batched time (one process). With ``--workers W`` the batched relaxer is also
timed over W processes of one torch thread each
(``speedup_workers``; process start-up included). Writes benchmarks/results/relax_throughput.json.

    python benchmarks/relax_throughput.py [--n 32] [--batch-size 32] [--threads 2] [--workers 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg  # noqa: F401  (load scipy's BLAS before threadpoolctl looks for it)
import torch
from threadpoolctl import threadpool_limits

RESULTS = Path(__file__).parent / "results" / "relax_throughput.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="number of structures (default 32)")
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--split", default="val")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rattle", type=float, default=0.05, help="position noise σ, Å (default 0.05)")
    parser.add_argument("--strain", type=float, default=0.03, help="largest strain component (default 0.03)")
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/Å (default 0.05)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads for both relaxers (default: the cores this process may use)")
    parser.add_argument("--workers", type=int, default=1,
                        help="also time the batched relaxer over this many processes (1 torch thread each)")
    parser.add_argument("--potential", default="m3gnet")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args(argv)


def pick_structures(args, potential) -> list:
    """``args.n`` structures (≤ max atoms, supported elements) of the split, chosen and perturbed with the seed."""
    from pymatgen.core import Lattice, Structure

    from explorer.config import data_file
    from explorer.data import parse_cif, read_rows

    rows = [row for row in read_rows(data_file("mp_structures.csv.gz", args.data_dir))
            if row.get("split") == args.split and int(row["nsites"]) <= args.max_atoms]
    rng = np.random.default_rng(args.seed)
    chosen = []
    for position in rng.permutation(len(rows)):
        structure = parse_cif(rows[position]["cif"])
        if potential.unsupported_elements(e.symbol for e in structure.composition):
            continue
        strain = rng.uniform(-args.strain, args.strain, (3, 3))
        deformation = np.eye(3) + (strain + strain.T) / 2
        lattice = Lattice(structure.lattice.matrix @ deformation)
        frac = structure.frac_coords + rng.normal(0.0, args.rattle, (len(structure), 3)) @ np.linalg.inv(lattice.matrix)
        chosen.append((rows[position].get("material_id", ""), Structure(lattice, structure.species, frac)))
        if len(chosen) == args.n:
            break
    return chosen


def run_matgl_relaxer(potential, structures, fmax: float, steps: int) -> tuple[float, list[dict]]:
    """Serial loop over ``matgl.ext.ase.Relaxer``: seconds and one record per structure."""
    from matgl.ext.ase import Relaxer

    relaxer = Relaxer(potential=potential.model, optimizer="FIRE", relax_cell=True)
    records = []
    start = time.perf_counter()
    for structure in structures:
        try:
            output = relaxer.relax(structure, fmax=fmax, steps=steps)
        except Exception as exc:  # one bad structure must not stop the benchmark
            records.append({"status": "failed", "energy_per_atom": math.nan, "steps": 0, "error": str(exc)[:200]})
            continue
        trajectory = output["trajectory"]
        taken = len(trajectory.energies) - 2  # observer: start + one per step + one after the run
        energy = float(trajectory.energies[-1]) / len(structure)
        records.append({"status": "ok" if taken < steps else "unconverged", "energy_per_atom": energy,
                        "steps": taken})
    return time.perf_counter() - start, records


def run_batched(potential, structures, fmax: float, steps: int, batch_size: int,
                workers: int = 1) -> tuple[float, list[dict]]:
    """explorer's batched relaxer (``workers`` processes): seconds and one record per structure."""
    from explorer.relax import relax

    start = time.perf_counter()
    results = relax(structures, potential=potential, fmax=fmax, steps=steps, formation="none",
                    batch_size=batch_size, workers=workers)
    seconds = time.perf_counter() - start
    return seconds, [{"status": r.status, "energy_per_atom": r.energy_per_atom, "steps": r.steps} for r in results]


def summary(seconds: float, records: list[dict]) -> dict:
    count = {status: sum(r["status"] == status for r in records) for status in ("ok", "unconverged", "failed")}
    return {"seconds": round(seconds, 2), "structures_per_s": round(len(records) / seconds, 4),
            "converged": count["ok"], "unconverged": count["unconverged"], "failed": count["failed"],
            "total_steps": sum(r["steps"] for r in records)}


def agreement(serial: list[dict], batched: list[dict]) -> dict:
    """|E_matgl − E_batched| (eV/atom) over structures both relaxers converged."""
    diffs = [abs(a["energy_per_atom"] - b["energy_per_atom"]) for a, b in zip(serial, batched)
             if a["status"] == "ok" and b["status"] == "ok"]
    if not diffs:
        return {"compared": 0}
    return {"compared": len(diffs), "max_abs_diff_ev_per_atom": round(max(diffs), 6),
            "median_abs_diff_ev_per_atom": round(statistics.median(diffs), 8),
            "within_1e-4": sum(d <= 1e-4 for d in diffs), "within_1e-3": sum(d <= 1e-3 for d in diffs)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} at the start; timings will be noisy", file=sys.stderr)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from explorer.relax import load_potential

    potential = load_potential(args.potential)
    picked = pick_structures(args, potential)
    ids, structures = [p[0] for p in picked], [p[1] for p in picked]
    # One BLAS thread for both (explorer's relaxer limits BLAS itself; multi-threaded OpenBLAS makes the cell
    # filter's 3x3 matrix functions far slower on a busy machine, which would flatter the speedup).
    with threadpool_limits(limits=1, user_api="blas"):
        run_batched(potential, structures[:2], args.fmax, 2, args.batch_size)  # warm-up (imports, first calls)
        run_matgl_relaxer(potential, structures[:2], args.fmax, 2)
        serial_seconds, serial = run_matgl_relaxer(potential, structures, args.fmax, args.steps)
        print(json.dumps({"matgl_relaxer_serial": summary(serial_seconds, serial)}), flush=True)
        batched_seconds, batched = run_batched(potential, structures, args.fmax, args.steps, args.batch_size)
        print(json.dumps({"explorer_batched": summary(batched_seconds, batched)}), flush=True)
        if args.workers > 1:  # worker start-up (spawn, loading the potential) is part of the time
            workers_seconds, in_workers = run_batched(potential, structures, args.fmax, args.steps,
                                                      args.batch_size, args.workers)
            print(json.dumps({"explorer_batched_workers": summary(workers_seconds, in_workers)}), flush=True)
    report = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": round(load, 2), "torch_threads": args.threads, "blas_threads": 1,
        "torch": torch.__version__, "potential": potential.name,
        "structures": len(structures), "material_ids": ids, "split": args.split, "max_atoms": args.max_atoms,
        "mean_atoms": round(sum(map(len, structures)) / len(structures), 2), "seed": args.seed,
        "rattle_angstrom": args.rattle, "strain": args.strain, "fmax": args.fmax, "max_steps": args.steps,
        "batch_size": args.batch_size,
        "matgl_relaxer_serial": summary(serial_seconds, serial),
        "explorer_batched": summary(batched_seconds, batched),
        "speedup": round(serial_seconds / batched_seconds, 3),
        "energy_agreement": agreement(serial, batched),
    }
    if args.workers > 1:
        report["explorer_batched_workers"] = {"workers": args.workers, "torch_threads_per_worker": 1,
                                              **summary(workers_seconds, in_workers)}
        report["speedup_workers"] = round(serial_seconds / workers_seconds, 3)
        report["energy_agreement_workers"] = agreement(serial, in_workers)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"speedup": report["speedup"], "energy_agreement": report["energy_agreement"]}))
    return report


if __name__ == "__main__":
    main()
