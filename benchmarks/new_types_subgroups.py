"""Templates of *subgroups* of the requested group on the rows without a template of their group (new structure
types; issue 14, a val study): a known structure in a group H < G, its elements substituted, may be a slight
distortion of the requested structure, so symmetrising it with a looser tolerance gives a candidate in G. Per row,
the same-pattern templates (other formulas) of every group are substituted as the prototypes are
(``PrototypeLibrary._ranked`` / ``_substituted``, up to ``k`` per group); each is matched with the real structure
as it is, and symmetrised into G (``representation.symmetrize`` at spglib tolerances 0.1 … 1.0 Å: the refined
primitive cell where it has G) and matched again. Prints the rows reachable per relation of H to G (subgroup,
supergroup, other).

    python benchmarks/new_types_subgroups.py val 4   # -> benchmarks/results/new_types_subgroups_val_k4.json
    python benchmarks/new_types_subgroups.py val 4 relax   # also: the first template of each sub / other group
                                                           # relaxed with M3GNet, snapped into G, matched
    python benchmarks/new_types_subgroups.py val 4 supergroup   # instead: pyxtal's supergroup search (d_tol 1 A)
                                                                # on the first templates that match loosely
"""

from __future__ import annotations

import json
import sys
import time

SYMPRECS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def relaxed_into(items, requests, targets) -> list[dict]:
    """The ``items`` relaxed with M3GNet as the pipeline relaxes prototypes, snapped into the requested group
    (``make_candidate(snap=True)``); per item whether that gives the group and matches (strict, loose)."""
    from explorer.candidates import make_candidate
    from explorer.evaluation import match_all
    from explorer.relax import relax
    from explorer.relax.potentials import shared_potential
    from explorer.search import meets_request

    results = relax([item[3].structure for item in items], potential=shared_potential("m3gnet"), fmax=0.05,
                    steps=300, formation="none", device="cpu")
    out = []
    for item, result in zip(items, results):
        group = int(requests[item[0]].spacegroup)
        if result.structure is None:
            out.append({"in_group": False, "energy": None, "structure": None})
            continue
        candidate = make_candidate(result.structure, group, None, snap=True)
        out.append({"in_group": meets_request(candidate), "energy": result.energy_per_atom,
                    "structure": candidate.structure})
    kept = [(i, o) for i, o in enumerate(out) if o["in_group"]]
    matches = match_all([o["structure"] for _, o in kept], [targets[items[i][0]] for i, _ in kept], 1)
    for (_, o), m in zip(kept, matches):
        o["match"] = _strict_loose(m)
    for o in out:
        o.pop("structure")
    return out


def _strict_loose(match) -> list[bool]:
    return [bool(match[0]), bool(match[1])]


def lifted_by_pyxtal(structure, spacegroup: int, seconds: int = 60):
    """pyxtal's pseudo-symmetry search: ``structure`` moved (≤ 1 Å) into the supergroup ``spacegroup``, or None
    (also when the search takes longer than ``seconds``)."""
    import signal

    from pyxtal import pyxtal

    def give_up(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        crystal = pyxtal()
        crystal.from_seed(structure, tol=0.05)
        found = crystal.supergroup(spacegroup, d_tol=1.0)[0]
        return found[0].to_pymatgen() if found else None
    except Exception:  # no path to the group, or pyxtal gives up
        return None
    finally:
        signal.alarm(0)


def main(split: str, k: int, relax_them: bool = False, supergroup: bool = False) -> None:
    from new_types_parents import new_type_rows

    from explorer.evaluation import match_all
    from explorer.prototypes import stoichiometry_pattern
    from explorer.representation import detect_spacegroup, symmetrize
    from explorer.symmetric import is_subgroup

    targets, requests, keep, library = new_type_rows(split)
    started = time.time()
    items = []
    for row in keep:
        z = [int(v) for v in requests[row].species if int(v) > 0]
        group = int(requests[row].spacegroup)
        pattern = stoichiometry_pattern(z)
        for (key, other), members in library.index.items():
            if key != pattern or other == group:
                continue
            relation = "sub" if is_subgroup(other, group) else "super" if is_subgroup(group, other) else "other"
            for p in library._substituted(library._ranked(members, z, True), k, None, None):
                refined = symmetrize(p.structure, group, tolerances=SYMPRECS)
                items.append((row, other, relation, p, refined))
    print("templates", len(items), "seconds", round(time.time() - started), flush=True)
    raw = match_all([item[3].structure for item in items], [targets[item[0]] for item in items], 1)
    up = [item for item in items if item[4] is not None]
    lifted = iter(match_all([item[4] for item in up], [targets[item[0]] for item in up], 1))  # in the order of items
    out = []
    for (row, other, relation, p, refined), m in zip(items, raw):
        out.append({"row": row, "group": int(requests[row].spacegroup), "template_group": other,
                    "relation": relation, "rank": p.rank, "source": p.source_formula, "distance": p.distance,
                    "raw": _strict_loose(m), "lifted": None if refined is None else _strict_loose(next(lifted))})
    if supergroup:
        chosen = [i for i, o in enumerate(out) if o["relation"] != "super" and o["rank"] == 0 and o["raw"][1]]
        found = [lifted_by_pyxtal(items[i][3].structure, out[i]["group"]) for i in chosen]
        found = [(i, s) for i, s in zip(chosen, found) if s is not None and detect_spacegroup(s) == out[i]["group"]]
        matches = match_all([s for _, s in found], [targets[out[i]["row"]] for i, _ in found], 1)
        print("pyxtal supergroup search on", len(chosen), "loose first templates: in G", len(found),
              "loose", sum(bool(m[1]) for m in matches), flush=True)
        return
    if relax_them:
        chosen = [i for i, item in enumerate(items) if item[2] != "super" and item[3].rank == 0]
        for i, o in zip(chosen, relaxed_into([items[i] for i in chosen], requests, targets)):
            out[i]["relaxed"] = o
        hits = [out[i] for i in chosen]
        print("relaxed", len(hits), "into G", sum(o["relaxed"]["in_group"] for o in hits),
              "rows loose", len({o["row"] for o in hits if o["relaxed"].get("match", [0, 0])[1]}),
              "strict", len({o["row"] for o in hits if o["relaxed"].get("match", [0, 0])[0]}), flush=True)
    with open(f"benchmarks/results/new_types_subgroups_{split}_k{k}.json", "w") as handle:
        json.dump(out, handle)
    for relation in ("sub", "super", "other", None):
        chosen = [o for o in out if relation is None or o["relation"] == relation]
        print(relation or "any", "rows with a template", len({o["row"] for o in chosen}),
              "raw loose", len({o["row"] for o in chosen if o["raw"][1]}),
              "lifted into G", len({o["row"] for o in chosen if o["lifted"] is not None}),
              "lifted loose", len({o["row"] for o in chosen if o["lifted"] and o["lifted"][1]}),
              "lifted strict", len({o["row"] for o in chosen if o["lifted"] and o["lifted"][0]}),
              "lifted loose, first of its group", len({o["row"] for o in chosen if o["lifted"] and o["lifted"][1]
                                                      and o["rank"] == 0}))
    print("rows", len(keep), "seconds", round(time.time() - started))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "val", int(sys.argv[2]) if len(sys.argv) > 2 else 4,
         sys.argv[3:4] == ["relax"], sys.argv[3:4] == ["supergroup"])
