"""Refit the site-split statistics of a shipped langevin model from its training data, weights unchanged.

The split prior (:class:`explorer.generators.langevin.wyckoff.SplitPrior`) is counted from the training split,
not learnt: when its form changes (issue 14 added the training structures' own splits, the neighbours), the
shipped checkpoint gets the new statistics of the same data without retraining. The network weights, the
volumes and the lattice means stay as they are; the manifest entry gets the new sha256, the metrics of
``benchmarks/results`` (as ``publish_pretrained.py`` reads them) and a ``split_prior`` record. Usage::

    python scripts/refit_split_prior.py --name langevin --tau 3 --weight 30
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import torch
from publish_pretrained import _results  # the manifest's metrics from benchmarks/results, as publishing reads them

from explorer.fileio import atomic_write_bytes, atomic_write_text, file_sha256
from explorer.generators.langevin.dataset import load_training_units
from explorer.generators.langevin.wyckoff import SplitPrior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="langevin")
    parser.add_argument("--out", default="pretrained")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--tau", type=float, required=True)
    parser.add_argument("--weight", type=float, required=True)
    parser.add_argument("--note", default=None)
    args = parser.parse_args()
    out = Path(args.out)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["name"] == args.name)
    path = out / entry["file"]
    payload = torch.load(path, weights_only=True)
    train = load_training_units()
    prior = SplitPrior.counted(train, neighbour_tau=args.tau, neighbour_weight=args.weight)
    payload["prior"] = {**payload["prior"], **prior.to_json()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    entry["sha256"] = file_sha256(path)
    entry["split_prior"] = {"neighbour_tau": args.tau, "neighbour_weight": args.weight,
                            "structures": len(train),
                            "command": f"python scripts/refit_split_prior.py --name {args.name} --tau {args.tau:g} "
                                       f"--weight {args.weight:g}"}
    entry["metrics"] = {**entry.get("metrics", {}), **_results(Path(args.results), args.name, "generation")}
    if args.note:
        entry["note"] = args.note
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}")


if __name__ == "__main__":
    main()
