"""Screening (the paper's §7 pipeline): a grid of conditions (formulas × space groups × target formation
energies) → generated candidates → M3GNet pre-relaxation → energy above the convex hull → a ranked table.

::

    from explorer import ScreenConfig, screen
    result = screen(ScreenConfig(formulas=["TaWB6", "TaW2B5"], spacegroups="common",
                                 energies="-0.6:-0.4:0.05", model="cfm-uniform", out="run"))
    for candidate in result.best(5):
        print(candidate.formula, candidate.spacegroup_requested, candidate.e_above_hull)

``iscreen(config)`` does the same as a generator of progress events (like ASE's ``Optimizer.irun``); closing
it (or leaving a ``for`` loop over it) stops the work after nothing but the condition in progress is lost.

Output directory ``out``::

    screen.json              the settings and the grid of the last run
    conditions/<key>.json    one finished condition (written atomically the moment it is done)
    structures/<key>_<i>.cif relaxed candidates (``_unrelaxed.cif``: the generated structure of a failed
                             relaxation)
    ranked.csv               every candidate, ranked by energy above hull, then formation energy
    hull.csv, hull.html      the hull table and interactive plot (as ``explorer hull`` writes them)
    summary.json             the run summary (the CLI's JSON line)

Resuming: a condition whose ``conditions/<key>.json`` exists is not computed again, so rerunning after an
interruption (Ctrl-C, SIGKILL, a crash) continues where it stopped. The settings that change a condition's
result (model, n, steps, draws, seed, relax steps, fmax, potential, formation) must equal those in ``screen.json``;
otherwise :class:`ExplorerInputError` is raised (use a new ``out``). The grid (formulas, space groups,
energies) and the hull settings (reference, chemsys, data directory) may change between runs: new conditions
are added and the ranking covers exactly the conditions of the current grid.

Each condition is sampled with its own seed (from the run's seed and the condition key), so a condition's
candidates do not depend on the rest of the grid or on the order the conditions are run.
"""

from __future__ import annotations

import csv
import json
import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from monty.json import MSONable

from .distributed import parse_scheduler
from .errors import ExplorerInputError
from .fileio import atomic_write_text

SCREEN_VERSION = 1
FORMATION_MODES = ("references", "eform")
MAX_ENERGIES = 1000
RESULT_SETTINGS = ("model", "n", "steps", "draws", "seed", "relax_steps", "fmax", "potential", "formation")
CSV_COLUMNS = ("rank", "formula", "spacegroup_requested", "spacegroup_detected", "spacegroup_relaxed",
               "target_energy", "formation_energy_per_atom", "e_above_hull", "decomposition", "energy_per_atom",
               "relax_status", "relax_steps", "min_distance", "relaxed_min_distance", "valid", "file", "condition",
               "index", "error", "note")


# ----------------------------------------------------------------------------------------------- input


@dataclass
class ScreenConfig:
    """One screening run. ``formulas``: cell contents (``"TaWB6"`` = 8 atoms); ``spacegroups``: ``"common"``
    (the common space groups whose Wyckoff positions fit each formula), a comma list or a list of numbers;
    ``energies``: target formation energies in eV/atom, ``"start:stop:step"`` (stop included), a comma list
    or a list of numbers. ``n`` candidates per condition, sampled with ``steps`` steps; pre-relaxation with at
    most ``relax_steps`` FIRE steps to ``fmax`` (eV/Å); formation energies from elemental references relaxed
    with the same ``potential`` (``formation="references"``) or the M3GNet Eform model (``"eform"``); the hull
    of ``chemsys`` (default: every element of the formulas) from ``reference`` (``"mp"``: Materials Project
    entries in the data directory, ``"elements"``: the elements only, ``"ml"``: the system's MP/WBM structures
    relaxed with the same potential). ``keep_incompatible``: also run space groups whose Wyckoff positions
    cannot hold the formula (dropped by default). ``draws > 1``: sample that many structures per candidate and
    keep the one that best meets the conditions (valid, requested space group), fewer failed relaxations."""

    formulas: list[str] | str
    energies: list[float] | str
    spacegroups: list[int] | str = "common"
    out: str = "screen"
    n: int = 4
    model: str | None = None
    steps: int = 100
    seed: int = 0
    relax_steps: int = 100
    fmax: float = 0.1
    potential: str = "m3gnet"
    formation: str = "references"
    reference: str = "mp"
    chemsys: str | None = None
    data_dir: str | None = None
    device: str = "auto"
    keep_incompatible: bool = False
    draws: int = 1
    scheduler: str | None = None  # None/"none": in this process; "local:N" or "tcp://host:port": Dask


