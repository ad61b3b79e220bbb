"""Running explorer's long work on Dask distributed: a LocalCluster started and stopped by the command, or an
existing scheduler (``tcp://host:8786``, started with ``dask scheduler`` / ``dask worker`` or dask-jobqueue).

``--scheduler`` takes ``none`` (in-process, the default), ``local:N`` (N worker processes, one thread each) or
a scheduler address. Work goes out in chunks that keep the batched relaxer batched (a screening condition, a
batch of structures); results come back with ``as_completed``. A worker process loads the potential, the
elemental references and the generator once (per-process caches: :func:`explorer.relax.shared_potential`,
the registry's generator cache) and keeps them for every later task. A worker lost in the middle of a task
(killed, out of memory) has its task rescheduled on another worker by the scheduler (and the nanny restarts the
worker); a task that raises is tried once more, then reported, for that chunk alone.
"""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ExplorerInputError

RETRIES = 1  # a task that raises is tried once more (a passing fault); a lost worker's tasks the scheduler reschedules
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


@dataclass(frozen=True)
class Scheduler:
    """A parsed ``--scheduler``: ``kind`` is "none", "local" (``workers`` processes) or "address"."""

    kind: str
    workers: int = 0
    address: str = ""

    @property
    def distributed(self) -> bool:
        return self.kind != "none"


def parse_scheduler(spec: str | None) -> Scheduler:
    """``None``/"none" -> in-process; "local:N" -> a LocalCluster of N workers; "tcp://host:port" -> that
    scheduler (one-line error for anything else)."""
    text = (spec or "none").strip()
    if text == "none":
        return Scheduler("none")
    if text.startswith("local"):
        _, _, count = text.partition(":")
        try:
            workers = int(count)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ExplorerInputError(f"--scheduler local:N needs N >= 1 worker processes, got {spec!r}")
        return Scheduler("local", workers=workers)
    if _ADDRESS.match(text):
        return Scheduler("address", address=text)
    raise ExplorerInputError(f"--scheduler must be none, local:N or a scheduler address such as tcp://host:8786, "
                             f"got {spec!r}")


def _threads_one() -> None:
    """On each worker: one torch thread per worker process (the processes are the parallelism)."""
    import torch

    torch.set_num_threads(1)


