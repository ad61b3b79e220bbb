"""One benchmark for every registered generator and the peers a materials scientist would use instead, run on the
same rows with the same tolerances and the same candidate budget (``explorer benchmark csp|dng``).

**csp** (crystal structure prediction): for each row of a structure CSV (formula + space group given, + target
energy for the models that take one), every method returns up to ``k`` candidates. Each candidate is matched
against the row's structure (StructureMatcher strict 0.2/0.3/5 and loose 0.3/0.5/10), checked for validity (no
two atoms closer than 0.5 Å) and for the requested space group (spglib, symprec 0.1). A row of the table is one
method at one budget ``k``: ``match_rate`` / ``match_rate_loose`` of the candidate the method ranks first (for
``k = 1``: the one candidate a budget of one gives), ``match_rate_any`` / ``match_rate_loose_any`` of any of the
``k``, ``rmse`` of the loose matches, ``validity`` and ``spacegroup_rate`` over every candidate returned,
``seconds_per_structure`` (wall time of producing the candidates over their number). A row a method returns
nothing for (a refused condition, no template, no random placement) is a miss; ``rows_with_candidates`` counts
the others.

Methods (rows of the table):

- every registered generation model under its registry name (one sample per candidate; best-ranked = the best by
  :func:`~explorer.candidates.condition_score`, valid and in the requested group, the first on ties);
- ``explorer``: what ``explorer generate`` returns by default (:func:`explorer.search.search`: prototypes of
  other formulas first, network samples of the default model, random symmetric crystals in the slots whose
  sample misses the group);
- ``pyxtal-random``: random crystals of the formula in the requested group (pyxtal), in the order drawn;
  ``pyxtal-random-relaxed``: the same crystals relaxed with M3GNet and ranked by energy per atom (AIRSS-style);
- ``ion-exchange``: training-split structures with the same stoichiometry pattern and group, the row's elements
  substituted, ranked by elemental similarity (:mod:`explorer.prototypes`; never a template of the row's own
  formula); ``ion-exchange-relaxed``: the same, each relaxed with M3GNet, same ranking;
- ``test-structures``: the rows' own structures (the sanity row: 1.0 by construction).

The per-row results are kept as JSON lines (one file per method, under ``<out>/benchmark-<task>-<split>-<key>/``,
the key fixing the file, split, size limit, budget, seed and relaxation settings), a chunk of rows at a time, so
a stopped run resumes where it stopped and a larger ``limit`` only adds rows. Runs of the same command side by
side (two processes, or machines that share the output folder) split the work: a process claims a method's chunk
before it makes it (``<name>.claim-<first row>``, removed when the chunk is saved; the claim of a process that
died is taken over), skips what another one holds, and waits for those rows before it writes the table.
**dng** (de novo generation): the coverage metrics of :mod:`explorer.coverage` for every model that samples
without conditions (its samples saved a chunk at a time, so a stopped run resumes too), and the sanity row
``train-structures`` (training rows against the reference split).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .errors import ExplorerInputError
from .fileio import append_lines, atomic_write_text, file_sha256, read_json_lines

TASKS = ("csp", "dng")
PEERS = ("explorer", "pyxtal-random", "pyxtal-random-relaxed", "ion-exchange", "ion-exchange-relaxed",
         "test-structures")
DNG_SANITY = "train-structures"
CHUNK = 16  # rows per saved chunk (and per sampling batch of a model)
DNG_CHUNK = 16  # unconditional samples per saved chunk of the dng task
CLAIM_WAIT_S = 20.0  # how often a run that waits for another one's claimed chunks looks again
CLAIM_STALE_S = 12 * 3600  # a claim from another machine this old is taken over (its run must have died)
VERSION = 2  # of the records: 2 = the explorer pipeline relaxes its prototypes (search.py)
BOOKKEEPING = ("metrics", "note", "device", "sampling_note", "command", "data", "peer")  # not in a fingerprint
TABLE_FIELDS = ("model", "task", "k", "n", "rows_with_candidates", "match_rate", "match_rate_loose",
                "match_rate_any", "match_rate_loose_any", "rmse", "validity", "spacegroup_rate",
                "seconds_per_structure")


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class CspSettings:
    """What fixes the per-row results (and so the record directory): the file, split, size limit, the largest
    budget, the seed and the relaxation of the relaxed peers."""

    csv: str
    split: str | None = "test"
    max_atoms: int | None = 20
    k: int = 8
    seed: int = 0
    relax_steps: int = 300
    fmax: float = 0.05
    device: str = "auto"

    def key(self) -> str:
        text = json.dumps([file_sha256(self.csv), self.split, self.max_atoms, self.k, self.seed, self.relax_steps,
                           self.fmax, VERSION])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def record_dir(self, out: Path, task: str = "csp") -> Path:
        return Path(out) / f"benchmark-{task}-{self.split or 'all'}-{self.key()}"


@dataclass
class CspRows:
    """The benchmark rows: target structures and the full conditions of each."""

    targets: list
    species: list
    spacegroups: list
    energies: list

    def __len__(self) -> int:
        return len(self.targets)


def csp_rows(settings: CspSettings, limit: int | None = None) -> CspRows:
    from .evaluation import evaluation_conditions

    targets, species, spacegroups, energies, _ = evaluation_conditions(settings.csv, limit, settings.max_atoms,
                                                                       settings.split)
    if not targets:
        raise ExplorerInputError(f"no usable rows in {settings.csv}" +
                                 (f" (split {settings.split!r})" if settings.split else ""))
    return CspRows(targets, species, spacegroups, energies)


# ------------------------------------------------------------------------------------------------ per-row records


@dataclass
class RowRecord:
    """One method on one row: per candidate ``[strict, loose, rms, valid, in_group]`` in the method's order,
    ``first`` (the candidate a budget of one gives), ``best`` (the one it ranks first), the wall ``seconds`` this
    row cost and, when it returned nothing, why (``missing``)."""

    row: int
    candidates: list = field(default_factory=list)
    first: int = 0
    best: int = 0
    seconds: float = 0.0
    missing: str = ""

    def to_json(self) -> str:
        return json.dumps({"row": self.row, "candidates": self.candidates, "first": self.first, "best": self.best,
                           "seconds": round(self.seconds, 4), "missing": self.missing})


def read_records(path: Path) -> dict[int, RowRecord]:
    """{row: record} of a method's JSON-lines file (a line cut short by a stop is ignored)."""
    out = {}
    for line in read_json_lines(path):
        try:
            record = RowRecord(**line)
        except TypeError:
            continue
        out[record.row] = record
    return out