@dataclass(frozen=True)
class Condition:
    """One point of the grid: cell formula, space group, target formation energy (eV/atom), its seed."""

    formula: str
    spacegroup: int
    energy: float
    seed: int

    @property
    def key(self) -> str:
        """File-name key, e.g. ``TaWB6_sg191_E-0.4500``."""
        return f"{self.formula}_sg{self.spacegroup}_E{self.energy + 0.0:+.4f}"


def parse_energies(spec) -> list[float]:
    """Target energies (eV/atom) from ``"start:stop:step"`` (stop included within 1e-9), ``"a,b,c"``, a
    number or a list of numbers; duplicates removed, order kept."""
    from .generation import check_energy

    if isinstance(spec, str) and ":" in spec:
        values = _energy_range(spec)
    elif isinstance(spec, str):
        values = [part for part in spec.split(",") if part.strip()]
    elif isinstance(spec, (int, float)):
        values = [spec]
    else:
        values = list(spec)
    if not values:
        raise ExplorerInputError(f"no energies in {spec!r}; use e.g. -0.6:-0.4:0.05 or -0.5,-0.4")
    energies = [round(check_energy(v), 6) for v in values]
    return list(dict.fromkeys(energies))


def _energy_range(spec: str) -> list[float]:
    parts = spec.split(":")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise ExplorerInputError(f"energies {spec!r}: expected start:stop:step in eV/atom, "
                                 "e.g. -0.6:-0.4:0.05") from None
    if not all(math.isfinite(v) for v in (start, stop, step)) or step == 0:
        raise ExplorerInputError(f"energies {spec!r}: start, stop and a non-zero step must be finite numbers")
    if (stop - start) * step < 0:
        sign = "negative" if step > 0 else "positive"
        raise ExplorerInputError(f"energies {spec!r}: the step goes away from stop (use a {sign} step)")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_ENERGIES:
        raise ExplorerInputError(f"energies {spec!r}: {count} values, at most {MAX_ENERGIES}")
    return [round(start + i * step, 10) for i in range(count)]


def parse_spacegroups(spec) -> list[int] | None:
    """Space-group numbers from ``"191,187"`` or a list; ``None`` for ``"common"``."""
    from .spacegroups import check_spacegroup

    if isinstance(spec, str) and spec.strip().lower() == "common":
        return None
    parts = [p for p in spec.split(",") if p.strip()] if isinstance(spec, str) else list(spec)
    if not parts:
        raise ExplorerInputError(f"no space groups in {spec!r}; use 'common' or e.g. 191,187,12")
    return list(dict.fromkeys(check_spacegroup(p.strip() if isinstance(p, str) else p) for p in parts))


def cell_formula(formula: str) -> tuple[str, dict[str, int]]:
    """(canonical cell formula such as ``TaW2B5``, element -> count), in the order written."""
    from collections import Counter

    from .elements import symbols
    from .generation import parse_formula

    numbers = parse_formula(formula)
    counts = Counter(symbols()[z - 1] for z in numbers)
    order = _written_order(formula, counts)
    text = "".join(f"{el}{counts[el] if counts[el] != 1 else ''}" for el in order)
    return text, {el: counts[el] for el in order}


