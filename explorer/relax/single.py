"""One structure relaxed with ASE FIRE on a FrechetCellFilter (positions and cell), and the structure checks
the batched relaxer shares (:mod:`explorer.relax.batched`).

Failures never raise: unsupported elements, overlapping atoms, NaN/inf energies or forces, an exploding or
collapsing cell and errors raised by the potential give ``status="failed"`` with the reason in ``error``;
reaching the step limit gives ``status="unconverged"`` (the last structure is kept).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ..representation import MIN_DISTANCE  # Å; closer atoms count as overlapping
from .results import STATUS_FAILED, STATUS_OK, STATUS_UNCONVERGED, RelaxResult, RelaxStep

MAX_VOLUME_RATIO = 5.0  # the cell may grow or shrink by at most this factor during a relaxation


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


__all__ = ["MAX_VOLUME_RATIO", "MIN_DISTANCE", "check_structure", "relax_one", "relax_steps", "single_threaded_blas"]
