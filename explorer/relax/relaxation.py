"""Structure relaxation with ASE FIRE on a FrechetCellFilter (positions and cell), as a generator of events.

``irelax(structures, ...)`` yields a :class:`RelaxStep` after every optimizer step of each structure being
relaxed (with a matgl potential up to ``batch_size`` structures are relaxed in lockstep with one batched
potential evaluation per step, see :mod:`explorer.relax.batched`; otherwise one after the other), a
:class:`ReferenceDone` for each elemental reference it had to relax first (formation energies), and a
:class:`RelaxDone` carrying the :class:`RelaxResult` when a structure finishes. Closing the generator
(``gen.close()``, or leaving a ``for`` loop over it) stops the work, like ASE's ``Optimizer.irun``; with
``workers > 1`` the worker processes are terminated.

Every structure is isolated: unreadable input, unsupported elements, overlapping atoms, NaN/inf energies or
forces, an exploding or collapsing cell and errors raised by the potential give ``status="failed"`` with the
reason in ``error``; reaching the step limit gives ``status="unconverged"`` (the last structure is kept).
Nothing of that stops the batch.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExplorerInputError

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_UNCONVERGED = "unconverged"

MIN_DISTANCE = 0.5  # Å; closer atoms count as overlapping
MAX_VOLUME_RATIO = 5.0  # the cell may grow or shrink by at most this factor during a relaxation
FORMATION_MODES = ("references", "eform", "none")
DEFAULT_BATCH_SIZE = 32  # structures relaxed in lockstep (matgl potentials); 1 = one after the other


@dataclass
class RelaxResult:
    """Outcome of one structure. Energies in eV/atom; ``trajectory`` = energy per atom after each step
    (the first value is the starting structure). ``structure`` is the relaxed structure (the last one reached
    when unconverged; ``None`` when failed)."""

    index: int
    label: str
    status: str
    energy_per_atom: float = math.nan
    formation_energy_per_atom: float | None = None
    steps: int = 0
    structure: Any = None
    trajectory: list[float] = field(default_factory=list)
    fmax: float = math.nan
    error: str = ""
    seconds: float = 0.0

    @property
    def converged(self) -> bool:
        return self.status == STATUS_OK

    def summary(self) -> dict:
        """JSON-ready row: label, status, energies, steps, lattice lengths (Å) and volume (Å³)."""
        lattice = self.structure.lattice if self.structure is not None else None
        row = {
            "file": self.label,
            "status": self.status,
            "energy_per_atom": _finite_or_none(self.energy_per_atom),
            "formation_energy_per_atom": _finite_or_none(self.formation_energy_per_atom),
            "steps": self.steps,
            "a": round(lattice.a, 5) if lattice else None,
            "b": round(lattice.b, 5) if lattice else None,
            "c": round(lattice.c, 5) if lattice else None,
            "volume": round(lattice.volume, 4) if lattice else None,
        }
        if self.error:
            row["error"] = self.error
        return row


@dataclass
class RelaxStep:
    """Event: structure ``index`` finished optimizer step ``step`` (0 = starting point)."""

    index: int
    label: str
    step: int
    energy_per_atom: float
    fmax: float


@dataclass
class RelaxDone:
    """Event: structure ``index`` is finished; ``done`` of ``total`` structures are finished so far."""

    index: int
    result: RelaxResult
    done: int
    total: int


@dataclass
class ReferenceDone:
    """Event: the elemental reference of ``element`` is known (relaxed now, or read from the cache)."""

    element: str
    energy_per_atom: float
    source: str


def _finite_or_none(value):
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def load_structure(item) -> Any:
    """pymatgen Structure from a Structure, ASE Atoms, CIF text or a structure file path."""
    from pymatgen.core import Structure

    if isinstance(item, Structure):
        return item.copy()
    if type(item).__name__ == "Atoms":
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(item)
    if isinstance(item, str) and "\n" in item:
        from ..data import parse_cif

        return parse_cif(item)
    path = Path(item)
    if not path.is_file():
        raise ExplorerInputError(f"file not found: {path}")
    if path.suffix.lower() == ".cif":
        from ..data import parse_cif

        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise ExplorerInputError(f"cannot read {path}: {exc}") from None
        return parse_cif(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Structure.from_file(path)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ExplorerInputError(f"cannot read {path}: {reason}") from None


def _label(item, index: int) -> str:
    if isinstance(item, (str, os.PathLike)) and not (isinstance(item, str) and "\n" in item):
        return Path(item).name
    formula = getattr(getattr(item, "composition", None), "reduced_formula", None)
    return f"{index:03d}_{formula}" if formula else f"{index:03d}"


def _min_distance(atoms) -> float:
    """Shortest interatomic distance (Å; periodic images included) below MIN_DISTANCE, else inf."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    positions = np.ascontiguousarray(atoms.positions, dtype=float)
    cell = np.ascontiguousarray(atoms.cell.array, dtype=float)
    # pymatgen's C neighbour search: about 20x faster than ASE's neighbor_list (checked after every step)
    source, target, images, distances = find_points_in_spheres(
        positions, positions, r=MIN_DISTANCE, pbc=np.array([1, 1, 1], dtype=np.int64), lattice=cell, tol=1e-8)
    others = distances[(source != target) | np.any(images != 0, axis=1)]
    return float(others.min()) if len(others) else math.inf