def _written_order(formula: str, counts) -> list[str]:
    import re

    seen = [s for s in re.findall(r"[A-Z][a-z]?", formula) if s in counts]
    return list(dict.fromkeys(seen + sorted(counts)))


def _condition_seed(seed: int, key: str) -> int:
    return zlib.crc32(f"{int(seed)}/{key}".encode()) % (2**31)


@dataclass
class ScreenPlan:
    """The validated grid: ``conditions`` to run, ``incompatible`` (formula, space group) pairs dropped,
    the hull's chemical system and the settings that fix each condition's result."""

    conditions: list[Condition]
    incompatible: list[tuple[str, int]]
    chemsys: tuple[str, ...]
    settings: dict


def plan(config: ScreenConfig) -> ScreenPlan:
    """Check every input (one-line :class:`ExplorerInputError`) and build the grid of conditions."""
    formulas = [config.formulas] if isinstance(config.formulas, str) else list(config.formulas)
    if not formulas:
        raise ExplorerInputError("no formula given")
    cells = dict(cell_formula(f) for f in formulas)
    energies = parse_energies(config.energies)
    requested = parse_spacegroups(config.spacegroups)
    settings = _settings(config)
    conditions, incompatible = [], []
    for formula, counts in cells.items():
        for number in _spacegroups_for(counts, requested):
            if requested is not None and not config.keep_incompatible and not _fits(counts, number):
                incompatible.append((formula, number))
                continue
            conditions += [_condition(formula, number, energy, settings["seed"]) for energy in energies]
    if not conditions:
        raise ExplorerInputError("no condition left: none of the space groups fits the formulas' site counts "
                                 "(see --keep-incompatible)")
    chemsys = _chemsys(config.chemsys, cells)
    _check_hull_reference(config, chemsys)
    return ScreenPlan(conditions, incompatible, chemsys, settings)


def _condition(formula: str, number: int, energy: float, seed: int) -> Condition:
    key = Condition(formula, number, energy, 0).key
    return Condition(formula, number, energy, _condition_seed(seed, key))


def _fits(counts: dict[str, int], number: int) -> bool:
    from .spacegroups import sites_compatible

    return sites_compatible(list(counts.values()), number)


def _spacegroups_for(counts: dict[str, int], requested: list[int] | None) -> list[int]:
    from .spacegroups import COMMON_SPACEGROUPS, compatible_spacegroups

    if requested is None:
        return compatible_spacegroups(list(counts.values()), COMMON_SPACEGROUPS)
    return requested


def _settings(config: ScreenConfig) -> dict:
    from .generators import available_models, default_model

    model = config.model or default_model()
    models = available_models("generation")
    if model not in models:
        raise ExplorerInputError(f"unknown generation model {model!r}; available: {', '.join(models)}")
    for name in ("n", "steps", "draws"):
        if int(getattr(config, name)) < 1:
            raise ExplorerInputError(f"{name} must be >= 1, got {getattr(config, name)}")
    if int(config.relax_steps) < 0:
        raise ExplorerInputError(f"relax steps must be >= 0, got {config.relax_steps}")
    if not float(config.fmax) > 0 or not math.isfinite(float(config.fmax)):
        raise ExplorerInputError(f"fmax must be > 0 eV/Å, got {config.fmax}")
    if config.formation not in FORMATION_MODES:
        raise ExplorerInputError(f"formation must be one of {', '.join(FORMATION_MODES)}, got {config.formation!r}")
    return {"model": model, "n": int(config.n), "steps": int(config.steps), "draws": int(config.draws),
            "seed": int(config.seed),
            "relax_steps": int(config.relax_steps), "fmax": float(config.fmax), "potential": str(config.potential),
            "formation": config.formation}


def _chemsys(override: str | None, cells: dict[str, dict[str, int]]) -> tuple[str, ...]:
    from .elements import parse_chemsys

    needed = list(dict.fromkeys(el for counts in cells.values() for el in counts))
    if override is None:
        return tuple(needed)
    chemsys = parse_chemsys(override)
    missing = [el for el in needed if el not in chemsys]
    if missing:
        raise ExplorerInputError(f"chemical system {'-'.join(chemsys)} lacks {', '.join(missing)} of the formulas")
    return chemsys