def method_fingerprint(name: str) -> str:
    """What a method's records were made with, beyond the run's settings and the records' VERSION: a registered
    model's weights (sha256) and sampling settings (its manifest entry but the bookkeeping), and for ``explorer``
    those of the default generation model it samples and the pipeline's version (``search.PIPELINE_VERSION``);
    "" for the other peers (their code is the VERSION)."""
    from .evaluation import DEFAULT_GIVEN
    from .generators import available_models, default_model, model_info

    model = default_model("generation", given=DEFAULT_GIVEN) if name == "explorer" else name
    if model not in available_models("generation"):
        return ""
    kept = {k: v for k, v in model_info(model).info.items() if k not in BOOKKEEPING}
    if name == "explorer":
        from .search import PIPELINE_VERSION

        kept["pipeline"] = PIPELINE_VERSION
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def current_records(folder: Path, name: str, suffix: str = ".jsonl") -> Path:
    """``<folder>/<name><suffix>``, the saved records of method ``name``, set aside as ``…<suffix>.stale`` when
    they were made with something else than what it is now (:func:`method_fingerprint`, kept in
    ``<name>.made-with``), so the method starts over. Records from before fingerprints (no file) are current."""
    path, made_with = folder / f"{name}{suffix}", folder / f"{name}.made-with"
    now = method_fingerprint(name)
    if made_with.is_file() and made_with.read_text().strip() != now and path.is_file():
        path.replace(path.with_name(path.name + ".stale"))
    atomic_write_text(made_with, now + "\n")
    return path


def method_records(folder: Path, name: str) -> dict[int, RowRecord]:
    """The current saved records of ``name`` (see :func:`current_records`)."""
    return read_records(current_records(folder, name))


