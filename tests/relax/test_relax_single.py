"""One structure at a time: the cell filter is ASE's FrechetCellFilter (the same numbers for less matrix work), and a
relaxation through it takes ASE's own steps."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.relax.single import frechet_filter, relax_steps


def test_frechet_filter_matches_ase(crystals):
    """The cell filter gives ASE's FrechetCellFilter positions, forces and stress on a strained cell."""
    from ase.calculators.lj import LennardJones
    from ase.filters import FrechetCellFilter
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(crystals.rattled(crystals.nacl(5.6), sigma=0.05))
    atoms.calc = LennardJones(sigma=2.6, epsilon=0.05, rc=6.0)
    reference, fast = FrechetCellFilter(atoms), frechet_filter(atoms)
    x = reference.get_positions()
    x[-3:] += np.random.default_rng(3).normal(0.0, 0.2, (3, 3))  # a sheared and stretched cell
    reference.set_positions(x)
    np.testing.assert_allclose(fast.get_positions(), reference.get_positions(), atol=1e-12)
    np.testing.assert_allclose(fast.get_forces(), reference.get_forces(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.stress, reference.stress, rtol=1e-9, atol=1e-14)
    fast.set_positions(fast.get_positions() + 0.01)
    np.testing.assert_allclose(fast.get_forces(), reference.get_forces(), rtol=1e-9, atol=1e-12)  # not stale


def test_a_relaxation_takes_the_steps_of_ases_own_filter(crystals):
    """relax_steps (FIRE on :func:`frechet_filter`) against FIRE on ASE's FrechetCellFilter: the same energies at
    every step."""
    from ase.calculators.lj import LennardJones
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = crystals.rattled(crystals.nacl(5.9), sigma=0.05)
    structure.apply_strain([0.03, -0.02, 0.01])

    def calculator():
        return LennardJones(sigma=2.6, epsilon=0.05, rc=6.0)

    runner = relax_steps(None, structure, fmax=0.01, steps=40, calculator=calculator())
    events = []
    while True:
        try:
            events.append(next(runner))
        except StopIteration as stop:
            result = stop.value
            break
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator()
    optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
    energies = []
    for _ in optimizer.irun(fmax=0.01, steps=40):
        energies.append(atoms.get_potential_energy() / len(atoms))
    assert result.steps == optimizer.nsteps > 5
    assert [e.energy_per_atom for e in events] == pytest.approx(energies, rel=1e-9, abs=1e-12)


def test_nan_stress_gives_nan_cell_forces_not_an_error(crystals):
    """As ASE's filter: NaN in, NaN out (the relaxation's checks then say the energy is not finite)."""
    from ase.calculators.lj import LennardJones
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(crystals.nacl())
    atoms.calc = LennardJones(sigma=float("nan"), rc=6.0)
    forces = frechet_filter(atoms).get_forces()
    assert forces.shape == (len(atoms) + 3, 3) and np.isnan(forces[-3:]).all()