def _check_hull_reference(config: ScreenConfig, chemsys: tuple[str, ...]) -> None:
    """Fail before any work when the hull references cannot be built (e.g. no MP data for mode 'mp')."""
    from .relax import reference_entries
    from .relax.hull import reference_kind

    if reference_kind(config.reference) == "ml":
        if config.formation != "references":
            raise ExplorerInputError("reference 'ml' needs formation energies from the same potential's elemental "
                                     "references (formation='references')")
        return  # built at the end: it relaxes the MP/WBM structures of the system (cached on disk)
    try:
        reference_entries(chemsys, config.reference, config.data_dir)
    except ExplorerInputError as exc:
        raise ExplorerInputError(f"{exc}; or use the elemental references only: --reference elements") from None


# ----------------------------------------------------------------------------------------------- results


@dataclass
class ScreenCandidate(MSONable):
    """One candidate of a condition. Energies in eV/atom (``energy_per_atom``: the potential's total energy
    after pre-relaxation), distances in Å; ``min_distance``/``valid``/``spacegroup_detected`` describe the
    generated structure, ``relaxed_min_distance``/``spacegroup_relaxed`` the pre-relaxed one. ``file``: the
    CIF relative to the output directory. ``e_above_hull``/``decomposition``/``rank`` are filled when the run
    is ranked; ``e_above_hull`` is None for candidates without a formation energy (failed relaxations).
    MSONable (the structures as pymatgen dicts)."""

    condition: str
    index: int
    formula: str
    spacegroup_requested: int
    spacegroup_detected: int
    target_energy: float
    min_distance: float
    valid: bool
    relax_status: str
    relax_steps: int = 0
    energy_per_atom: float | None = None
    formation_energy_per_atom: float | None = None
    spacegroup_relaxed: int | None = None
    relaxed_min_distance: float | None = None
    error: str = ""
    file: str = ""
    e_above_hull: float | None = None
    note: str = ""  # e.g. an approximate or missing elemental reference behind the formation energy
    decomposition: str = ""
    rank: int | None = None
    structure: Any = field(default=None, repr=False)  # relaxed pymatgen Structure (None when failed)
    generated: Any = field(default=None, repr=False)  # the generated Structure

    @property
    def label(self) -> str:
        return f"{self.condition}_{self.index}"

    def summary(self) -> dict:
        """The ``ranked.csv`` row."""
        row = {name: getattr(self, name) for name in CSV_COLUMNS}
        for name in ("target_energy", "formation_energy_per_atom", "e_above_hull", "energy_per_atom",
                     "min_distance", "relaxed_min_distance"):
            row[name] = _rounded(row[name])
        return row


def _rounded(value, digits: int = 6):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