def _score(structures, targets, spacegroups, workers: int | None) -> list[list]:
    """``[strict, loose, rms, valid, in_group]`` of each structure against its target; a structure lost on the way
    (None: a failed relaxation) is a miss that is neither valid nor in the group."""
    from .evaluation import match_all
    from .representation import MIN_DISTANCE, detect_spacegroup, min_interatomic_distance

    present = [i for i, s in enumerate(structures) if s is not None]
    matches = match_all([structures[i] for i in present], [targets[i] for i in present], workers)
    out = [[False, False, None, False, False]] * len(structures)
    for i, (strict, loose, rms) in zip(present, matches):
        s = structures[i]
        valid = len(s) < 2 or min_interatomic_distance(s) >= MIN_DISTANCE
        out[i] = [bool(strict), bool(loose), None if rms is None else round(float(rms), 5), bool(valid),
                  detect_spacegroup(s) == int(spacegroups[i])]
    return out


# ------------------------------------------------------------------------------------------------ methods


@dataclass
class Produced:
    """What one method returned for one row: candidate structures (its order), the index a budget of one gives,
    the index it ranks first, why there is nothing (``missing``), and the row's share of the wall time."""

    structures: list
    first: int = 0
    best: int = 0
    missing: str = ""
    seconds: float = 0.0


def _model_rows(name: str, rows: CspRows, index: list[int], k: int, settings: CspSettings) -> list[Produced]:
    from .candidates import condition_score
    from .evaluation import evaluation_requests
    from .generators import get_generator

    generator = get_generator(name, task="generation")
    requests = evaluation_requests([rows.species[i] for i in index], [rows.spacegroups[i] for i in index],
                                   [rows.energies[i] for i in index], generator)
    out, accepted = [], []
    for request in requests:
        try:
            generator.check(request)
        except ExplorerInputError as exc:
            out.append(Produced([], missing=f"refused: {exc}"))
            continue
        out.append(None)
        accepted.append(request)
    started = time.time()
    flat = generator.sample_structures([r for r in accepted for _ in range(k)], seed=settings.seed + index[0],
                                       device=settings.device, batch_size=64) if accepted else []
    seconds = (time.time() - started) / max(1, len(accepted))
    position = 0
    for j, produced in enumerate(out):
        if produced is not None:
            continue
        structures = flat[position * k : (position + 1) * k]
        position += 1
        spacegroup = rows.spacegroups[index[j]]
        scores = [condition_score(s, spacegroup) for s in structures]
        best = max(range(len(structures)), key=lambda i: (scores[i], -i))
        out[j] = Produced(structures, 0, best, seconds=seconds)
    return out


def _explorer_rows(rows: CspRows, index: list[int], k: int, settings: CspSettings) -> list[Produced]:
    from .evaluation import DEFAULT_GIVEN, evaluation_requests
    from .generators import default_model, get_generator
    from .search import search

    generator = get_generator(default_model("generation", given=DEFAULT_GIVEN), task="generation")
    requests = evaluation_requests([rows.species[i] for i in index], [rows.spacegroups[i] for i in index],
                                   [rows.energies[i] for i in index], generator)
    started = time.time()
    found = search(generator, requests, k, seed=settings.seed + index[0], device=settings.device,
                   other_formulas_only=True)
    seconds = (time.time() - started) / len(index)
    return [Produced([c.structure for c in candidates], seconds=seconds,
                     missing="" if candidates else "no candidate") for candidates in found]


def _random_rows(rows: CspRows, index: list[int], k: int, settings: CspSettings) -> list[Produced]:
    from .symmetric import random_symmetric

    out = []
    for i in index:
        started = time.time()
        drawn = [random_symmetric(rows.species[i], rows.spacegroups[i], seed=(settings.seed + i) * 100 + j)
                 for j in range(k)]
        structures = [s for s in drawn if s is not None]
        out.append(Produced(structures, seconds=time.time() - started,
                            missing="" if structures else "pyxtal placed no crystal of the formula in the group"))
    return out


def _ion_exchange_rows(rows: CspRows, index: list[int], k: int, settings: CspSettings) -> list[Produced]:
    from .prototypes import load_prototype_library, require_prototype_library

    require_prototype_library()
    library = load_prototype_library()
    out = []
    for i in index:
        started = time.time()
        found = library.query(rows.species[i], rows.spacegroups[i], k=k, other_formulas_only=True)
        out.append(Produced([p.structure for p in found], seconds=time.time() - started,
                            missing="" if found else "no template of the pattern in the group"))
    return out


