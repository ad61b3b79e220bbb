"""Conditional modification (paper §2.2, §5): turn a polymorph into another (more stable) one.

:func:`modify` puts *known prototypes* first (:mod:`explorer.prototypes`: train-split structures of the
requested space group with the same stoichiometry pattern, elements substituted), samples the rest from a
registered modification model (:mod:`explorer.generators`; the matrix family's regression, Palette, CFM and
Palette-CFM models, :mod:`explorer.generators.matrix.modification`) and relaxes every candidate with M3GNet;
:func:`evaluate_modification` measures the same (``prototypes=False`` / ``relax_steps=0`` for the networks
alone) on polymorph pairs (:mod:`explorer.polymorphs`).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .errors import ExplorerInputError
from .generators import GenerationRequest, get_generator
from .prototypes import prototype_slots, require_prototype_library

RELAX_STEPS = 300  # FIRE steps of the relaxation of modified candidates
RELAX_FMAX = 0.05  # eV/Å


def check_initial_structure(structure):
    """The encoded primitive cell of a structure to modify, or a one-line error: the checks ``explorer relax``
    makes (atoms, order, cell, no overlapping atoms) and the models' limit of 60 sites. The app checks uploads
    with this, and :func:`modify` its input."""
    from .relax.single import check_structure
    from .representation import encode

    problem = check_structure(structure)
    if problem:
        raise ExplorerInputError(f"this structure cannot be modified: {problem}")
    return encode(structure)


def modification_model(model: str | None = None):
    """The registered modification generator by name or method alias ('regression' = the shipped
    ``mod-regression``); None: the manifest's ``default_modification``."""
    return get_generator(model, task="modification")


def find_prototypes(crystal, spacegroup: int, k: int, other_formulas_only: bool = False) -> list:
    """Up to ``k`` :class:`~explorer.prototypes.Prototype` s for an encoded initial structure: known structures
    of ``spacegroup`` with its stoichiometry pattern, its elements substituted in, scaled to its volume per atom
    (Å³). A prototype that is the initial structure itself (within StructureMatcher tolerances; e.g. the user's
    own known structure, asked for in its own space group) says so in ``same_as_reference`` and keeps its rank:
    the space group asked for may be one the initial structure only nearly has."""
    from .prototypes import load_prototype_library
    from .representation import decode

    if k < 1:
        return []
    initial = decode(crystal.matrix, crystal.atomic_numbers)
    return load_prototype_library().query(crystal.atomic_numbers, spacegroup, k=k,
                                          volume_per_atom=initial.volume / len(initial),
                                          other_formulas_only=other_formulas_only, reference=initial)


def relaxation_potential(potential="m3gnet"):
    """The shared loaded potential (:func:`~explorer.relax.shared_potential`), with a clear error that says how
    to do without one when there is none to load."""
    from .relax import shared_potential

    try:
        return shared_potential(potential)
    except ExplorerInputError as exc:
        raise ExplorerInputError(f"{exc} — or leave the candidates unrelaxed (relax_steps=0, "
                                 "--relax-steps 0)") from None


def relax_structures(structures: list, steps: int = RELAX_STEPS, fmax: float = RELAX_FMAX,
                     potential="m3gnet", formation: str = "none", callback=None) -> list[tuple]:
    """(structure, info) per input: relaxed (positions and cell) with the interatomic potential (M3GNet by
    default) in at most ``steps`` FIRE steps to ``fmax`` (eV/Å); info = {"potential", "status", "steps",
    "energy_per_atom" (eV/atom), "formation_energy_per_atom" (``formation`` "references" or "eform", else None),
    and "warning" / "error" where there is one}. A structure whose relaxation fails comes back unchanged (its
    status and error say why). ``callback(done, total)``: progress in FIRE steps; it may raise to cancel."""
    from .relax import relax

    check_relax_settings(steps, fmax)
    if not structures:
        return []
    loaded = relaxation_potential(potential)
    results = relax(structures, potential=loaded, fmax=fmax, steps=int(steps), formation=formation,
                    step_callback=callback)
    out = []
    for result, structure in zip(results, structures):
        energy = float(result.energy_per_atom) if math.isfinite(result.energy_per_atom) else None
        formation_energy = result.formation_energy_per_atom
        info = {"potential": loaded.name, "status": result.status, "steps": int(result.steps),
                "energy_per_atom": energy,
                "formation_energy_per_atom": float(formation_energy) if formation_energy is not None and
                math.isfinite(formation_energy) else None}
        if result.error:
            info["error"] = result.error
        if result.warning:
            info["warning"] = result.warning
        out.append((result.structure if result.structure is not None else structure, info))
    return out