@dataclass
class ScreenResult(MSONable):
    """A finished screen: ``candidates`` ranked (best first), counts of ``conditions`` in the grid,
    conditions ``done`` in this call and ``skipped`` (found finished on disk), the output paths, the
    :class:`~explorer.relax.HullAnalysis` (``hull``) and the wall-clock ``seconds``. MSONable."""

    out: str
    chemsys: str
    reference: str
    conditions: int
    done: int
    skipped: int
    candidates: list[ScreenCandidate]
    incompatible: list[tuple[str, int]]
    csv: str
    html: str
    seconds: float
    hull: Any = field(default=None, repr=False)
    failed: list[str] = field(default_factory=list)  # conditions whose task raised (Dask); rerun to retry them

    def __post_init__(self):
        self.incompatible = [tuple(pair) for pair in self.incompatible]

    def best(self, k: int = 5) -> list[ScreenCandidate]:
        """The ``k`` best-ranked candidates that were placed on the hull."""
        return [c for c in self.candidates if c.e_above_hull is not None][:k]

    def summary(self, k: int = 5) -> dict:
        """JSON-ready summary (the CLI's ``--json`` line)."""
        statuses = [c.relax_status for c in self.candidates]
        columns = ("rank", "formula", "spacegroup_requested", "spacegroup_detected", "target_energy",
                   "formation_energy_per_atom", "e_above_hull", "relax_status", "file")
        return {"conditions": self.conditions, "candidates": len(self.candidates), "done": self.done,
                "skipped": self.skipped, "failed_conditions": self.failed,
                "incompatible": [f"{f} sg {n}" for f, n in self.incompatible],
                "relaxed": sum(s != "failed" for s in statuses), "failed": statuses.count("failed"),
                "on_hull": sum(c.e_above_hull is not None for c in self.candidates),
                "stable": sum(c.e_above_hull is not None and c.e_above_hull <= 1e-8 for c in self.candidates),
                "chemsys": self.chemsys, "reference": self.reference,
                "best": [{name: c.summary()[name] for name in columns} for c in self.best(k)],
                "seconds": round(self.seconds, 2), "out": self.out, "csv": self.csv, "html": self.html}


# ----------------------------------------------------------------------------------------------- events


@dataclass
class ScreenStarted:
    """Event: the grid holds ``total`` conditions; ``skipped`` of them were already done on disk."""

    total: int
    skipped: int
    pending: int
    incompatible: list[tuple[str, int]]
    out: str


@dataclass
class ConditionStarted:
    """Event: condition ``position`` (1-based) of the ``pending`` ones starts (generation, then relaxation)."""

    condition: Condition
    position: int
    pending: int


@dataclass
class ConditionDone:
    """Event: a condition is finished and saved; ``done`` of ``pending`` conditions are finished so far."""

    condition: Condition
    candidates: list[ScreenCandidate]
    done: int
    pending: int
    seconds: float


@dataclass
class ConditionFailed:
    """Event: a condition raised (on a Dask worker); ``error`` is its one-line reason. It is not saved, so a
    rerun tries it again; the run goes on with the other conditions."""

    condition: Condition
    error: str
    done: int
    pending: int


@dataclass
class ScreenFinished:
    """Event: every condition is done and the run is ranked."""

    result: ScreenResult


# ----------------------------------------------------------------------------------------------- storage


def _condition_path(out: Path, condition: Condition) -> Path:
    return out / "conditions" / f"{condition.key}.json"


def _read_state(out: Path) -> dict | None:
    path = out / "screen.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ExplorerInputError(f"{path} is not a screen state file; use a new output directory") from None


def _check_state(out: Path, state: dict | None, settings: dict) -> None:
    """Refuse to mix results made with other settings in one output directory."""
    if state is None:
        return
    old = state.get("settings", {})
    changed = [f"{k} {old.get(k)!r} -> {settings[k]!r}" for k in RESULT_SETTINGS if old.get(k) != settings[k]]
    if changed:
        raise ExplorerInputError(f"{out} holds a screen with other settings ({'; '.join(changed)}); rerun with "
                                 "the same settings to resume, or use a new --out")


def _write_state(out: Path, config: ScreenConfig, screen_plan: ScreenPlan) -> None:
    grid = {"formulas": sorted({c.formula for c in screen_plan.conditions}),
            "spacegroups": config.spacegroups if isinstance(config.spacegroups, str) else list(config.spacegroups),
            "energies": config.energies if isinstance(config.energies, str) else list(config.energies),
            "conditions": len(screen_plan.conditions)}
    hull = {"reference": config.reference, "chemsys": "-".join(screen_plan.chemsys), "data_dir": config.data_dir}
    state = {"version": SCREEN_VERSION, "settings": screen_plan.settings, "grid": grid, "hull": hull,
             "config": asdict(config)}
    atomic_write_text(out / "screen.json", json.dumps(state, indent=1, default=str))


