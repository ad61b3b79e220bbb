"""Generate candidate TaWB6 structures in P6/mmm at a target formation energy, look at them, save them.

    python examples/generate_candidates.py [--model cfm-uniform] [--n 8] [--out out/examples]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import explorer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default="out/examples")
    args = parser.parse_args()

    candidates = explorer.generate("TaWB6", spacegroup=191, energy=-0.45, n=args.n, model=args.model,
                                   steps=args.steps, seed=0, snap=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for c in candidates:
        a, b, cc = c.structure.lattice.abc
        print(f"#{c.index}: {c.formula} requested sg {c.spacegroup_requested}, detected {c.spacegroup_detected}, "
              f"a/b/c = {a:.2f}/{b:.2f}/{cc:.2f} Å, min distance {c.min_distance:.2f} Å, valid {c.valid}")
        c.structure.to(filename=str(out / f"TaWB6_{c.index}.cif"))
    print(f"saved {len(candidates)} CIF files in {out}")


if __name__ == "__main__":
    main()