@contextmanager
def dask_client(spec: str | Scheduler, announce=None):
    """A ``distributed.Client`` for ``spec`` (a LocalCluster is started here and stopped on exit); ``announce``
    (default: print to stderr) gets one line with the scheduler and the dashboard address."""
    scheduler = spec if isinstance(spec, Scheduler) else parse_scheduler(spec)
    if not scheduler.distributed:
        raise ExplorerInputError("no scheduler: the work runs in this process")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ExplorerInputError("--scheduler needs dask distributed (pip install 'dask[distributed]')") from None
    announce = announce or (lambda line: print(line, file=sys.stderr))
    for name in ("distributed", "tornado"):  # Dask's own log lines (worker restarts, slow shutdowns) stay off
        logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    try:
        if scheduler.kind == "local":
            cluster = LocalCluster(n_workers=scheduler.workers, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0", host="127.0.0.1", silence_logs=logging.CRITICAL)
            client = Client(cluster)
        else:
            client = Client(scheduler.address, timeout="20s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ExplorerInputError(f"cannot reach the Dask scheduler {scheduler.address or 'local'}: {exc}") from None
    try:
        client.register_plugin(_one_thread_plugin(), name="explorer-one-thread")
        where = "local cluster" if cluster is not None else "scheduler"
        announce(f"explorer: Dask {where} {client.scheduler.address} with {len(client.scheduler_info()['workers'])} "
                 f"workers; dashboard {client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _one_thread_plugin():
    """A worker plugin: every worker, one started later (a restarted one) too, runs torch with one thread."""
    from distributed import WorkerPlugin

    class OneThread(WorkerPlugin):
        def setup(self, worker) -> None:
            _threads_one()

    return OneThread()


def worker_pids(client) -> dict:
    """{worker address: process id} (for tests and diagnostics)."""
    import os

    return client.run(os.getpid)


# ------------------------------------------------------------------------------------------------ tasks


_REFERENCES: dict = {}


def shipped_references(potential, spec: dict):
    """This worker's ElementalReferences of ``spec`` (built once per potential and settings)."""
    import json

    from .relax import ElementalReferences

    key = (potential.fingerprint, json.dumps({k: v for k, v in spec.items() if k != "entries"}))
    if key not in _REFERENCES:
        _REFERENCES[key] = ElementalReferences.from_spec(potential, spec)
    else:
        _REFERENCES[key]._entries.update(spec["entries"])
    return _REFERENCES[key]


def _apply_chunk(func, items: list) -> list:
    return [func(item) for item in items]


def map_in_order(spec: str, func, items: list, chunk: int = 16, announce=None) -> list:
    """``[func(item) for item in items]`` computed on Dask in chunks of ``chunk`` items (``func`` a module-level
    function), in input order."""
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    with dask_client(spec, announce) as client:
        futures = [client.submit(_apply_chunk, func, part, retries=RETRIES, pure=False) for part in chunks]
        return [result for part in client.gather(futures) for result in part]


def relax_chunk_task(structures: list, labels: list[str], potential: str, fmax: float, steps: int, formation: str,
                     relax_cell: bool, batch_size: int, references: dict | None = None) -> list:
    """Relax one chunk of structures on a worker, batched, with the worker's cached potential (and the main
    process's elemental references, ``references`` = their spec, for formation energies)."""
    from .relax import relax
    from .relax.potentials import shared_potential

    loaded = shared_potential(potential)
    return relax(structures, potential=loaded, fmax=fmax, steps=steps, formation=formation, labels=labels,
                 relax_cell=relax_cell, batch_size=batch_size,
                 references=shipped_references(loaded, references) if references is not None else None)


def prepared_references(structures: list, potential: str, references=None) -> dict:
    """The spec of the elemental references of every element of ``structures`` (relaxed here, once, before the
    workers start; ``references``: an ElementalReferences to use instead of the potential's default one)."""
    from .relax import ElementalReferences
    from .relax.potentials import shared_potential

    loaded = shared_potential(potential)
    references = references if references is not None else ElementalReferences(loaded)
    for element in sorted({e.symbol for s in structures if s is not None for e in s.composition}):
        if not loaded.unsupported_elements([element]):
            references.get(element)
    return references.to_spec()


def relax_distributed(structures: list, spec: str, potential: str = "m3gnet", fmax: float = 0.05, steps: int = 500,
                      formation: str = "references", labels: list[str] | None = None, relax_cell: bool = True,
                      batch_size: int = 32, callback=None, announce=None, references=None) -> list:
    """:func:`explorer.relax.relax` on Dask: chunks of ``batch_size`` structures, each relaxed batched on a
    worker; results in input order (``index`` renumbered), ``callback(done, total)`` as chunks finish. With
    ``formation="references"`` the elemental references are relaxed here first and shipped to the workers."""
    from distributed import as_completed

    from .relax.relaxation import _label
    from .structure_io import as_structure

    structures = [as_structure(s) for s in structures]
    labels = labels or [_label(s, i) for i, s in enumerate(structures)]
    chunks = [list(range(i, min(i + batch_size, len(structures)))) for i in range(0, len(structures), batch_size)]
    results = [None] * len(structures)
    shipped = prepared_references(structures, potential, references) if formation == "references" else None
    with dask_client(spec, announce) as client:
        futures = {client.submit(relax_chunk_task, [structures[i] for i in chunk], [labels[i] for i in chunk],
                                 potential, fmax, steps, formation, relax_cell, batch_size, shipped,
                                 retries=RETRIES, pure=False): chunk for chunk in chunks}
        done = 0
        for future in as_completed(futures):
            chunk = futures[future]
            for i, result in zip(chunk, future.result()):
                result.index = i
                results[i] = result
            done += len(chunk)
            if callback is not None:
                callback(done, len(structures))
    return results


__all__ = ["RETRIES", "Scheduler", "dask_client", "map_in_order", "parse_scheduler", "relax_distributed",
           "shipped_references", "worker_pids"]
