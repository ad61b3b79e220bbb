"""Evaluation of generation models against reference structures (paper §3.4).

One sample per CSV row, conditioned on the row's composition (its primitive cell), space group (the
``spacegroup`` column, else spglib at symprec 0.1) and ``formation_energy_per_atom``. Each sample is
compared with the row's structure by pymatgen's StructureMatcher at the paper's tolerances
(ltol 0.2, stol 0.3, angle_tol 5) and at DiffCSP's looser ones (0.3, 0.5, 10).
"""

from __future__ import annotations

import os
import time
import warnings
from itertools import accumulate
from multiprocessing import get_context

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from .data import read_structure_rows
from .errors import ExplorerInputError
from .representation import (
    LOOSE,
    MAX_SITES,
    MIN_DISTANCE,
    STRICT,
    detect_spacegroup,
    min_interatomic_distance,
)

# the conditions of an evaluation row that choose the default model: what a user types in `explorer generate`
# (the row's energy goes to every model that takes one)
DEFAULT_GIVEN = frozenset({"formula", "spacegroup"})


def match_pair(pair) -> tuple[bool, bool, float | None]:
    """(strict match, loose match, normalised RMS of the loose match or None) for (generated, target)."""
    generated, target = (Structure.from_dict(d) for d in pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            strict = bool(StructureMatcher(**STRICT).fit(generated, target))
            rms = StructureMatcher(**LOOSE).get_rms_dist(generated, target)
        except Exception:
            return False, False, None
    return strict, rms is not None, None if rms is None else float(rms[0])


def match_all(generated: list[Structure], targets: list[Structure], workers: int | str | None = None) -> list[tuple]:
    """Match pairs on all cores (``workers`` processes), or on Dask when ``workers`` is a scheduler spec
    (``"local:N"``, ``"tcp://host:8786"``; see :mod:`explorer.distributed`)."""
    pairs = [(g.as_dict(), t.as_dict()) for g, t in zip(generated, targets)]
    if isinstance(workers, str):
        from .distributed import map_in_order

        return map_in_order(workers, match_pair, pairs)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(pairs) < 8:
        return [match_pair(p) for p in pairs]
    with get_context("fork").Pool(workers) as pool:
        return pool.map(match_pair, pairs, chunksize=4)


def match_metrics(generated: list[Structure], targets: list[Structure], workers: int | None = None) -> dict:
    """n, match_rate (strict), match_rate_loose, rmse (mean normalised RMS of loose matches) and validity
    (no two atoms closer than 0.5 Å) of generated structures against their targets."""
    return summarize_matches(match_all(generated, targets, workers), generated)


def summarize_matches(matches: list[tuple], generated: list[Structure]) -> dict:
    """The metrics of :func:`match_metrics` from the :func:`match_all` results of ``generated``."""
    n = len(matches)
    rms = [m[2] for m in matches if m[2] is not None]
    valid = [min_interatomic_distance(s) >= MIN_DISTANCE for s in generated]
    return {
        "n": n,
        "match_rate": round(sum(m[0] for m in matches) / n, 4),
        "match_rate_loose": round(sum(m[1] for m in matches) / n, 4),
        "rmse": round(sum(rms) / len(rms), 4) if rms else None,
        "validity": round(sum(valid) / n, 4),
    }


def evaluation_conditions(csv_path, limit: int | None = None, max_atoms: int | None = None,
                          split: str | None = None):
    """(targets, species, space groups, energies, skipped) of the first ``limit`` usable rows of a CSV with
    ``cif`` and formation energies (:func:`~explorer.data.read_structure_rows`: a finite energy, at most
    ``max_atoms`` and ``MAX_SITES`` atoms as read; only rows whose ``split`` column equals ``split`` when
    given); ``skipped``: the rows read whose CIF is malformed."""
    rows = read_structure_rows(csv_path, split, min(max_atoms or MAX_SITES, MAX_SITES), limit, with_energy=True)
    return ([r.structure for r in rows], [r.species for r in rows], [r.spacegroup for r in rows],
            [r.energy for r in rows], rows.malformed)


def evaluation_requests(species, spacegroups, energies, generator=None) -> list:
    """One :class:`~explorer.generators.GenerationRequest` per evaluation row; with ``generator``, only the
    conditions it takes (a model without an energy or space-group condition gets no target energy or group; its
    samples are still scored against the row's group)."""
    from .generators import GenerationRequest

    takes_energy = generator is None or "energy" in generator.conditions
    takes_spacegroup = generator is None or "spacegroup" in generator.conditions
    return [GenerationRequest(species=tuple(int(z) for z in zs), spacegroup=int(sg) if takes_spacegroup else None,
                              energy=float(e) if takes_energy else None)
            for zs, sg, e in zip(species, spacegroups, energies)]


def spacegroup_rate(structures: list[Structure], spacegroups) -> float:
    """Share of ``structures`` in which spglib (symprec 0.1) finds the requested space group."""
    hits = [detect_spacegroup(s) == int(sg) for s, sg in zip(structures, spacegroups)]
    return round(sum(hits) / len(hits), 4) if hits else 0.0


def evaluate_generation(csv_path, limit: int | None = None, max_atoms: int | None = None, model: str | None = None,
                        steps: int | None = None, seed: int = 0, device: str = "auto", workers: int | None = None,
                        batch_size: int = 64, split: str | None = None, snap: bool = False, draws: int | None = None,
                        pipeline: bool = False, n: int = 8, prototypes="auto",
                        no_prototype_rows: bool = False) -> dict:
    """Match rates of one sample per row of any registered generation model; returns the JSON-ready metrics
    dict, with ``spacegroup_rate`` (share of samples with the row's space group). ``draws > 1`` keeps, per
    row, the best of that many samples by :func:`~explorer.candidates.condition_score` (validity and the
    requested space group; the row's structure is never looked at).

    ``pipeline=True`` evaluates what :func:`explorer.generate` returns by default (``n`` candidates per row:
    prototypes of the row's group from *other* formulas, network samples, random symmetric crystals; see
    :mod:`explorer.search`): the match rates are those of the first candidate, ``match_rate_loose_any`` /
    ``match_rate_any`` those of any of the ``n``, ``spacegroup_rate`` and ``validity`` are over all candidates,
    ``sources`` counts the candidates per source and ``first_sources`` the first ones. ``no_prototype_rows``:
    only the rows for which the train split has no prototype of the requested group (new structure types;
    ``n`` of the ``rows_read`` rows)."""
    from .candidates import snap_to_spacegroup
    from .generators import default_model, get_generator

    started = time.time()
    targets, species, spacegroups, energies, skipped = evaluation_conditions(csv_path, limit, max_atoms, split)
    if not targets:
        raise ExplorerInputError(f"no usable rows in {csv_path}")
    generator = get_generator(model or default_model("generation", given=DEFAULT_GIVEN), task="generation")
    requests = evaluation_requests(species, spacegroups, energies, generator)
    for request in requests[:1]:
        generator.check(request)
    rows_read = len(targets)
    if no_prototype_rows:
        keep = rows_without_prototype(requests)
        targets, requests = [targets[k] for k in keep], [requests[k] for k in keep]
        spacegroups = [spacegroups[k] for k in keep]
        if not targets:
            raise ExplorerInputError("every row has a prototype of its space group in the train split")
    common = {"model": generator.name, "steps": generator.steps_used(steps), "seed": seed, "skipped_rows": skipped,
              "split": split, "rows_read": rows_read, "no_prototype_rows": no_prototype_rows}
    if pipeline:
        return {**evaluate_pipeline(generator, requests, targets, n, prototypes, steps, seed, device, draws,
                                    workers), "seconds": round(time.time() - started, 1), **common}
    draws = 1 if draws is None else draws
    generated = generator.sample_best(requests, draws, steps=steps, seed=seed, device=device, batch_size=batch_size)
    if snap:
        generated = [snap_to_spacegroup(s, sg)[0] for s, sg in zip(generated, spacegroups)]
    sampled = time.time()
    return {
        **match_metrics(generated, targets, workers),
        "spacegroup_rate": spacegroup_rate(generated, spacegroups),
        "seconds": round(time.time() - started, 1),
        "sampling_seconds": round(sampled - started, 1),
        "snap": snap,
        "draws": draws,
        **common,
    }


def rows_without_prototype(requests) -> list[int]:
    """Indices of the requests for which the train split holds no prototype of the requested space group with
    the stoichiometry pattern, from another formula."""
    from .prototypes import load_prototype_library, require_prototype_library

    require_prototype_library()
    library = load_prototype_library()
    return [k for k, r in enumerate(requests)
            if not library.query(r.species, r.spacegroup, k=1, other_formulas_only=True)]


def evaluate_pipeline(generator, requests, targets, n: int, prototypes, steps, seed, device, draws,
                      workers) -> dict:
    """The metrics of :func:`evaluate_generation` with ``pipeline=True``."""
    from collections import Counter

    from .search import meets_request, search

    started = time.time()
    draws = generator.pipeline_draws if draws is None else draws
    found = search(generator, requests, n, prototypes=prototypes, steps=steps, seed=seed, device=device,
                   draws=draws, other_formulas_only=True)
    sampled = time.time()
    flat = [(k, c) for k, candidates in enumerate(found) for c in candidates]
    matches = match_all([c.structure for _, c in flat], [targets[k] for k, _ in flat], workers)
    starts = list(accumulate((len(candidates) for candidates in found[:-1]), initial=0))  # each row's first
    first = summarize_matches([matches[p] for p in starts], [flat[p][1].structure for p in starts])
    strict_any, loose_any = set(), set()
    for (k, _), (strict, loose, _) in zip(flat, matches):
        if strict:
            strict_any.add(k)
        if loose:
            loose_any.add(k)
    every = [c for _, c in flat]
    return {
        **first,
        "match_rate_any": round(len(strict_any) / len(found), 4),
        "match_rate_loose_any": round(len(loose_any) / len(found), 4),
        "spacegroup_rate": round(sum(c.spacegroup_detected == c.spacegroup_requested for c in every) / len(every), 4),
        "validity": round(sum(c.min_distance >= MIN_DISTANCE for c in every) / len(every), 4),
        "meets_request": round(sum(meets_request(c) for c in every) / len(every), 4),
        "sources": dict(Counter(c.model for c in every)),
        "first_sources": dict(Counter(c[0].model for c in found)),
        "pipeline": True,
        "n_candidates": n,
        "draws": draws,
        "prototypes": prototypes,
        "sampling_seconds": round(sampled - started, 1),
    }
