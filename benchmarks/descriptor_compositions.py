"""Compositions of a descriptor model's unconditional samples, decoded plainly or as the closest composition
with few elements, charge-neutral or not (``Layout.decode(neutral=..., element_penalty=...)``): compositional
validity (SMACT) and the EMD of the number of elements against a split's rows — the DDPM alone, no
reconstruction, so thousands of samples are cheap.

    python benchmarks/descriptor_compositions.py --model descriptor-mp --split val --n 1000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Composition, Element
from scipy.stats import wasserstein_distance

from explorer.checks import smact_valid
from explorer.config import data_file
from explorer.coverage import read_structure_rows
from explorer.generators import GenerationRequest, get_generator

DATASETS = {"descriptor-mp": ("mp_structures.csv.gz", 20), "descriptor-perov": ("perov_5.csv.gz", 20),
            "descriptor-carbon": ("carbon_24.csv.gz", 24)}


def summary(compositions: list[Composition], reference_elements: np.ndarray) -> dict:
    n_elements = np.array([len(c.elements) for c in compositions])
    return {"comp_validity": round(float(np.mean([smact_valid(c) for c in compositions])), 4),
            "emd_elements": round(float(wasserstein_distance(n_elements, reference_elements)), 4),
            "mean_elements": round(float(n_elements.mean()), 3),
            "elemental": round(float(np.mean(n_elements == 1)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="descriptor-mp", choices=sorted(DATASETS))
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--penalties", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3],
                        help="element penalties tried (Layout.decode), each without and with neutrality")
    parser.add_argument("--out", default=None, help="JSON file for the result (default: print only)")
    args = parser.parse_args()
    started = time.time()
    csv, max_atoms = DATASETS[args.model]
    rows = read_structure_rows(data_file(csv), args.split, max_atoms)
    reference = np.array([len(r.structure.composition.elements) for r in rows])
    generator = get_generator(args.model, task="generation")
    vectors = generator.vectors([GenerationRequest() for _ in range(args.n)],
                                generator=torch.Generator().manual_seed(args.seed), device="cpu")
    layout, max_sites = generator.layout, generator.loaded["max_atoms"]
    out = {"model": args.model, "split": args.split, "n": args.n, "seed": args.seed, "reference_rows": len(rows),
           "reference": {"comp_validity": round(float(np.mean([smact_valid(r.structure.composition)
                                                                for r in rows])), 4),
                         "mean_elements": round(float(reference.mean()), 3)}}
    settings = [("plain", False, 0.0)] + [(f"{'neutral' if neutral else 'any'}, penalty {penalty}", neutral, penalty)
                                          for neutral in (False, True) for penalty in args.penalties]
    for name, neutral, penalty in settings:
        compositions = []
        for vector in vectors:
            numbers, _ = layout.decode(vector, max_atoms=max_sites, neutral=neutral, element_penalty=penalty)
            compositions.append(Composition({Element.from_Z(z): numbers.count(z) for z in set(numbers)}))
        out[name] = summary(compositions, reference)
    out["seconds"] = round(time.time() - started, 1)
    out["command"] = (f"python benchmarks/descriptor_compositions.py --model {args.model} --split {args.split} "
                      f"--n {args.n} --seed {args.seed} --penalties {' '.join(map(str, args.penalties))}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
