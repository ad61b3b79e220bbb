"""The paper's Ta–W–B experiment (Novitskiy et al., §7) at small scale, through the library API.

Conditions: the paper's three compositions (TaWB6, TaW2B5, Ta2WB5; 8 atoms per cell) × five space groups whose
Wyckoff positions hold all three × target formation energies from -0.6 to -0.4 eV/atom. Each condition's
candidates are generated, pre-relaxed with M3GNet (the paper's pre-optimisation; the paper then relaxes with
VASP), and placed on the Ta–W–B convex hull of the Materials Project entries (the elements alone when no data
directory is found). Prints the best candidates and saves the interactive hull plot.

    python examples/ta_w_b_screening.py              # 75 conditions, 2 candidates each: ~10 min on a laptop CPU
    python examples/ta_w_b_screening.py --quick      # 1 condition, a few steps: a smoke test

Interrupt it at any time and run it again: finished conditions are kept in the output directory.
"""

from __future__ import annotations

import argparse

import torch

import explorer
from explorer.config import data_dir
from explorer.relax import ReferenceDone
from explorer.screening import ConditionDone, ScreenStarted

FORMULAS = ["TaWB6", "TaW2B5", "Ta2WB5"]  # the paper's compositions
SPACEGROUPS = [191, 187, 164, 65, 12]  # P6/mmm, P-6m2, P-3m1, Cmmm, C2/m: all fit the three formulas
ENERGIES = "-0.6:-0.4:0.05"  # eV/atom, stop included


def make_config(out: str, quick: bool) -> explorer.ScreenConfig:
    """The screen's settings; ``quick``: one condition, one candidate, 5 sampling and 5 relaxation steps."""
    has_mp = (data_dir() / "mp_formation_energies.csv.gz").is_file()
    common = {"model": "cfm-uniform", "out": out, "reference": "mp" if has_mp else "elements"}
    if quick:
        return explorer.ScreenConfig(formulas=["TaWB6"], spacegroups=[191], energies=[-0.5], n=1, steps=5,
                                     relax_steps=5, **common)
    return explorer.ScreenConfig(formulas=FORMULAS, spacegroups=SPACEGROUPS, energies=ENERGIES, n=2, steps=100,
                                 relax_steps=100, fmax=0.1, **common)


def report(event) -> None:
    """Progress lines from the screen's events."""
    if isinstance(event, ScreenStarted):
        print(f"{event.total} conditions, {event.skipped} already done in {event.out}")
    elif isinstance(event, ReferenceDone):
        print(f"  elemental reference {event.element}: {event.energy_per_atom:.3f} eV/atom ({event.source})")
    elif isinstance(event, ConditionDone):
        best = min((c.formation_energy_per_atom for c in event.candidates
                    if c.formation_energy_per_atom is not None), default=None)
        text = f"best E_f {best:.3f} eV/atom" if best is not None else "no candidate relaxed"
        print(f"  [{event.done}/{event.pending}] {event.condition.key}: {text} ({event.seconds:.1f} s)")


def main(argv: list[str] | None = None) -> explorer.ScreenResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/ta_w_b_screening", help="output directory (resumed when rerun)")
    parser.add_argument("--quick", action="store_true", help="one tiny condition (for the tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # crystal-sized graphs run fastest on one thread
    result = explorer.screen(make_config(args.out, args.quick), callback=report)
    print(f"\nTop candidates ({result.chemsys} hull, {result.reference} references):")
    for c in result.best(5):
        print(f"  #{c.rank} {c.formula:7s} sg {c.spacegroup_requested:3d} -> {c.spacegroup_relaxed}, target "
              f"{c.target_energy:+.2f}: E_f {c.formation_energy_per_atom:+.3f} eV/atom, "
              f"{1000 * c.e_above_hull:+.0f} meV/atom above hull = {c.decomposition}  {c.file}")
    print(f"ranked table: {result.csv}\nhull plot:    {result.html}")
    return result


if __name__ == "__main__":
    main()