def _relaxed(produced: list[Produced], settings: CspSettings, rank_by_energy: bool) -> list[Produced]:
    """The candidates of ``produced`` relaxed with M3GNet (one batched run), in the same order; best-ranked by
    energy per atom (``rank_by_energy``) or kept as ranked. A failed relaxation leaves no structure."""
    from .relax import relax
    from .relax.potentials import shared_potential
    from .relax.results import STATUS_FAILED

    flat = [s for p in produced for s in p.structures]
    potential = shared_potential("m3gnet")  # loaded once per process, outside the timing
    started = time.time()
    results = relax(flat, potential=potential, fmax=settings.fmax, steps=settings.relax_steps,
                    formation="none") if flat else []
    per_structure = (time.time() - started) / max(1, len(flat))
    out, position = [], 0
    for p in produced:
        mine = results[position : position + len(p.structures)]
        position += len(p.structures)
        structures = [None if r.status == STATUS_FAILED else r.structure for r in mine]
        energies = [r.energy_per_atom if r.status != STATUS_FAILED and math.isfinite(r.energy_per_atom)
                    else math.inf for r in mine]
        best = min(range(len(mine)), key=lambda i: (energies[i], i)) if rank_by_energy and mine else p.best
        out.append(Produced(structures, p.first, best, p.missing, p.seconds + per_structure * len(mine)))
    return out


def _produce(name: str, rows: CspRows, index: list[int], settings: CspSettings, shared: dict) -> list[Produced]:
    """Candidates of method ``name`` for the rows ``index``. ``shared`` keeps the unrelaxed peers' candidates of
    this chunk: the relaxed peers relax what their unrelaxed twins returned (computed here if not yet)."""
    k = settings.k
    if name == "test-structures":
        return [Produced([rows.targets[i]]) for i in index]
    if name == "explorer":
        return _explorer_rows(rows, index, k, settings)
    twins = {"pyxtal-random": _random_rows, "ion-exchange": _ion_exchange_rows}
    base = name.removesuffix("-relaxed")
    if base in twins:
        if base not in shared:
            shared[base] = twins[base](rows, index, k, settings)
        if name == base:
            return shared[base]
        return _relaxed(shared[base], settings, rank_by_energy=base == "pyxtal-random")
    return _model_rows(name, rows, index, k, settings)


# ------------------------------------------------------------------------------------------------ csp


def _load_outside_timing(names: list[str]) -> None:
    """Build or load what the methods share once (the prototype library, the networks), so that no chunk's timing
    holds a one-off cost."""
    from .generators import get_generator
    from .prototypes import load_prototype_library, require_prototype_library

    if {"explorer", "ion-exchange", "ion-exchange-relaxed"} & set(names):
        require_prototype_library()
        load_prototype_library()
    for name in names:
        if name not in PEERS:
            generator = get_generator(name, task="generation")
            getattr(generator, "loaded", None)  # families that load lazily: weights read now


def csp_methods(models: list[str] | None = None) -> list[str]:
    """The method names of a csp run: ``models`` as given (checked), else every registered generation model and
    every peer."""
    from .generators import available_models

    known = available_models("generation")
    if not models:
        return known + list(PEERS)
    unknown = [m for m in models if m not in known and m not in PEERS]
    if unknown:
        raise ExplorerInputError(f"unknown benchmark row(s) {', '.join(unknown)}; registered generation models: "
                                 f"{', '.join(known)}; peers: {', '.join(PEERS)}")
    return list(dict.fromkeys(models))


