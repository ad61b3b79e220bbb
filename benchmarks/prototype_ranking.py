"""Which order of known prototypes puts the right structure first? (issue 14; a val study, test once)

For each row of a split (≤ 20 atoms), every train-split template with the row's stoichiometry pattern and space
group (never of the row's own formula) is grouped by its *structure type* — the sorted multiset of (element
site count, Wyckoff letter) over its symmetry-distinct orbits (spglib, symprec 0.1). Per type: how many
templates have it (``popularity``), its best chemical distance (the library's score: substitution distance +
the not-ground-state penalty), and whether its best-scored member, substituted and volume-scaled exactly as
:meth:`explorer.prototypes.PrototypeLibrary.query` does, matches the row's structure (loose and strict).

The records are written once (JSON lines); the rankers are then scored on them without re-matching:
``distance`` (today's order), ``distance - lambda * log(popularity)`` and a vote ``sum exp(-score / tau)``
over the members of a type. Usage::

    python benchmarks/prototype_ranking.py --split val --limit 300 --out benchmarks/results/prototype_ranking_val.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np


def orbit_sites(structure) -> dict[int, tuple[int, str]] | None:
    """{orbit (its first site): (atomic number, Wyckoff letter)} of ``structure`` (spglib, symprec 0.1), or None
    where spglib gives up."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        data = SpacegroupAnalyzer(structure, symprec=0.1).get_symmetry_dataset()
    except Exception:  # spglib gives up on a few cells
        return None
    if data is None:
        return None
    return {int(orbit): (structure[site].specie.Z, letter)
            for site, (letter, orbit) in enumerate(zip(data.wyckoffs, data.equivalent_atoms))}


def type_of_orbits(orbits, count_of) -> tuple | None:
    """The structure type of :func:`orbit_sites`: the sorted (element site count, Wyckoff letter) per orbit."""
    return None if orbits is None else tuple(sorted((count_of[z], letter) for z, letter in orbits.values()))


def structure_type(structure, count_of) -> tuple | None:
    return type_of_orbits(orbit_sites(structure), count_of)


def study(split: str, limit: int, out: Path, max_types: int = 25) -> None:
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Element

    from explorer import prototypes
    from explorer.config import data_file
    from explorer.elements import reduced_composition_key
    from explorer.evaluation import evaluation_conditions
    from explorer.representation import LOOSE, STRICT, decode

    targets, species, groups, _, _ = evaluation_conditions(data_file("mp_structures.csv.gz"), limit=limit,
                                                           max_atoms=20, split=split)
    library = prototypes.load_prototype_library()
    data = library.data
    types: dict[int, tuple | None] = {}
    loose, strict = StructureMatcher(**LOOSE), StructureMatcher(**STRICT)
    done = set()
    if out.is_file():
        done = {json.loads(line)["row"] for line in out.read_text().splitlines() if line.strip()}
    started = time.time()
    with out.open("a") as handle:
        for row, (target, z, group) in enumerate(zip(targets, species, groups)):
            if row in done:
                continue
            own = reduced_composition_key(z)
            members = defaultdict(list)
            for i in library.index.get((prototypes.stoichiometry_pattern(z), int(group)), []):
                template_z = data.species[i][: data.n_sites[i]]
                if reduced_composition_key(template_z) == own:
                    continue
                if i not in types:
                    template = decode(data.matrix[i], template_z)
                    counts = Counter(int(v) for v in template_z)
                    types[i] = structure_type(template, counts)
                distance, mapping = prototypes.best_substitution(template_z, z)
                score = distance + (0.0 if library.ground_state[i] else prototypes.NOT_GROUND_STATE_PENALTY)
                members[types[i]].append((score, distance, i, mapping))
            record = {"row": row, "formula": target.composition.reduced_formula, "spacegroup": int(group),
                      "types": []}
            ranked = sorted(members.items(), key=lambda kv: min(m[0] for m in kv[1]))
            for kind, group_members in ranked[:max_types]:
                group_members.sort(key=lambda m: (m[0], m[2]))
                score, distance, i, mapping = group_members[0]
                template = decode(data.matrix[i], data.species[i][: data.n_sites[i]])
                structure = template.copy()
                structure.replace_species({Element.from_Z(a): Element.from_Z(b) for a, b in mapping.items()
                                           if a != b})
                structure.scale_lattice(prototypes.default_volume_per_atom(template, mapping) * len(structure))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    hit_loose = bool(loose.fit(structure, target))
                    hit_strict = hit_loose and bool(strict.fit(structure, target))
                record["types"].append({"type": None if kind is None else [list(k) for k in kind],
                                        "scores": [round(m[0], 4) for m in group_members],
                                        "ground_state": bool(library.ground_state[i]),
                                        "loose": hit_loose, "strict": hit_strict})
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            if row % 20 == 0:
                print(f"row {row + 1}/{len(targets)} {time.time() - started:.0f} s", file=sys.stderr)


def first_hit(records, key) -> tuple[float, float, float]:
    """(loose, strict, share with a template) of the first type under ranking ``key(type) -> score``."""
    loose = strict = have = 0
    for record in records:
        if not record["types"]:
            continue
        have += 1
        best = min(record["types"], key=key)
        loose += best["loose"]
        strict += best["strict"]
    n = len(records)
    return loose / n, strict / n, have / n


def rankers():
    yield "distance", lambda t: t["scores"][0]
    for lam in (0.25, 0.5, 1.0, 2.0, 4.0):
        yield f"distance - {lam} log(popularity)", lambda t, lam=lam: t["scores"][0] - lam * math.log(len(t["scores"]))
    for tau in (0.5, 1.0, 2.0, 4.0, 8.0):
        yield f"vote tau={tau}", lambda t, tau=tau: -sum(math.exp(-(s - t["scores"][0]) / tau) for s in t["scores"]) \
            * math.exp(-t["scores"][0] / tau)


def report(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for name, key in rankers():
        loose, strict, have = first_hit(records, key)
        rows.append({"ranker": name, "rows": len(records), "first_loose": round(loose, 3),
                     "first_strict": round(strict, 3), "with_template": round(have, 3)})
    ceiling = sum(any(t["loose"] for t in r["types"]) for r in records) / max(1, len(records))
    rows.append({"ranker": "any type (ceiling)", "rows": len(records), "first_loose": round(ceiling, 3)})
    return rows


def run_study(study, report, doc: str, argv=None) -> int:
    """The command line of a study that writes per-row records once (``study(split, limit, out)``, resumable)
    and then scores rankers on them (``report(out)``, one JSON line each)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        study(args.split, args.limit, args.out)
    for row in report(args.out):
        print(json.dumps(row))
    return 0


def main(argv=None) -> int:
    return run_study(study, report, __doc__, argv)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
