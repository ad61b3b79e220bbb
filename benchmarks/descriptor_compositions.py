"""Compositions of a descriptor model's unconditional samples, decoded plainly or as the closest composition
with few elements, charge-neutral or not (``Layout.decode(neutral=..., element_penalty=...)``): compositional
validity (SMACT) and the EMD of the number of elements against a split's rows — the DDPM alone, no
reconstruction, so thousands of samples are cheap.

    python benchmarks/descriptor_compositions.py --model descriptor-mp --split val --n 1000

With ``--coverage N``, N samples are reconstructed too for each way of decoding (plain; the closest neutral
composition, penalty 0.2; the same, then sampled again with it fixed) and scored as ``explorer evaluate
coverage`` scores them, against the split's first 1,000 rows (MP thresholds 0.4 / 10), one JSON line each:

    python benchmarks/descriptor_compositions.py --model descriptor-mp --split val --coverage 32
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
from explorer.coverage import coverage_metrics, fingerprints, reference_fingerprints
from explorer.data import read_structure_rows
from explorer.generators import GenerationRequest, get_generator

DATASETS = {"descriptor-mp": ("mp_structures.csv.gz", 20), "descriptor-perov": ("perov_5.csv.gz", 20),
            "descriptor-carbon": ("carbon_24.csv.gz", 24)}


def summary(compositions: list[Composition], reference_elements: np.ndarray) -> dict:
    n_elements = np.array([len(c.elements) for c in compositions])
    return {"comp_validity": round(float(np.mean([smact_valid(c) for c in compositions])), 4),
            "emd_elements": round(float(wasserstein_distance(n_elements, reference_elements)), 4),
            "mean_elements": round(float(n_elements.mean()), 3),
            "elemental": round(float(np.mean(n_elements == 1)), 4)}


DECODINGS = {"plain": {}, "neutral, penalty 0.2": {"neutral": True, "element_penalty": 0.2},
             "neutral, penalty 0.2, sampled again": {"neutral": True, "element_penalty": 0.2, "resample": True}}
CUTOFFS = {"descriptor-mp": (0.4, 10.0), "descriptor-perov": (0.2, 4.0), "descriptor-carbon": (0.2, 4.0)}


def coverage_rows(model: str, split: str, n: int, seed: int) -> None:
    """One JSON line per decoding: coverage metrics of ``n`` reconstructed unconditional samples."""
    csv, max_atoms = DATASETS[model]
    generator = get_generator(model, task="generation")
    reference = reference_fingerprints(data_file(csv), split, max_atoms, 1000, 1)
    for name, settings in DECODINGS.items():
        started = time.time()
        structures = generator.sample_structures([GenerationRequest() for _ in range(n)], seed=seed, device="cpu",
                                                 composition={"neutral": False, "element_penalty": 0.0,
                                                              "resample": False, **settings})
        sampled = time.time() - started
        metrics = coverage_metrics(fingerprints(structures, 1), reference, *CUTOFFS[model])
        print(json.dumps({"model": model, "decoding": name, "split": split, "n": n, "seed": seed, **metrics,
                          "sampling_seconds": round(sampled, 1),
                          "command": f"python benchmarks/descriptor_compositions.py --model {model} --split {split} "
                                     f"--coverage {n} --seed {seed}"}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="descriptor-mp", choices=sorted(DATASETS))
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--penalties", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3],
                        help="element penalties tried (Layout.decode), each without and with neutrality")
    parser.add_argument("--out", default=None, help="JSON file for the result (default: print only)")
    parser.add_argument("--coverage", type=int, default=0, metavar="N",
                        help="reconstruct N samples per decoding and print their coverage metrics instead")
    args = parser.parse_args()
    if args.coverage:
        coverage_rows(args.model, args.split, args.coverage, args.seed)
        return
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