def run_csp(settings: CspSettings, out: str | Path, limit: int | None = None, models: list[str] | None = None,
            workers: int | None = None, callback=None) -> list[dict]:
    """Run (or resume) the csp benchmark of ``models`` on the first ``limit`` rows; the table rows (see
    :func:`csp_table`) for budgets 1 and ``settings.k``. ``callback(name, done, total)`` after each chunk."""
    if settings.k < 1:
        raise ExplorerInputError(f"k must be >= 1, got {settings.k}")
    if settings.relax_steps < 0 or not settings.fmax > 0:
        raise ExplorerInputError("relax steps must be >= 0 and fmax > 0")
    names = csp_methods(models)
    rows = csp_rows(settings, limit)
    folder = settings.record_dir(Path(out))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "settings.json", json.dumps({**settings.__dict__, "csv": Path(settings.csv).name,
                                                            "version": VERSION}, indent=1))
    records = {name: method_records(folder, name) for name in names}
    _load_outside_timing(names)
    chunks = [list(range(start, min(start + CHUNK, len(rows)))) for start in range(0, len(rows), CHUNK)]
    while True:
        held_elsewhere = False
        for c, index in enumerate(chunks):
            shared = {}
            for name in [name for name in names if any(i not in records[name] for i in index)]:
                claim = claim_chunk(folder, name, index[0])
                if claim is None:  # another run is making it
                    held_elsewhere = True
                    continue
                try:  # each method's rows are saved as soon as they are scored
                    records[name] = read_records(folder / f"{name}.jsonl")  # another run may have just saved it
                    if all(i in records[name] for i in index):
                        continue
                    lines = _chunk_records(name, rows, index, settings, shared, workers)
                    records[name].update((record.row, record) for record in lines)
                    append_lines(folder / f"{name}.jsonl", [record.to_json() for record in lines])
                finally:
                    claim.unlink(missing_ok=True)
                if callback is not None:
                    callback(name, c + 1, len(chunks))
        if not held_elsewhere:
            break
        time.sleep(CLAIM_WAIT_S)
        records = {name: read_records(folder / f"{name}.jsonl") for name in names}
    ks = sorted({1, settings.k})
    return [row for name in names for row in csp_table(name, [records[name][i] for i in range(len(rows))], ks)]


def _chunk_records(name: str, rows: CspRows, index: list[int], settings: CspSettings, shared: dict,
                   workers: int | None) -> list[RowRecord]:
    """The records of method ``name`` for the rows ``index``: its candidates, scored."""
    produced = _produce(name, rows, index, settings, shared)
    flat = [(j, s) for j, p in enumerate(produced) for s in p.structures]
    scores = _score([s for _, s in flat], [rows.targets[index[j]] for j, _ in flat],
                    [rows.spacegroups[index[j]] for j, _ in flat], workers)
    return [RowRecord(index[j], [score for (owner, _), score in zip(flat, scores) if owner == j], p.first, p.best,
                      round(p.seconds, 4), p.missing)  # as saved
            for j, p in enumerate(produced)]


def claim_chunk(folder: Path, name: str, first_row: int) -> Path | None:
    """Claim the chunk of method ``name`` that starts at ``first_row`` for this process: the claim file (remove it
    when the chunk is saved), or None while another live run holds it. A claim of a process of this machine that
    is gone, or one from another machine older than :data:`CLAIM_STALE_S`, is taken over."""
    path = folder / f"{name}.claim-{first_row}"
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not _claim_abandoned(path):
                return None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w") as claim:
            claim.write(f"{socket.gethostname()} {os.getpid()} {time.time():.0f}\n")
        return path
    return None


def _claim_abandoned(path: Path) -> bool:
    try:
        host, pid, since = path.read_text().split()
        pid, since = int(pid), float(since)
    except FileNotFoundError:  # released in the meantime
        return True
    except (OSError, ValueError):  # being written just now, or left half-written by a run that died at once
        try:
            return time.time() - path.stat().st_mtime > 60
        except FileNotFoundError:
            return True
    if host != socket.gethostname():
        return time.time() - since > CLAIM_STALE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def csp_table(name: str, records: list[RowRecord], ks) -> list[dict]:
    """Table rows of one method from its per-row records, one per budget in ``ks`` (1 and the run's ``k``): at
    ``k = 1`` the candidate a budget of one gives, at the run's ``k`` the best-ranked one and all of them."""
    out = []
    n = len(records)
    seconds = sum(r.seconds for r in records)
    produced = sum(len(r.candidates) for r in records)
    for k in ks:
        chosen = []  # (the candidate scored as the answer or None, the candidates within the budget)
        for record in records:
            if not record.candidates:
                chosen.append((None, []))
            elif k == 1:
                chosen.append((record.candidates[record.first], [record.candidates[record.first]]))
            else:
                chosen.append((record.candidates[record.best], record.candidates[:k]))
        every = [c for _, cs in chosen for c in cs]
        loose = [top for top, _ in chosen if top is not None and top[1]]
        rms = [top[2] for top in loose if top[2] is not None]
        out.append({
            "model": name, "task": "csp", "k": k, "n": n,
            "rows_with_candidates": sum(bool(cs) for _, cs in chosen),
            "match_rate": _rate(sum(bool(top and top[0]) for top, _ in chosen), n),
            "match_rate_loose": _rate(len(loose), n),
            "match_rate_any": _rate(sum(any(c[0] for c in cs) for _, cs in chosen), n),
            "match_rate_loose_any": _rate(sum(any(c[1] for c in cs) for _, cs in chosen), n),
            "rmse": round(sum(rms) / len(rms), 6) if rms else None,
            "validity": _rate(sum(c[3] for c in every), len(every)),
            "spacegroup_rate": _rate(sum(c[4] for c in every), len(every)),
            "seconds_per_structure": round(seconds / produced, 4) if produced else None,
        })
    return out


