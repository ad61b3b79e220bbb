"""What :func:`explorer.generate` returns for a formula in a space group: the best candidates whatever their
source, each saying which.

1. **Known prototypes** of the requested space group with the formula's stoichiometry pattern, its elements
   substituted in (ion exchange, :mod:`explorer.prototypes`; train-split structures), best first — on held-out
   formulas the first one is the real structure far more often than any network sample;
   where the train split has fewer templates of the requested group than prototype slots, the free slots go to
   **distorted parent-group prototypes**: templates of a group of which the requested one is a subgroup
   (≤ 3 maximal steps), substituted and then distorted into the requested group
   (:meth:`~explorer.prototypes.PrototypeLibrary.query_subgroup`; a tilted perovskite from the cubic one),
   placed after the network samples;
2. **network samples** of the generator, each the best of ``draws`` (default: the generator's
   ``pipeline_draws``) by validity and space group, refined onto the requested group (spglib, tolerance ≤ 0.4 Å);
3. in a slot whose network sample does not have the requested group (or has atoms closer than 0.5 Å): the
   next prototype, else a **random symmetric crystal** of the group (pyxtal, :mod:`explorer.symmetric`), which
   has it by construction. A sample without the group is never returned as if it had it: only when neither
   replacement exists is it kept, last, with ``extra["off_group"] = True`` (``keep_off_group=True`` keeps all).

4. the prototypes are then **relaxed with M3GNet** (one batched run, at most 300 FIRE steps to 0.05 eV/Å, cell
   included) and refined onto the requested group: the substituted template keeps its geometry but not the
   new elements' bond lengths; relaxed, it is the real structure more often (val, first 300 rows ≤ 20 atoms,
   first template: strict 0.847 → 0.873, loose 0.890 → 0.897). A relaxed prototype that fails, or loses the
   group even after refinement, is kept as substituted; ``extra["relaxed"]`` says which.
5. where retrieval is short (fewer templates of the requested group than prototype slots), the generator
   draws :data:`SHORT_POOL` samples per free slot, they are relaxed in the same run, and they and the distorted
   parent-group prototypes are **ordered by relaxed energy** (eV/atom, lowest first; unrelaxed ones after them)
   and the lowest fill the slots: among network samples of a new structure type the lowest-energy one is the
   real structure more often than the first one drawn, and more so the more there are to choose from (val, rows
   without a template of their group; README "Generation pipeline").

``candidate.model`` is "prototype", the generator's name or "random-symmetric"; ``extra["prototype"]`` says
where a prototype came from.
"""

from __future__ import annotations

from .candidates import Candidate, make_candidate
from .errors import ExplorerInputError
from .prototypes import load_prototype_library, prototype_slots
from .representation import MIN_DISTANCE
from .symmetric import random_symmetric

PIPELINE_VERSION = 3  # what the benchmark's `explorer` records were made with; 2: distorted parent-group
#                       prototypes, network samples relaxed and ordered by energy where retrieval is short;
#                       3: SHORT_POOL samples per free slot there
SHORT_POOL = 2  # network samples drawn per slot where retrieval is short, the lowest relaxed energies kept (val)
PROTOTYPE_SHARE = 0.5  # of n, for prototypes="auto" (chosen on val; see README "Generation pipeline")
RANDOM = "random-symmetric"
RELAX_STEPS, RELAX_FMAX = 300, 0.05  # the prototypes' relaxation (chosen on val with the benchmark's peer)


def meets_request(candidate: Candidate) -> bool:
    """In the requested space group (when one was asked for) and no two atoms closer than 0.5 Å."""
    in_group = not candidate.spacegroup_requested or candidate.spacegroup_detected == candidate.spacegroup_requested
    return in_group and candidate.min_distance >= MIN_DISTANCE