def check_relax_settings(steps: int, fmax: float) -> None:
    """Clear errors for relaxation settings: steps >= 0, fmax > 0 eV/Å."""
    if int(steps) != steps or steps < 0:
        raise ExplorerInputError(f"relaxation steps must be a whole number >= 0, got {steps}")
    if not (math.isfinite(fmax) and fmax > 0):
        raise ExplorerInputError(f"relaxation fmax must be > 0 eV/Å, got {fmax}")


def modify(structure, spacegroup: int, energy_delta: float, model: str | None = None, n: int = 8,
           steps: int = 100, seed: int = 0, device: str = "auto", snap: bool = False, draws: int = 1,
           prototypes="auto", relax_steps: int = RELAX_STEPS, relax_fmax: float = RELAX_FMAX, potential="m3gnet",
           callback=None, formation: str = "references", relax_callback=None):
    """Candidates of the same composition as ``structure`` in ``spacegroup``, with a target formation-energy
    change ``energy_delta`` (eV/atom, negative = more stable).

    The first candidates are known structures of the requested space group with the same stoichiometry
    pattern, the structure's elements substituted in (:mod:`explorer.prototypes`), best first (ground-state
    templates first; ``energy_delta`` does not enter their choice); their ``model`` is "prototype" and
    ``extra["prototype"]`` says where each came from and whether it is the uploaded structure itself
    (``same_as_reference``). How many: ``prototypes`` "auto" = up to half of ``n`` when the data directory
    holds the structure files, True = the same but the files must be there, an int = at most that many,
    0 = none.

    The rest are sampled from the modification model (the regression model is deterministic: its samples start
    from jittered copies of the structure, see :class:`~explorer.generators.matrix.MatrixModifier`).
    ``draws > 1`` (sampling models): each sample is the best of that many by validity and the requested space
    group. ``callback(done, total)`` follows the sampler steps (it may raise to cancel).

    ``relax_steps > 0``: every candidate is then relaxed with ``potential`` (M3GNet; at most ``relax_steps``
    FIRE steps to ``relax_fmax`` eV/Å, see :func:`relax_structures`; ``extra["relaxation"]`` holds the
    potential, status, energy per atom and — ``formation`` "references" (default: elemental references relaxed
    with the same potential) or "eform", "none" for none — the formation energy per atom); 0 = as sampled.
    ``relax_callback(done, total)`` follows that relaxation in FIRE steps (it may raise to cancel)."""
    from .candidates import make_candidate
    from .generation import check_energy
    from .spacegroups import check_sites, check_spacegroup

    request = GenerationRequest(spacegroup=check_spacegroup(spacegroup), energy_delta=check_energy(energy_delta),
                                initial=structure)
    if int(n) < 1:
        raise ExplorerInputError(f"n must be >= 1, got {n}")
    check_relax_settings(relax_steps, relax_fmax)
    slots = prototype_slots(n, prototypes)
    crystal = check_initial_structure(structure)
    generator = modification_model(model)
    generator.check(request)
    check_sites(crystal.atomic_numbers, request.spacegroup)  # the primitive cell keeps its contents
    found = find_prototypes(crystal, request.spacegroup, slots)
    structures = [p.structure for p in found]
    count = int(n) - len(found)
    if count:
        structures += generator.sample_best([request] * count, draws, steps=int(steps), seed=int(seed),
                                            device=device, callback=callback)
    relaxed = (relax_structures(structures, int(relax_steps), relax_fmax, potential, formation, relax_callback)
               if relax_steps else [(s, None) for s in structures])
    candidates = []
    for index, (result, info) in enumerate(relaxed):
        prototype = found[index] if index < len(found) else None
        candidate = make_candidate(result, request.spacegroup, request.energy_delta, snap=snap, index=index,
                                   model="prototype" if prototype else generator.name,
                                   steps=0 if prototype else int(steps), seed=0 if prototype else int(seed))
        if prototype is not None:
            candidate.extra["prototype"] = prototype.origin()
        if info is not None:
            candidate.extra["relaxation"] = info
        candidates.append(candidate)
    return candidates


