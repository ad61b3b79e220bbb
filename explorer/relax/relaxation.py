"""Structure relaxation with ASE FIRE on a FrechetCellFilter (positions and cell), as a generator of events.

``irelax(structures, ...)`` yields a :class:`RelaxStep` after every optimizer step of each structure being
relaxed (with a matgl potential up to ``batch_size`` structures are relaxed in lockstep with one batched
potential evaluation per step, see :mod:`explorer.relax.batched`; otherwise one after the other, see
:mod:`explorer.relax.single`), a :class:`ReferenceDone` for each elemental reference it had to relax first
(formation energies, :mod:`explorer.relax.formation`), and a :class:`RelaxDone` carrying the
:class:`RelaxResult` when a structure finishes. Closing the generator (``gen.close()``, or leaving a ``for``
loop over it) stops the work, like ASE's ``Optimizer.irun``; with ``workers > 1`` the worker processes are
terminated.

Every structure is isolated: unreadable input, unsupported elements, overlapping atoms, NaN/inf energies or
forces, an exploding or collapsing cell and errors raised by the potential give ``status="failed"`` with the
reason in ``error``; reaching the step limit gives ``status="unconverged"`` (the last structure is kept).
Nothing of that stops the batch.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator
from multiprocessing import get_context
from pathlib import Path

from ..errors import ExplorerInputError
from ..structure_io import as_structure
from .batched import DEFAULT_BATCH_SIZE, relax_batched, supports_batching
from .formation import FORMATION_MODES, formation_function
from .results import STATUS_FAILED, ReferenceDone, RelaxDone, RelaxResult, RelaxStep
from .single import relax_one, relax_steps


def _label(item, index: int) -> str:
    if isinstance(item, (str, os.PathLike)) and not (isinstance(item, str) and "\n" in item):
        return Path(item).name
    formula = getattr(getattr(item, "composition", None), "reduced_formula", None)
    return f"{index:03d}_{formula}" if formula else f"{index:03d}"


def _prepare(structures: Iterable, labels: list[str] | None):
    """(index, label, Structure or None, error) per input; unreadable input is kept as an error."""
    prepared = []
    for index, item in enumerate(structures):
        label = labels[index] if labels is not None else _label(item, index)
        try:
            prepared.append((index, label, as_structure(item), ""))
        except ExplorerInputError as exc:
            prepared.append((index, label, None, str(exc)))
    return prepared


def irelax(structures: Iterable, potential="m3gnet", fmax: float = 0.05, steps: int = 500, workers: int = 1,
           formation: str = "references", references=None, labels: list[str] | None = None,
           relax_cell: bool = True, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu"
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
    ``device``: where the batched relaxer evaluates the potential (``"auto"``: CUDA when present); a GPU needs
    the batched path (a matgl potential, ``batch_size > 1``, one process).
    """
    from ..checks import isolation_warning
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
    device = _relax_device(device, potential, batch_size, workers)
    loaded = [structure for _, _, structure, _ in prepared]
    formation_energy = yield from formation_function(formation, potential, references, loaded)
    total = len(prepared)
    done = 0
    for result in _relax_all(prepared, potential, fmax, steps, workers, relax_cell, batch_size, device):
        if isinstance(result, RelaxStep):
            yield result
            continue
        if result.structure is not None and result.status != STATUS_FAILED:
            result.warning = isolation_warning(result.structure)
            result.formation_energy_per_atom = formation_energy(result)  # may add a note on its references
        done += 1
        yield RelaxDone(result.index, result, done, total)


def _relax_device(device, potential, batch_size: int, workers: int) -> str:
    """The device the relaxation runs on (one-line error for a GPU outside the batched one-process path)."""
    from ..devices import resolve_device

    resolved = resolve_device(device)
    if resolved.type != "cpu" and not (batch_size > 1 and workers == 1 and supports_batching(potential)):
        if str(device) == "auto":
            return "cpu"
        raise ExplorerInputError("a GPU relaxes in the batched relaxer only: a matgl potential, --batch-size > 1 "
                                 "and --workers 1")
    return str(resolved)


def _relax_all(prepared, potential, fmax, steps, workers, relax_cell, batch_size=1, device="cpu"):
    """RelaxStep events and RelaxResults, in order (serial) or as they finish (batched, workers > 1)."""
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
        yield from relax_batched(pending, potential, fmax, steps, relax_cell, batch_size, device)
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
          relax_cell: bool = True, callback=None, batch_size: int = DEFAULT_BATCH_SIZE,
          device: str = "cpu", step_callback=None) -> list[RelaxResult]:
    """Relax structures (see :func:`irelax`) and return one :class:`RelaxResult` per input, in input order.
    ``callback(done, total)`` is called whenever a structure finishes; ``step_callback(done, total)`` after
    every optimizer step, in optimizer steps (total: ``steps`` per structure; a finished structure counts all
    of them). Either may raise to stop the relaxation."""
    structures = list(structures)
    results, taken = {}, {}
    total = len(structures) * int(steps)
    for event in irelax(structures, potential=potential, fmax=fmax, steps=steps, workers=workers,
                        formation=formation, references=references, labels=labels, relax_cell=relax_cell,
                        batch_size=batch_size, device=device):
        if isinstance(event, RelaxDone):
            results[event.index] = event.result
            taken[event.index] = int(steps)
            if callback is not None:
                callback(event.done, event.total)
        elif isinstance(event, RelaxStep):
            taken[event.index] = min(int(event.step), int(steps))
        else:
            continue
        if step_callback is not None:
            step_callback(sum(taken.values()), total)
    return [results[i] for i in sorted(results)]


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FORMATION_MODES",
    "ReferenceDone",
    "RelaxDone",
    "RelaxResult",
    "RelaxStep",
    "irelax",
    "relax",
]