def search(generator, requests: list, n: int, prototypes="auto", steps: int | None = None, seed: int = 0,
           device: str = "auto", draws: int | None = None, callback=None, other_formulas_only: bool = False,
           keep_off_group: bool = False, share: float = PROTOTYPE_SHARE, subgroups: bool = True,
           relax_prototypes="auto", relax_callback=None) -> list[list[Candidate]]:
    """``n`` candidates per request (see the module docstring), network samples of all requests in one batch.
    ``other_formulas_only``: no prototype of the request's own formula (evaluation: the target is one).
    ``subgroups``: prototype slots that the requested group's own templates leave free go to templates of
    parent groups distorted into it (see the module docstring).
    ``relax_prototypes``: "auto" (when the M3GNet weights are in the models directory), True (they must be) or
    False (returned as substituted, and no ordering by energy). ``callback(done, total)`` follows the sampler
    steps, ``relax_callback(done, total)`` the relaxation (FIRE steps); either may raise to cancel."""
    n = int(n)
    if n < 1:
        raise ExplorerInputError(f"n must be >= 1, got {n}")
    relax = _relax_wanted(relax_prototypes)
    draws = generator.pipeline_draws if draws is None else draws
    if int(draws) < 1:
        raise ExplorerInputError(f"draws must be >= 1, got {draws}")
    slots = prototype_slots(n, prototypes, share) if any(r.spacegroup for r in requests) else 0
    library = load_prototype_library() if slots else None
    found, lowered = [], []
    for request in requests:
        if library is None or not request.spacegroup:
            found.append([])
            lowered.append([])
            continue
        found.append(library.query(request.species, request.spacegroup, k=n,
                                   other_formulas_only=other_formulas_only))
        free = slots - len(found[-1]) if subgroups else 0
        lowered.append(library.query_subgroup(request.species, request.spacegroup, k=free, seed=int(seed),
                                              other_formulas_only=other_formulas_only) if free > 0 else [])
    first = [f[:slots] for f in found]
    wanted = [n - len(f) - len(extra) for f, extra in zip(first, lowered)]
    short = [relax and len(f) < slots for f in first]  # retrieval is short: a pool, ordered by relaxed energy
    drawn = [count * (SHORT_POOL if pool else 1) for count, pool in zip(wanted, short)]
    flat = [r for r, count in zip(requests, drawn) for _ in range(count)]
    structures = generator.sample_best(flat, draws, steps=steps, seed=int(seed), device=device,
                                       callback=callback) if flat else []
    steps_used = generator.steps_used(steps)
    out, blocks, position = [], [], 0
    for k, request in enumerate(requests):
        target = request.target
        prototypes_first = [_prototype_candidate(p, request, target) for p in first[k]]
        distorted = [_prototype_candidate(p, request, target) for p in lowered[k]]
        reserve = found[k][len(first[k]):]
        made = [make_candidate(s, request.spacegroup, target, snap=True, model=generator.name, steps=steps_used,
                               seed=int(seed)) for s in structures[position:position + drawn[k]]]
        position += drawn[k]
        kept = [keep_off_group or meets_request(c) for c in made]
        sampled = [c for c, ok in zip(made, kept) if ok]
        missing = max(0, wanted[k] - len(sampled))  # slots that the samples meeting the request leave empty
        replaced, off_group = [], []
        for j, (candidate, ok) in enumerate(zip(made, kept)):
            if ok or len(replaced) + len(off_group) == missing:
                continue
            substitute = None
            if reserve:
                substitute = _prototype_candidate(reserve.pop(0), request, target)
            else:
                structure = random_symmetric(request.species, request.spacegroup, seed=int(seed) * 1000 + j)
                if structure is not None:
                    substitute = make_candidate(structure, request.spacegroup, target, model=RANDOM,
                                                seed=int(seed) * 1000 + j)
                    substitute.extra["replaces"] = f"a {generator.name} sample in space group " \
                                                   f"{candidate.spacegroup_detected}"
            if substitute is not None and meets_request(substitute):
                replaced.append(substitute)
            else:
                candidate.extra["off_group"] = True
                off_group.append(candidate)
        out.append(prototypes_first + sampled + distorted + replaced + off_group)
        blocks.append((range(len(prototypes_first), len(prototypes_first) + len(sampled) + len(distorted)),
                       n - len(prototypes_first) - missing) if short[k] else (range(0), 0))
    if relax:
        _relax_candidates([(k, c) for k, chosen in enumerate(out) for i, c in enumerate(chosen)
                           if c.model == "prototype" or i in blocks[k][0]], requests, device, relax_callback)
        for chosen, (block, keep) in zip(out, blocks):
            chosen[block.start:block.stop] = sorted(chosen[block.start:block.stop], key=relaxed_energy)[:keep]
    for chosen in out:
        for index, candidate in enumerate(chosen):
            candidate.index = index
    return out