def _rate(count: int, total: int) -> float | None:
    """count / total to 6 decimals: the Markdown table's 3 are then rounded once (945/1156 is 0.817, not 0.8175 →
    0.818)."""
    return round(count / total, 6) if total else None


# ------------------------------------------------------------------------------------------------ dng


def dng_methods(csv, models: list[str] | None = None) -> list[str]:
    """Models that sample without conditions (a dataset-specific model only for its own data file), then the
    sanity row; or ``models`` as given (checked)."""
    from .generators import model_infos

    unconditional = [m.name for m in model_infos("generation") if not m.generator_class.required
                     and Path(m.info.get("data_file", Path(csv).name)).name == Path(csv).name]
    if not models:
        return unconditional + [DNG_SANITY]
    unknown = [m for m in models if m not in unconditional and m != DNG_SANITY]
    if unknown:
        raise ExplorerInputError(f"not a de novo row: {', '.join(unknown)} (models that sample without conditions "
                                 f"for this file: {', '.join(unconditional) or 'none'}; sanity row: {DNG_SANITY})")
    return list(dict.fromkeys(models))


def run_dng(csv, out: str | Path, split: str | None = "test", max_atoms: int | None = 20, n: int = 1000,
            limit: int | None = 1000, models: list[str] | None = None, seed: int = 0, device: str = "auto",
            struct_cutoff: float | None = None, comp_cutoff: float | None = None, workers: int | None = None,
            callback=None) -> list[dict]:
    """Coverage of ``n`` samples of every unconditional model (and ``n`` training structures) against the first
    ``limit`` rows of ``split``. A model's samples are made :data:`DNG_CHUNK` at a time and saved as they come
    (:func:`dng_samples`), so a stopped run resumes at its last chunk; ``callback(name, done, total)`` after
    each chunk (the sanity row: one)."""
    from .coverage import (
        COMP_CUTOFF,
        STRUCT_CUTOFF,
        coverage_metrics,
        evaluate_coverage,
        fingerprints,
        reference_fingerprints,
    )

    names = dng_methods(csv, models)
    struct_cutoff = STRUCT_CUTOFF if struct_cutoff is None else struct_cutoff
    comp_cutoff = COMP_CUTOFF if comp_cutoff is None else comp_cutoff
    key = hashlib.sha256(json.dumps([file_sha256(csv), split, max_atoms, n, limit, seed, struct_cutoff,
                                     comp_cutoff, VERSION]).encode()).hexdigest()[:12]
    folder = Path(out) / f"benchmark-dng-{split or 'all'}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    table = []
    for name in names:
        if name == DNG_SANITY:
            path = folder / f"{name}.json"
            if not path.is_file():
                atomic_write_text(path, json.dumps(evaluate_coverage(
                    csv, None, n=n, split=split, max_atoms=max_atoms, limit=limit, seed=seed, workers=workers,
                    struct_cutoff=struct_cutoff, comp_cutoff=comp_cutoff, training_structures=True)))
            metrics = json.loads(path.read_text())
            if callback is not None:
                callback(name, 1, 1)
        else:
            generated, seconds = dng_samples(name, n, folder, seed, device,
                                             None if callback is None else partial(callback, name))
            metrics = {**coverage_metrics(fingerprints(generated, workers),
                                          reference_fingerprints(csv, split, max_atoms, limit, workers),
                                          struct_cutoff, comp_cutoff), "sampling_seconds": seconds}
        table.append({"model": name, "task": "dng", "k": None, "n": metrics["n_generated"],
                      **{m: metrics.get(m) for m in ("validity", "cov_r", "cov_p", "fd_crystalnn", "emd_density",
                                                     "emd_elements")},
                      "seconds_per_structure": round(metrics["sampling_seconds"] / max(1, n), 4)})
    return table