def check_structure(structure, potential=None) -> str:
    """Reason why a structure cannot be relaxed ("" when it can)."""
    if len(structure) == 0:
        return "no atoms"
    if not structure.is_ordered:
        return "disordered structure (partial occupancies)"
    if potential is not None:
        missing = potential.unsupported_elements(e.symbol for e in structure.composition)
        if missing:
            return f"elements not supported by {potential.name}: {', '.join(missing)}"
    volume = structure.lattice.volume
    if not math.isfinite(volume) or volume < 1e-3:
        return "degenerate cell"
    from pymatgen.io.ase import AseAtomsAdaptor

    shortest = _min_distance(AseAtomsAdaptor.get_atoms(structure))
    if shortest < MIN_DISTANCE:
        return f"overlapping atoms ({shortest:.2f} Å apart)"
    return ""


def relax_steps(potential, structure, index: int = 0, label: str = "", fmax: float = 0.05, steps: int = 500,
                relax_cell: bool = True, calculator=None):
    """Generator relaxing one structure: yields :class:`RelaxStep` events and *returns* its RelaxResult
    (``result = yield from relax_steps(...)``). Failures are turned into a failed result, never raised.

    ``calculator``: an ASE calculator to use instead of ``potential.calculator()`` (``potential`` may then be
    None; it is only asked which elements it supports)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    start = time.perf_counter()
    result = RelaxResult(index=index, label=label, status=STATUS_FAILED)

    def finish(status: str, error: str = "") -> RelaxResult:
        result.status, result.error = status, error
        result.seconds = round(time.perf_counter() - start, 3)
        return result

    problem = check_structure(structure, potential)
    if problem:
        return finish(STATUS_FAILED, problem)
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator if calculator is not None else potential.calculator()
    n_atoms = len(atoms)
    volume0 = atoms.get_volume()
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    optimizer = FIRE(target, logfile=None)
    converged = False
    iterator = optimizer.irun(fmax=fmax, steps=steps)
    while True:
        try:
            with single_threaded_blas(), warnings.catch_warnings():
                # scipy's logm inside the Frechet cell filter is noisy about tiny inaccuracies
                warnings.filterwarnings("ignore", message="logm result may be inaccurate")
                converged = next(iterator)
                energy = atoms.get_potential_energy() / n_atoms
                forces = target.get_forces()
                problem = _check_state(atoms, energy, forces, volume0)
        except StopIteration:
            break
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return finish(STATUS_FAILED, f"potential error: {reason}")
        result.steps = optimizer.nsteps
        if problem:
            return finish(STATUS_FAILED, problem)
        largest = float(np.sqrt((forces**2).sum(axis=1).max())) if len(forces) else 0.0
        result.energy_per_atom, result.fmax = energy, largest
        result.trajectory.append(energy)
        yield RelaxStep(index, label, optimizer.nsteps, energy, largest)
    result.structure = AseAtomsAdaptor.get_structure(atoms.copy())  # the copy drops the calculator
    if converged:
        return finish(STATUS_OK)
    return finish(STATUS_UNCONVERGED, f"fmax {result.fmax:.3f} eV/Å > {fmax} after {steps} steps")


_BLAS_CONTROLLER = None


def single_threaded_blas():
    """Context manager limiting numpy/scipy BLAS to one thread. The cell filter evaluates several 6x6 matrix
    functions per step; multi-threaded OpenBLAS makes those up to 100x slower on busy cores. Entered per step
    only (never across a ``yield``), so the caller's setting is back whenever the generator is suspended."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        import scipy.linalg  # noqa: F401  (load scipy's BLAS before scanning the loaded libraries)
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def relax_one(potential, structure, index: int = 0, label: str = "", fmax: float = 0.05, steps: int = 500,
              relax_cell: bool = True, calculator=None) -> RelaxResult:
    """Relax one structure to the end (no events) and return its result."""
    generator = relax_steps(potential, structure, index, label, fmax, steps, relax_cell, calculator)
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def _check_state(atoms, energy: float, forces, volume0: float) -> str:
    if not math.isfinite(energy):
        return "energy is not finite"
    if not np.all(np.isfinite(forces)):
        return "forces are not finite"
    ratio = atoms.get_volume() / volume0
    if not math.isfinite(ratio) or ratio > MAX_VOLUME_RATIO:
        return f"cell volume exploded ({ratio:.1f}x the start)"
    if ratio < 1.0 / MAX_VOLUME_RATIO:
        return f"cell volume collapsed ({ratio:.2f}x the start)"
    shortest = _min_distance(atoms)
    if shortest < MIN_DISTANCE:
        return f"atoms collapsed onto each other ({shortest:.2f} Å apart)"
    return ""


