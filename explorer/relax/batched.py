"""Batched relaxation: many structures relaxed in lockstep with one potential evaluation per step.

Each structure keeps its own ASE FIRE optimizer on its own FrechetCellFilter (ASE's, with its matrix work
cached: same numbers to ~1e-15; :func:`~explorer.relax.single.frechet_filter`), as in
:func:`~explorer.relax.single.relax_steps`, but the energies, forces
and stresses of all structures still running are computed together: their graphs (matgl's own ASE-atoms-to-graph
converter) are collated into one PyG batch and go through the matgl ``Potential`` once per optimizer step. The
results are handed to each structure's calculator before its optimizer asks for them, so FIRE sees the same
numbers as with matgl's ``PESCalculator`` (energy eV, forces eV/Å, stress eV/Å³ with ASE's sign convention).

Structures finish independently (converged, step limit, or failed: NaN, exploding or collapsing cell,
overlapping atoms, potential errors) and leave the batch; waiting structures take their places.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np

from .results import STATUS_FAILED, STATUS_OK, STATUS_UNCONVERGED, RelaxResult, RelaxStep
from .single import _check_state, check_structure, frechet_filter, single_threaded_blas

DEFAULT_BATCH_SIZE = 32  # structures relaxed in lockstep (matgl potentials); 1 = one after the other


def supports_batching(potential) -> bool:
    """Whether ``potential`` (a loaded :class:`~explorer.relax.potentials.Potential`) is a matgl potential
    whose graphs can be batched (CHGNet and custom calculators are relaxed one at a time)."""
    if getattr(getattr(potential, "spec", None), "kind", None) != "matgl":
        return False
    inner = getattr(potential.model, "model", None)
    return bool(getattr(inner, "element_types", None)) and getattr(inner, "cutoff", None) is not None


class BatchEvaluator:
    """Energies (eV), forces (eV/Å) and stresses (eV/Å³, ASE convention) of many ASE Atoms in one forward
    pass of a matgl ``Potential`` on ``device`` (``"auto"``: CUDA when present; the potential's model is moved
    there and stays there)."""

    def __init__(self, potential, device="cpu"):
        from matgl.ext.ase import Atoms2Graph

        from ..devices import resolve_device

        self.device = resolve_device(device)
        self.model = potential.model
        if next(self.model.parameters()).device != self.device:
            self.model.to(self.device)
        inner = self.model.model
        self.converter = Atoms2Graph(tuple(inner.element_types), float(inner.cutoff))

    def evaluate(self, atoms_list) -> list[dict | str]:
        """One result per Atoms: a dict (``energy``, ``free_energy``, ``forces``, ``stress`` in Voigt order) or
        the reason (str) why that structure could not be evaluated. One failing structure never fails the
        others: when the batched pass raises, the structures are evaluated one by one."""
        graphs: list = []
        outputs: list[dict | str] = []
        for atoms in atoms_list:
            try:
                graphs.append(self.converter.get_graph(atoms))
                outputs.append({})
            except Exception as exc:
                graphs.append(None)
                outputs.append(f"potential error: {_first_line(exc)}")
        usable = [i for i, graph in enumerate(graphs) if graph is not None]
        if not usable:
            return outputs
        try:
            results = self._forward([graphs[i] for i in usable], [len(atoms_list[i]) for i in usable])
        except Exception as exc:
            if len(usable) == 1:
                results = [f"potential error: {_first_line(exc)}"]
            else:
                results = [self._single(graphs[i], len(atoms_list[i])) for i in usable]
        for i, result in zip(usable, results):
            outputs[i] = result
        return outputs

    def _single(self, graph, n_atoms: int) -> dict | str:
        try:
            return self._forward([graph], [n_atoms])[0]
        except Exception as exc:
            return f"potential error: {_first_line(exc)}"

    def _forward(self, graphs: list, sizes: list[int]) -> list[dict]:
        import torch
        from ase import units
        from ase.stress import full_3x3_to_voigt_6_stress
        from torch_geometric.data import Batch

        device = self.device
        batch = Batch.from_data_list([graph for graph, _, _ in graphs]).to(device)
        lattice = torch.cat([torch.as_tensor(lat).reshape(-1, 3, 3) for _, lat, _ in graphs], dim=0).to(device)
        state = torch.stack([torch.as_tensor(np.asarray(s, dtype=np.float32)) for _, _, s in graphs]).to(device)
        energies, forces, stresses = self.model(batch, lattice, state)[:3]
        energies = energies.detach().reshape(-1).cpu().numpy().astype(float)
        forces = forces.detach().cpu().numpy().astype(float)
        # matgl: GPa per 3x3 block, stacked (3B, 3); ASE wants eV/Å³ (same sign, as PESCalculator gives)
        stresses = stresses.detach().cpu().numpy().astype(float).reshape(-1, 3, 3) * units.GPa
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return [{"energy": float(energies[i]), "free_energy": float(energies[i]),
                 "forces": forces[offsets[i]:offsets[i + 1]].copy(),
                 "stress": full_3x3_to_voigt_6_stress(stresses[i])} for i in range(len(sizes))]


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _slot_calculator(evaluator: BatchEvaluator):
    """An ASE calculator fed with batched results; it evaluates alone only when asked about a state the batch
    did not compute (never during a normal relaxation)."""
    from ase.calculators.calculator import Calculator

    class BatchedResultsCalculator(Calculator):
        implemented_properties = ("energy", "free_energy", "forces", "stress")

        def store(self, atoms, results: dict) -> None:
            self.atoms = atoms.copy()
            self.results = dict(results)

        def calculate(self, atoms=None, properties=None, system_changes=None):
            super().calculate(atoms, properties, system_changes)
            (result,) = evaluator.evaluate([self.atoms])
            if isinstance(result, str):
                raise RuntimeError(result)
            self.results = dict(result)

    return BatchedResultsCalculator()


@dataclass
class _Settings:
    fmax: float
    steps: int
    relax_cell: bool


class _Slot:
    """One structure in the batch: its atoms, filter, FIRE state and growing :class:`RelaxResult`."""

    def __init__(self, index: int, label: str, structure, evaluator: BatchEvaluator, settings: _Settings):
        from ase.optimize import FIRE
        from pymatgen.io.ase import AseAtomsAdaptor

        self.start = time.perf_counter()
        self.settings = settings
        self.result = RelaxResult(index=index, label=label, status=STATUS_FAILED)
        self.atoms = AseAtomsAdaptor.get_atoms(structure)
        self.atoms.calc = _slot_calculator(evaluator)
        self.volume0 = self.atoms.get_volume()
        self.target = frechet_filter(self.atoms) if settings.relax_cell else self.atoms
        self.optimizer = FIRE(self.target, logfile=None)
        self.optimizer.fmax = settings.fmax  # what irun(fmax=...) would set; used by gradient_converged
        self.done = False

    def finish(self, status: str, error: str = "") -> None:
        self.result.status, self.result.error = status, error
        self.result.seconds = round(time.perf_counter() - self.start, 3)
        if status != STATUS_FAILED:
            from pymatgen.io.ase import AseAtomsAdaptor

            self.result.structure = AseAtomsAdaptor.get_structure(self.atoms.copy())  # drops the calculator
        self.done = True

    def advance(self, output: dict | str) -> RelaxStep | None:
        """Take the batched results at the current positions: record the step (the returned event), then
        finish or move the atoms with one FIRE step. Failures finish the slot (no event)."""
        if isinstance(output, str):
            self.finish(STATUS_FAILED, output)
            return None
        result, optimizer = self.result, self.optimizer
        try:
            self.atoms.calc.store(self.atoms, output)
            energy = output["energy"] / len(self.atoms)
            forces = self.target.get_forces()
            problem = _check_state(self.atoms, energy, forces, self.volume0)
            converged = not problem and optimizer.gradient_converged(optimizer.optimizable.get_gradient())
        except Exception as exc:
            self.finish(STATUS_FAILED, f"potential error: {_first_line(exc)}")
            return None
        if problem:
            self.finish(STATUS_FAILED, problem)
            return None
        largest = float(np.sqrt((forces**2).sum(axis=1).max())) if len(forces) else 0.0
        result.steps, result.energy_per_atom, result.fmax = optimizer.nsteps, energy, largest
        result.trajectory.append(energy)
        event = RelaxStep(result.index, result.label, optimizer.nsteps, energy, largest)
        self._step_or_finish(converged)
        return event

    def _step_or_finish(self, converged: bool) -> None:
        settings, optimizer = self.settings, self.optimizer
        if converged:
            self.finish(STATUS_OK)
        elif optimizer.nsteps >= settings.steps:
            self.finish(STATUS_UNCONVERGED,
                        f"fmax {self.result.fmax:.3f} eV/Å > {settings.fmax} after {settings.steps} steps")
        else:
            try:
                optimizer.step()
                optimizer.nsteps += 1
            except Exception as exc:
                self.finish(STATUS_FAILED, f"potential error: {_first_line(exc)}")


def _start(item, potential, evaluator: BatchEvaluator, settings: _Settings) -> _Slot | RelaxResult:
    """A slot for ``(index, label, structure)``, or the failed result of a structure that cannot start."""
    index, label, structure = item
    start = time.perf_counter()
    problem = check_structure(structure, potential)
    if not problem:
        try:
            return _Slot(index, label, structure, evaluator, settings)
        except Exception as exc:
            problem = f"potential error: {_first_line(exc)}"
    return RelaxResult(index=index, label=label, status=STATUS_FAILED, error=problem,
                       seconds=round(time.perf_counter() - start, 3))


def relax_batched(pending, potential, fmax: float = 0.05, steps: int = 500, relax_cell: bool = True,
                  batch_size: int = DEFAULT_BATCH_SIZE, device="cpu"):
    """Generator over ``(index, label, Structure)`` items: yields a :class:`RelaxStep` for every structure in
    the batch after each step (index order within a step) and each :class:`RelaxResult` when its structure
    finishes. At most ``batch_size`` structures run at once; a finished one is replaced by the next waiting
    one. The potential runs on ``device`` (see :class:`BatchEvaluator`). Closing the generator stops the work."""
    evaluator = BatchEvaluator(potential, device)
    settings = _Settings(fmax=fmax, steps=steps, relax_cell=relax_cell)
    waiting = deque(pending)
    active: list[_Slot] = []
    while waiting or active:
        while waiting and len(active) < batch_size:
            started = _start(waiting.popleft(), potential, evaluator, settings)
            if isinstance(started, RelaxResult):
                yield started
            else:
                active.append(started)
        if not active:
            continue
        events = _batch_step(active, evaluator)
        yield from events
        for slot in [slot for slot in active if slot.done]:
            yield slot.result
        active = [slot for slot in active if not slot.done]


def _batch_step(active: list[_Slot], evaluator: BatchEvaluator) -> list[RelaxStep]:
    """One evaluation of every active structure and one optimizer step each; returns the step events."""
    with single_threaded_blas(), warnings.catch_warnings():
        # scipy's logm inside the Frechet cell filter is noisy about tiny inaccuracies
        warnings.filterwarnings("ignore", message="logm result may be inaccurate")
        outputs = evaluator.evaluate([slot.atoms for slot in active])
        events = [slot.advance(output) for slot, output in zip(active, outputs)]
    return [event for event in events if event is not None]


__all__ = ["DEFAULT_BATCH_SIZE", "BatchEvaluator", "relax_batched", "supports_batching"]
