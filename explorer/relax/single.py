"""One structure relaxed with ASE FIRE on a FrechetCellFilter (positions and cell; :func:`frechet_filter`), and the
structure checks and the cell filter the batched relaxer shares (:mod:`explorer.relax.batched`).

Failures never raise: unsupported elements, overlapping atoms, NaN/inf energies or forces, an exploding or
collapsing cell and errors raised by the potential give ``status="failed"`` with the reason in ``error``;
reaching the step limit gives ``status="unconverged"`` (the last structure is kept).
"""

from __future__ import annotations

import functools
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
    target = frechet_filter(atoms) if relax_cell else atoms
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


def frechet_filter(atoms):
    """ASE's FrechetCellFilter with the same numbers (to ~1e-15) for a fraction of its matrix work, which per
    structure costs about as much as a batched potential evaluation (a quarter of a one-structure relaxation's
    time on an 8-atom cell):

    * forces are kept for the current positions and cell (FIRE asks for them three times per step);
    * the matrix logarithm of the deformation gradient F is computed once per state: the positions use
      logm(n F) = logm(F) + ln(n) I (ASE computes both);
    * the cell force ⟨L_exp(log F, E_μν), G⟩ over the nine unit directions E_μν is the adjoint Fréchet
      derivative L_exp((log F)ᵀ, G): one ``expm_frechet`` instead of nine.

    Masks, hydrostatic strain, constant volume or an external pressure fall back to ASE's own code."""
    return _fast_frechet_class()(atoms)


@functools.lru_cache(maxsize=1)
def _fast_frechet_class():
    """:func:`frechet_filter`'s class, made on first use (ASE and scipy are imported then)."""
    from ase.filters import FrechetCellFilter
    from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress
    from scipy.linalg import expm_frechet, logm

    class FastFrechetCellFilter(FrechetCellFilter):
        _log = None
        _forces = None

        def _plain(self) -> bool:
            return not (self.hydrostatic_strain or self.constant_volume or self.scalar_pressure
                        or (self._utility.mask3x3 != 1.0).any())

        def _deformation(self):
            """(F, logm F) of the current cell, the logarithm computed once per cell."""
            deform_grad = self._utility.deform_grad(self.atoms.get_cell())
            key = deform_grad.tobytes()
            if self._log is None or self._log[0] != key:
                self._log = (key, logm(deform_grad))
            return deform_grad, self._log[1]

        def get_positions(self):
            if not self._plain():
                return super().get_positions()
            positions = self.atoms.get_positions()
            natoms = len(positions)
            deform_grad, log = self._deformation()
            result = np.zeros((natoms + 3, 3))
            result[:natoms] = np.linalg.solve(deform_grad, positions.T).T
            result[natoms:] = (log + math.log(natoms) * np.eye(3)) * self.exp_cell_factor
            return result

        def get_forces(self, **kwargs):
            if kwargs or not self._plain():
                return super().get_forces(**kwargs)
            key = (self.atoms.positions.tobytes(), self.atoms.cell.array.tobytes())
            if self._forces is None or self._forces[0] != key:
                self._forces = (key, self._compute_forces())
            return self._forces[1].copy()

        def _compute_forces(self):
            stress = self.atoms.get_stress()
            atoms_forces = self.atoms.get_forces()
            volume = self.atoms.cell.volume
            virial = -volume * voigt_6_to_full_3x3_stress(stress)
            deform_grad, log = self._deformation()
            cell_gradient = virial @ np.linalg.inv(deform_grad.T)
            natoms = len(atoms_forces)
            forces = np.zeros((natoms + 3, 3))
            forces[:natoms] = atoms_forces @ deform_grad
            if np.isfinite(cell_gradient).all():
                forces[natoms:] = expm_frechet(log.T, cell_gradient, compute_expm=False) / self.exp_cell_factor
            else:  # NaN stress: NaN cell forces, as ASE's gives (scipy refuses them), for the checks to report
                forces[natoms:] = np.nan
            self.stress = full_3x3_to_voigt_6_stress(-virial / volume)
            return forces

    return FastFrechetCellFilter


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
