"""How far are M3GNet formation energies of the *real* structures from MP's, raw and with MP2020 corrections?

The first N rows of a split of mp_structures (≤ 20 atoms), each relaxed with M3GNet (batched, fmax 0.05 eV/Å,
≤ 500 FIRE steps); formation energy against the potential's elemental references, without
(``corrections="none"``) and with the MP2020 corrections (:mod:`explorer.relax.corrections`, the default);
compared with the row's MP formation energy. This bounds what `explorer evaluate fidelity` can reach with
this potential. Usage::

    python benchmarks/formation_corrections.py --split val --limit 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings

import torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from explorer.config import data_file
    from explorer.evaluation import evaluation_conditions
    from explorer.relax import ElementalReferences, relax
    from explorer.relax.potentials import shared_potential

    targets, _, _, energies, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), limit=args.limit,
                                                       max_atoms=20, split=args.split)
    potential = shared_potential("m3gnet")
    corrected = ElementalReferences(potential)
    raw = ElementalReferences.from_spec(potential, {**corrected.to_spec(), "corrections": "none"})
    results = relax(targets, potential=potential, fmax=0.05, steps=500, formation="references",
                    references=corrected)
    errors = {"raw": [], "mp2020": []}
    for target, result in zip(energies, results):
        if result.formation_energy_per_atom is None:
            continue
        errors["mp2020"].append(abs(result.formation_energy_per_atom - target))
        composition = result.structure.composition
        errors["raw"].append(abs(raw.formation_energy_per_atom(composition, result.energy_per_atom) - target))
    summary = {"split": args.split, "rows": len(targets), "evaluated": len(errors["raw"]),
               "command": f"python benchmarks/formation_corrections.py --split {args.split} --limit {args.limit}"}
    for name, values in errors.items():
        summary[f"mae_{name}"] = round(statistics.fmean(values), 4)
        summary[f"median_{name}"] = round(statistics.median(values), 4)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