# ----------------------------------------------------------------------------------------------- batch


def _prepare(structures: Iterable, labels: list[str] | None):
    """(index, label, Structure or None, error) per input; unreadable input is kept as an error."""
    prepared = []
    for index, item in enumerate(structures):
        label = labels[index] if labels is not None else _label(item, index)
        try:
            prepared.append((index, label, load_structure(item), ""))
        except ExplorerInputError as exc:
            prepared.append((index, label, None, str(exc)))
    return prepared


def irelax(structures: Iterable, potential="m3gnet", fmax: float = 0.05, steps: int = 500, workers: int = 1,
           formation: str = "references", references=None, labels: list[str] | None = None,
           relax_cell: bool = True, batch_size: int = DEFAULT_BATCH_SIZE
           ) -> Iterator[RelaxStep | RelaxDone | ReferenceDone]:
    """Relax structures, yielding progress events.

    With a matgl potential and ``batch_size > 1`` (the default) up to ``batch_size`` structures are relaxed
    in lockstep, one batched potential evaluation per optimizer step (:mod:`explorer.relax.batched`); their
    :class:`RelaxStep` events interleave and :class:`RelaxDone` events come as structures finish. Otherwise
    (CHGNet, or ``batch_size=1``) the structures are relaxed one after the other. ``workers > 1`` spreads
    the structures over that many processes (each relaxing its share batched, when batching applies).

    ``structures``: pymatgen Structures, ASE Atoms, CIF texts or file paths. ``potential``: a loaded
    :class:`~explorer.relax.potentials.Potential` or anything :func:`load_potential` accepts.
    ``formation``: ``"references"`` (elemental references relaxed with the same potential, cached on disk),
    ``"eform"`` (the M3GNet Eform model on the relaxed structure) or ``"none"``. ``references``: an
    :class:`~explorer.relax.references.ElementalReferences` to use instead of the default one.
    With ``workers > 1`` only :class:`RelaxDone` (and :class:`ReferenceDone`) events are yielded.
    """
    from .potentials import load_potential

    if fmax <= 0 or not math.isfinite(fmax):
        raise ExplorerInputError(f"fmax must be > 0 eV/Å, got {fmax}")
    if steps < 0:
        raise ExplorerInputError(f"steps must be >= 0, got {steps}")
    if workers < 1:
        raise ExplorerInputError(f"workers must be >= 1, got {workers}")
    if batch_size < 1:
        raise ExplorerInputError(f"batch_size must be >= 1, got {batch_size}")
    if formation not in FORMATION_MODES:
        raise ExplorerInputError(f"formation must be one of {', '.join(FORMATION_MODES)}, got {formation!r}")
    prepared = _prepare(structures, labels)
    potential = load_potential(potential)
    formation_energy = yield from _formation_function(formation, potential, references, prepared)
    total = len(prepared)
    done = 0
    for result in _relax_all(prepared, potential, fmax, steps, workers, relax_cell, batch_size):
        if isinstance(result, RelaxStep):
            yield result
            continue
        if result.structure is not None and result.status != STATUS_FAILED:
            result.formation_energy_per_atom = formation_energy(result)
        done += 1
        yield RelaxDone(result.index, result, done, total)


def _formation_function(mode: str, potential, references, prepared):
    """Generator: sets up formation energies (yielding ReferenceDone events) and returns a function of a
    RelaxResult."""
    if mode == "none":
        return lambda result: None
    if mode == "eform":
        from .potentials import load_formation_model

        model = load_formation_model()
        return lambda result: _none_if_nan(model.predict(result.structure))
    from .references import ElementalReferences

    refs = references if references is not None else ElementalReferences(potential)
    elements = sorted({e.symbol for _, _, s, _ in prepared if s is not None for e in s.composition})
    for element in elements:
        if potential.unsupported_elements([element]):
            continue
        entry = refs.get(element)
        if entry is not None:
            yield ReferenceDone(element, entry["energy_per_atom"], entry["source"])
    return lambda result: refs.formation_energy_per_atom(result.structure.composition, result.energy_per_atom)