def load_condition(out: Path, condition: Condition, settings: dict) -> list[ScreenCandidate] | None:
    """The saved candidates of a finished condition, or None when it is not (validly) saved."""
    path = _condition_path(out, condition)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("version") != SCREEN_VERSION or data.get("settings") != settings:
            return None
        return [ScreenCandidate.from_dict(item) for item in data["candidates"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: computed again


def save_condition(out: Path, condition: Condition, settings: dict, candidates: list[ScreenCandidate],
                   seconds: float) -> None:
    """CIFs first, then the condition's JSON (its presence marks the condition as done)."""
    for candidate in candidates:
        _write_cif(out, candidate)
    data = {"version": SCREEN_VERSION, "condition": asdict(condition), "key": condition.key, "settings": settings,
            "seconds": round(seconds, 3), "candidates": [c.as_dict() for c in candidates]}
    atomic_write_text(_condition_path(out, condition), json.dumps(data))


def _write_cif(out: Path, candidate: ScreenCandidate) -> None:
    structure = candidate.structure if candidate.structure is not None else candidate.generated
    path = out / candidate.file
    if structure is not None and not path.is_file():
        atomic_write_text(path, structure.to(fmt="cif"))


# ----------------------------------------------------------------------------------------------- running


def iscreen(config: ScreenConfig, potential=None, references=None) -> Iterator:
    """Run (or resume) a screen, yielding :class:`ScreenStarted`, per condition :class:`ConditionStarted`,
    the relaxation's :class:`~explorer.relax.RelaxStep` events and :class:`ConditionDone`, the elemental
    references as :class:`~explorer.relax.ReferenceDone`, and finally :class:`ScreenFinished`.

    ``potential``: a loaded :class:`~explorer.relax.Potential` (default: load ``config.potential`` when there
    is work to do); ``references``: an :class:`~explorer.relax.ElementalReferences` to use."""
    start = time.perf_counter()
    screen_plan = plan(config)
    out = Path(config.out)
    state = _read_state(out)
    _check_state(out, state, screen_plan.settings)
    out.mkdir(parents=True, exist_ok=True)
    _write_state(out, config, screen_plan)
    saved = {c: load_condition(out, c, screen_plan.settings) for c in screen_plan.conditions}
    pending = [c for c in screen_plan.conditions if saved[c] is None]
    yield ScreenStarted(len(screen_plan.conditions), len(screen_plan.conditions) - len(pending), len(pending),
                        screen_plan.incompatible, str(out))
    if pending:
        potential, references = yield from _prepare_relaxation(config, screen_plan, potential, references)
    if pending and parse_scheduler(config.scheduler).distributed:
        failed = yield from _run_distributed(config, screen_plan.settings, pending, saved, out, references)
    else:
        failed = []
        for position, condition in enumerate(pending, 1):
            yield ConditionStarted(condition, position, len(pending))
            began = time.perf_counter()
            candidates = yield from _run_condition(config, screen_plan.settings, condition, potential, references)
            save_condition(out, condition, screen_plan.settings, candidates, time.perf_counter() - began)
            saved[condition] = candidates
            yield ConditionDone(condition, candidates, position, len(pending), time.perf_counter() - began)
    saved = {condition: candidates for condition, candidates in saved.items() if candidates is not None}
    for candidates in saved.values():
        for candidate in candidates:
            _write_cif(out, candidate)  # restores CIFs deleted since
    result = _rank(config, screen_plan, saved, len(pending) - len(failed), start, failed)
    yield ScreenFinished(result)


def _run_distributed(config: ScreenConfig, settings: dict, pending: list, saved: dict, out: Path, references):
    """Generator: every pending condition as one Dask task (ConditionStarted when submitted, ConditionDone or
    ConditionFailed as they complete, each finished one saved at once); returns the failed condition keys."""
    from distributed import as_completed

    from .distributed import RETRIES, dask_client

    failed = []
    spec = references.to_spec() if references is not None else None
    with dask_client(config.scheduler) as client:
        futures = []
        for position, condition in enumerate(pending, 1):
            futures.append(client.submit(screen_condition_task, config, settings, condition, spec, retries=RETRIES,
                                         pure=False, key=f"screen-{condition.key}-{position}"))
            yield ConditionStarted(condition, position, len(pending))
        done = 0
        for future in as_completed(futures):
            done += 1
            try:
                condition, candidates, seconds = future.result()
            except Exception as exc:  # the task raised on its worker: recorded, the run goes on
                condition = pending[futures.index(future)]
                failed.append(condition.key)
                reason = str(exc).splitlines()[0] if str(exc) else ""
                yield ConditionFailed(condition, f"{type(exc).__name__}: {reason}", done, len(pending))
                continue
            save_condition(out, condition, settings, candidates, seconds)
            saved[condition] = candidates
            yield ConditionDone(condition, candidates, done, len(pending), seconds)
    return failed


def _prepare_relaxation(config: ScreenConfig, screen_plan: ScreenPlan, potential, references):
    """Generator: load the potential and make sure every element has a reference (ReferenceDone events);
    returns (potential, references)."""
    from .relax import ElementalReferences, ReferenceDone, load_potential

    potential = load_potential(potential if potential is not None else config.potential)
    if config.formation != "references":
        return potential, None
    if references is None:
        references = ElementalReferences(potential, data=config.data_dir)
    elements = sorted({el for c in screen_plan.conditions for el in cell_formula(c.formula)[1]})
    for element in elements:
        entry = references.get(element)  # None: no structure of it relaxes; its candidates then say so
        if entry is not None:
            yield ReferenceDone(element, entry["energy_per_atom"], entry["source"])
    return potential, references


def _run_condition(config: ScreenConfig, settings: dict, condition: Condition, potential, references):
    """Generator: generate and pre-relax one condition's candidates (RelaxStep events); returns them."""
    from .generation import generate
    from .relax import RelaxDone, RelaxStep, irelax

    generated = generate(condition.formula, condition.spacegroup, condition.energy, n=settings["n"],
                         model=settings["model"], steps=settings["steps"], seed=condition.seed,
                         draws=settings["draws"], device=config.device, check_sites=False)  # plan() checked
    labels = [f"{condition.key}_{c.index}" for c in generated]
    results = {}
    for event in irelax([c.structure for c in generated], potential=potential, fmax=settings["fmax"],
                        steps=settings["relax_steps"], formation=settings["formation"], references=references,
                        labels=labels, device=config.device):
        if isinstance(event, RelaxDone):
            results[event.index] = event.result
        elif isinstance(event, RelaxStep):
            yield event
    return [_candidate(condition, c, results[i]) for i, c in enumerate(generated)]


def screen_condition_task(config: ScreenConfig, settings: dict, condition: Condition, references: dict | None):
    """One condition on a Dask worker: (the condition, its candidates, seconds). ``references``: the main
    process's elemental references (:meth:`~explorer.relax.ElementalReferences.to_spec`), so every worker uses the
    same ones and relaxes none again; the potential and references are cached per worker process."""
    from .distributed import shipped_references
    from .relax.potentials import shared_potential

    began = time.perf_counter()
    potential = shared_potential(config.potential)
    if references is not None:
        references = shipped_references(potential, references)
    events = _run_condition(config, settings, condition, potential, references)
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return condition, stop.value, time.perf_counter() - began


def _candidate(condition: Condition, generated, result) -> ScreenCandidate:
    """ScreenCandidate from a generated Candidate and its RelaxResult."""
    from .representation import detect_spacegroup, min_interatomic_distance

    relaxed = result.structure if result.status != "failed" else None
    name = f"{condition.key}_{generated.index}" + ("" if relaxed is not None else "_unrelaxed")
    return ScreenCandidate(
        condition=condition.key, index=generated.index, formula=condition.formula,
        spacegroup_requested=condition.spacegroup, spacegroup_detected=generated.spacegroup_detected,
        target_energy=condition.energy, min_distance=generated.min_distance, valid=generated.valid,
        relax_status=result.status, relax_steps=result.steps, energy_per_atom=_rounded(result.energy_per_atom),
        formation_energy_per_atom=_rounded(result.formation_energy_per_atom),
        spacegroup_relaxed=detect_spacegroup(relaxed) if relaxed is not None else None,
        relaxed_min_distance=_rounded(min_interatomic_distance(relaxed)) if relaxed is not None else None,
        error=result.error, note=result.warning, file=f"structures/{name}.cif",
        structure=relaxed, generated=generated.structure)


# ----------------------------------------------------------------------------------------------- ranking


def _rank(config: ScreenConfig, screen_plan: ScreenPlan, saved: dict, done: int, start: float,
          failed: list[str] | None = None) -> ScreenResult:
    """Place every candidate with a formation energy on the hull, rank, write ranked.csv, hull.csv/html."""
    from .relax import hull_analysis, save_hull

    out = Path(config.out)
    candidates = [c for condition in screen_plan.conditions for c in saved.get(condition, [])]
    placed = [c for c in candidates if c.formation_energy_per_atom is not None and c.structure is not None]
    extra = {"potential": config.potential} if config.reference == "ml" else {}  # the candidates' potential
    analysis = hull_analysis([(c.label, c.structure.composition, c.formation_energy_per_atom) for c in placed],
                             "-".join(screen_plan.chemsys), reference=config.reference, data=config.data_dir,
                             **extra)
    for candidate, row in zip(placed, analysis.candidates):
        candidate.e_above_hull = _rounded(row.e_above_hull)
        candidate.decomposition = row.decomposition_text()
    ranked = sorted(candidates, key=_rank_key)
    for rank, candidate in enumerate(ranked, 1):
        candidate.rank = rank
    paths = save_hull(analysis, out)
    _write_ranked(out / "ranked.csv", ranked)
    result = ScreenResult(out=str(out), chemsys="-".join(screen_plan.chemsys), reference=config.reference,
                          conditions=len(screen_plan.conditions), done=done,
                          skipped=len(screen_plan.conditions) - done - len(failed or []), candidates=ranked,
                          incompatible=screen_plan.incompatible, csv=str(out / "ranked.csv"), html=paths["html"],
                          seconds=time.perf_counter() - start, hull=analysis, failed=list(failed or []))
    atomic_write_text(out / "summary.json", json.dumps(result.summary(), indent=1))
    return result


def _rank_key(candidate: ScreenCandidate) -> tuple:
    """Placed candidates by energy above hull, then formation energy; the others after them."""
    if candidate.e_above_hull is None:
        return (1, 0.0, 0.0, candidate.condition, candidate.index)
    return (0, candidate.e_above_hull, candidate.formation_energy_per_atom, candidate.condition, candidate.index)


def _write_ranked(path: Path, ranked: list[ScreenCandidate]) -> None:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    writer.writerows(c.summary() for c in ranked)
    atomic_write_text(path, buffer.getvalue())


def screen(config: ScreenConfig, potential=None, references=None, callback=None) -> ScreenResult:
    """Run (or resume) a screen to the end and return its :class:`ScreenResult`. ``callback(event)`` is
    called with every event of :func:`iscreen`."""
    for event in iscreen(config, potential=potential, references=references):
        if callback is not None:
            callback(event)
        if isinstance(event, ScreenFinished):
            return event.result
    raise AssertionError("iscreen ended without ScreenFinished")


__all__ = [
    "Condition",
    "ConditionDone",
    "ConditionFailed",
    "ConditionStarted",
    "ScreenCandidate",
    "ScreenConfig",
    "ScreenFinished",
    "ScreenPlan",
    "ScreenResult",
    "ScreenStarted",
    "cell_formula",
    "iscreen",
    "load_condition",
    "parse_energies",
    "parse_spacegroups",
    "plan",
    "save_condition",
    "screen",
]