def dng_samples(name: str, n: int, folder: Path, seed: int = 0, device: str = "auto", callback=None,
                **options) -> tuple[list, float]:
    """``n`` unconditional samples of model ``name`` and the seconds they took: made :data:`DNG_CHUNK` at a time
    (chunk ``c`` from the random stream ``seed + c``) and kept in ``<folder>/<name>.samples.jsonl`` (one chunk a
    line: its index, seconds and structures as CIF), so a stopped run resumes where it stopped; samples of
    another version of the model are set aside (:func:`current_records`). ``callback(done, total)`` after each
    chunk; ``options`` go to the model's ``sample_structures`` (the benchmark passes none: its defaults)."""
    from .generators import GenerationRequest, get_generator
    from .structure_io import parse_cif, structure_text

    path = current_records(folder, name, ".samples.jsonl")
    chunks = {}
    for chunk in read_json_lines(path):  # without the line a stop cut short
        try:
            chunks[int(chunk["chunk"])] = chunk
        except (ValueError, TypeError, KeyError):
            continue
    total = math.ceil(n / DNG_CHUNK)
    generator = None
    for c in range(total):
        size = min(DNG_CHUNK, n - c * DNG_CHUNK)
        if c not in chunks or len(chunks[c]["structures"]) != size:
            generator = generator or get_generator(name, task="generation")
            started = time.time()
            made = generator.sample_structures([GenerationRequest() for _ in range(size)], seed=seed + c,
                                               device=device, **options)
            chunks[c] = {"chunk": c, "seconds": round(time.time() - started, 2),
                         "structures": [structure_text(s, "cif") for s in made]}
            append_lines(path, [json.dumps(chunks[c])])
        if callback is not None:
            callback(c + 1, total)
    structures = [parse_cif(text) for c in range(total) for text in chunks[c]["structures"]]
    return structures, round(sum(chunks[c]["seconds"] for c in range(total)), 1)


# ------------------------------------------------------------------------------------------------ outputs


def markdown_table(table: list[dict]) -> str:
    """The table as Markdown (the columns that any of its rows has, in :data:`TABLE_FIELDS` order for csp)."""
    columns = [c for c in TABLE_FIELDS if any(c in row for row in table)]
    columns += [c for row in table for c in row if c not in columns]
    columns = list(dict.fromkeys(columns))

    def cell(value):
        if value is None:
            return "–"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in table]
    return "\n".join(lines) + "\n"


def plot_table(table: list[dict], path: str | Path, title: str = "") -> Path:
    """PNG of loose match rate (best-ranked candidate) against seconds per structure, one marker per row and
    budget (log time axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in table if r.get("match_rate_loose") is not None and r.get("seconds_per_structure")]
    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=120)
    for marker, k in zip("os^", sorted({r["k"] for r in points})):
        mine = [r for r in points if r["k"] == k]
        axes.scatter([r["seconds_per_structure"] for r in mine], [r["match_rate_loose"] for r in mine],
                     marker=marker, s=45,
                     label=f"k = {k}" + (" (best-ranked of k)" if k > 1 else " (one candidate)"))
        for r in mine:
            axes.annotate(r["model"], (r["seconds_per_structure"], r["match_rate_loose"]), fontsize=7,
                          xytext=(4, 3), textcoords="offset points")
    axes.set_xscale("log")
    axes.set_xlabel("seconds per structure (wall clock)")
    axes.set_ylabel("match rate (loose: 0.3 / 0.5 / 10°)")
    axes.set_ylim(-0.02, 1.05)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)


def write_outputs(table: list[dict], out: str | Path, task: str, split: str | None, meta: dict) -> list[Path]:
    """``benchmark_<task>_<split>.json`` (the table with how it was made), ``.md`` and, for csp, ``.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"benchmark_{task}_{split or 'all'}"
    paths = [atomic_write_text(stem.with_suffix(".json"), json.dumps({**meta, "table": table}, indent=1)),
             atomic_write_text(stem.with_suffix(".md"), markdown_table(table))]
    if task == "csp":
        paths.append(plot_table(table, stem.with_suffix(".png"),
                                f"{Path(meta.get('csv', '')).name} {split or ''}: {table[0]['n']} rows"
                                if table else ""))
    return paths


__all__ = ["CspSettings", "PEERS", "TASKS", "csp_methods", "csp_table", "dng_methods", "markdown_table",
           "plot_table", "run_csp", "run_dng", "write_outputs"]