def _none_if_nan(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _relax_all(prepared, potential, fmax, steps, workers, relax_cell, batch_size=1):
    """RelaxStep events and RelaxResults, in order (serial) or as they finish (batched, workers > 1)."""
    from .batched import relax_batched, supports_batching

    pending = [(i, label, s) for i, label, s, error in prepared if s is not None]
    for index, label, _, error in prepared:
        if error:
            yield RelaxResult(index=index, label=label, status=STATUS_FAILED, error=error)
    batched = batch_size > 1 and supports_batching(potential)
    if workers > 1 and len(pending) > 1:
        workers = min(workers, len(pending))
        if batched:
            yield from _relax_parallel_batched(pending, potential, fmax, steps, workers, relax_cell, batch_size)
        else:
            yield from _relax_parallel(pending, potential, fmax, steps, workers, relax_cell)
        return
    if batched:
        yield from relax_batched(pending, potential, fmax, steps, relax_cell, batch_size)
        return
    for index, label, structure in pending:
        result = yield from relax_steps(potential, structure, index, label, fmax, steps, relax_cell)
        yield result


_WORKER_POTENTIAL = None


def _init_worker(spec, threads: int) -> None:
    global _WORKER_POTENTIAL
    import torch

    from .potentials import load_potential

    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _WORKER_POTENTIAL = load_potential(spec)


def _relax_job(job) -> RelaxResult:
    index, label, structure, fmax, steps, relax_cell = job
    return relax_one(_WORKER_POTENTIAL, structure, index, label, fmax, steps, relax_cell)


def _relax_batch_job(job) -> list[RelaxResult]:
    from .batched import relax_batched

    pending, fmax, steps, relax_cell, batch_size = job
    events = relax_batched(pending, _WORKER_POTENTIAL, fmax, steps, relax_cell, batch_size)
    return [event for event in events if isinstance(event, RelaxResult)]


def _worker_pool(potential, workers: int):
    # One torch thread per worker (small graphs gain nothing from more, and oversubscribed cores slow torch
    # down by orders of magnitude). spawn, not fork: a forked child inherits torch's thread pools in an
    # undefined state.
    return get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(potential.spec, 1))


def _relax_parallel(pending, potential, fmax, steps, workers, relax_cell):
    jobs = [(index, label, structure, fmax, steps, relax_cell) for index, label, structure in pending]
    pool = _worker_pool(potential, workers)
    try:
        yield from pool.imap_unordered(_relax_job, jobs)
    finally:
        pool.terminate()
        pool.join()


def _relax_parallel_batched(pending, potential, fmax, steps, workers, relax_cell, batch_size):
    """Chunks of at most ``batch_size`` structures (about equal shares per worker), each relaxed batched."""
    size = min(batch_size, -(-len(pending) // workers))
    jobs = [(pending[i:i + size], fmax, steps, relax_cell, batch_size) for i in range(0, len(pending), size)]
    pool = _worker_pool(potential, workers)
    try:
        for results in pool.imap_unordered(_relax_batch_job, jobs):
            yield from results
    finally:
        pool.terminate()
        pool.join()


def relax(structures: Iterable, potential="m3gnet", fmax: float = 0.05, steps: int = 500, workers: int = 1,
          formation: str = "references", references=None, labels: list[str] | None = None,
          relax_cell: bool = True, callback=None, batch_size: int = DEFAULT_BATCH_SIZE) -> list[RelaxResult]:
    """Relax structures (see :func:`irelax`) and return one :class:`RelaxResult` per input, in input order.
    ``callback(done, total)`` is called whenever a structure finishes."""
    results = {}
    for event in irelax(structures, potential=potential, fmax=fmax, steps=steps, workers=workers,
                        formation=formation, references=references, labels=labels, relax_cell=relax_cell,
                        batch_size=batch_size):
        if isinstance(event, RelaxDone):
            results[event.index] = event.result
            if callback is not None:
                callback(event.done, event.total)
    return [results[i] for i in sorted(results)]


__all__ = [
    "ReferenceDone",
    "RelaxDone",
    "RelaxResult",
    "RelaxStep",
    "check_structure",
    "irelax",
    "load_structure",
    "relax",
    "relax_one",
    "relax_steps",
]