def evaluate_modification(csv_path, limit: int | None = None, model: str | None = None, steps: int = 100,
                          seed: int = 0, device: str = "auto", workers: int | None = None,
                          split: str | None = None, draws: int = 1, prototypes: bool = True,
                          relax_steps: int = RELAX_STEPS) -> dict:
    """Pairs from the polymorph groups inside a CSV (each non-lowest polymorph -> the lowest one of its cell
    contents); one structure per pair, StructureMatcher against the target.

    With ``prototypes`` (needs the data directory's structure files) the structure is the best prototype of
    the target's space group (:mod:`explorer.prototypes`; templates of the pair's own formula are never used,
    so the target cannot be looked up) and, for pairs without one, a model sample; without, always a model
    sample (the best of ``draws`` by validity and the requested space group). ``prototype_share``: the fraction of
    pairs answered by a prototype. ``relax_steps > 0`` (as :func:`modify` does by default): every structure is
    relaxed with M3GNet (at most that many FIRE steps, fmax 0.05 eV/Å) before matching."""
    check_relax_settings(relax_steps, RELAX_FMAX)
    if prototypes:
        require_prototype_library()
    from .data import process_rows, read_rows
    from .evaluation import match_metrics
    from .polymorphs import lowest_pairs, polymorph_groups
    from .representation import CrystalMatrix, decode

    started = time.time()
    rows = read_rows(csv_path)
    if split is not None:
        rows = [row for row in rows if row.get("split") == split]
    data = process_rows(rows, workers=workers)
    data = data.select(np.isfinite(data.energy))
    pairs = lowest_pairs(polymorph_groups(data))
    if limit is not None:
        pairs = pairs[:limit]
    if not len(pairs):
        raise ExplorerInputError(f"no polymorph pairs (same cell contents, >= 2 structures) in {csv_path}")
    generator = modification_model(model)
    species = [data.species[target][: data.n_sites[target]] for target in pairs[:, 1]]
    targets = [decode(data.matrix[target], z) for target, z in zip(pairs[:, 1], species)]
    generated = [None] * len(pairs)
    if prototypes:
        for k, (initial, target) in enumerate(pairs):
            crystal = CrystalMatrix(data.matrix[initial], species[k], int(data.spacegroup[initial]))
            found = find_prototypes(crystal, int(data.spacegroup[target]), 1, other_formulas_only=True)
            generated[k] = found[0].structure if found else None
    by_prototype = sum(s is not None for s in generated)
    remaining = [k for k, s in enumerate(generated) if s is None]
    if remaining:
        initial = initial_structures(rows, data, pairs[remaining, 0])
        requests = [GenerationRequest(spacegroup=int(data.spacegroup[target]), initial=structure,
                                      energy_delta=float(data.energy[target] - data.energy[start]))
                    for (start, target), structure in zip(pairs[remaining], initial)]
        samples = generator.sample_best(requests, draws, steps=steps, seed=seed, device=device)
        for k, structure in zip(remaining, samples):
            generated[k] = structure
    if relax_steps:
        generated = [structure for structure, _ in relax_structures(generated, relax_steps, RELAX_FMAX)]
    return {
        **match_metrics(generated, targets, workers),
        "seconds": round(time.time() - started, 1),
        "model": f"{generator.name}+prototypes" if prototypes else generator.name,
        "steps": steps,
        "split": split,
        "draws": draws,
        "prototype_share": round(by_prototype / len(pairs), 4),
        "relax_steps": relax_steps,
    }


def initial_structures(rows: list[dict], data, index) -> list:
    """The structures of ``data``'s rows ``index`` as read from ``rows`` (so that a model encodes exactly what
    the data pipeline encoded), found by their id; decoded from the arrays where an id is not unique."""
    from collections import Counter

    from .data import parse_cif
    from .representation import decode

    ids = [str(row.get("material_id") or row.get("id") or i) for i, row in enumerate(rows)]
    counts, position = Counter(ids), {name: i for i, name in enumerate(ids)}
    out = []
    for i in index:
        name = str(data.ids[i])
        if counts.get(name) == 1:
            out.append(parse_cif(rows[position[name]]["cif"]))
        else:
            out.append(decode(data.matrix[i], data.species[i][: data.n_sites[i]]))
    return out