def relaxed_energy(candidate: Candidate) -> float:
    """M3GNet energy (eV/atom) of a candidate the pipeline relaxed and kept relaxed; +inf otherwise."""
    return float((candidate.extra or {}).get("relaxed", {}).get("energy_per_atom", float("inf")))


def _relax_wanted(relax_prototypes) -> bool:
    from .relax.potentials import DEFAULT_PES, m3gnet_available

    if isinstance(relax_prototypes, str):
        if relax_prototypes != "auto":
            raise ExplorerInputError(f"relax_prototypes is 'auto', True or False, got {relax_prototypes!r}")
        return m3gnet_available()
    if relax_prototypes and not m3gnet_available():
        raise ExplorerInputError(f"relaxing the prototypes needs the M3GNet weights ({DEFAULT_PES}) in the models "
                                 "directory (set EXPLORER_MODELS_DIR)")
    return bool(relax_prototypes)


def _relax_candidates(items: list, requests: list, device: str, callback=None) -> None:
    """Relax the candidates ``items`` ((request index, candidate)) in one batched M3GNet run and put each
    relaxed structure, refined onto its requested group, in its candidate — unless the relaxation failed or
    the group is lost, then the candidate stays as it was. ``extra["relaxed"]`` records which."""
    from .relax import relax
    from .relax.potentials import shared_potential
    from .relax.results import STATUS_FAILED

    if not items:
        return
    potential = shared_potential("m3gnet")
    results = relax([c.structure for _, c in items], potential=potential, fmax=RELAX_FMAX, steps=RELAX_STEPS,
                    formation="none", device=device, step_callback=callback)
    for (k, candidate), result in zip(items, results):
        info = {"potential": potential.name, "status": result.status, "steps": result.steps}
        if result.status == STATUS_FAILED or result.structure is None:
            info["kept"] = f"unrelaxed: {result.error or 'the relaxation failed'}"
        else:
            relaxed = make_candidate(result.structure, requests[k].spacegroup, requests[k].target, snap=True,
                                     model=candidate.model)
            if meets_request(relaxed):
                info["energy_per_atom"] = round(float(result.energy_per_atom), 5)
                candidate.structure, candidate.min_distance = relaxed.structure, relaxed.min_distance
                candidate.spacegroup_detected, candidate.valid = relaxed.spacegroup_detected, relaxed.valid
                candidate.invalid_reason = relaxed.invalid_reason
                candidate.extra["snapped"] = relaxed.extra["snapped"]
            else:
                info["kept"] = f"unrelaxed: relaxed, it has space group {relaxed.spacegroup_detected}"
        candidate.extra["relaxed"] = info


def _prototype_candidate(prototype, request, target) -> Candidate:
    candidate = make_candidate(prototype.structure, request.spacegroup, target, model="prototype")
    candidate.extra["prototype"] = prototype.origin()
    return candidate


__all__ = ["PIPELINE_VERSION", "PROTOTYPE_SHARE", "RELAX_FMAX", "RELAX_STEPS", "SHORT_POOL", "meets_request",
           "relaxed_energy", "search"]
