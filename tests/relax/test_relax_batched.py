"""Batched relaxation: same numbers as matgl's ASE calculator and as the one-at-a-time path, interleaved events,
refilling the batch, and failures that stay with their structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.relax import RelaxDone, RelaxStep, irelax, relax
from explorer.relax.batched import BatchEvaluator, relax_batched, supports_batching


@pytest.fixture
def trio(crystals):
    """Three tiny structures with a little relaxation work each."""
    return [crystals.rattled(crystals.nacl(5.55), sigma=0.08), crystals.si(5.47),
            crystals.rattled(crystals.srtio3(3.95), sigma=0.05, seed=1)]


def test_batched_evaluation_matches_matgl_calculator(m3gnet, trio):
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = [AseAtomsAdaptor.get_atoms(s) for s in trio]
    batched = BatchEvaluator(m3gnet).evaluate(atoms)
    for single, result in zip(atoms, batched):
        single.calc = m3gnet.calculator()  # matgl's PESCalculator, stress in eV/Å³
        assert result["energy"] == pytest.approx(single.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(result["forces"], single.get_forces(), atol=1e-5)
        np.testing.assert_allclose(result["stress"], single.get_stress(), atol=1e-6)


def test_batched_and_serial_relaxations_agree(m3gnet, trio):
    assert supports_batching(m3gnet)
    serial = relax(trio, potential=m3gnet, formation="none", steps=25, batch_size=1)
    batched = relax(trio, potential=m3gnet, formation="none", steps=25, batch_size=2)  # the batch is refilled
    for one, many in zip(serial, batched):
        assert many.status == one.status and many.steps == one.steps and many.label == one.label
        assert many.energy_per_atom == pytest.approx(one.energy_per_atom, abs=1e-4)
        assert len(many.trajectory) == many.steps + 1
        np.testing.assert_allclose(many.trajectory, one.trajectory, atol=1e-4)
        assert many.structure.lattice.volume == pytest.approx(one.structure.lattice.volume, rel=1e-4)


def test_batched_events_interleave_and_close(m3gnet, crystals):
    events = irelax([crystals.rattled(crystals.nacl(5.5), sigma=0.1), crystals.si(5.5)], potential=m3gnet,
                    formation="none", batch_size=8)
    first, second, third = next(events), next(events), next(events)
    assert [(e.index, e.step) for e in (first, second, third)] == [(0, 0), (1, 0), (0, 1)]
    assert all(isinstance(e, RelaxStep) for e in (first, second, third))
    events.close()
    with pytest.raises(StopIteration):
        next(events)


def test_batched_failures_stay_with_their_structure(m3gnet, crystals, monkeypatch):
    """NaN energies for one structure mid-batch (a faked potential output) fail that structure only."""
    original = BatchEvaluator._forward

    def poisoned(self, graphs, sizes):
        results = original(self, graphs, sizes)
        for result, size in zip(results, sizes):
            if size == 5:  # the SrTiO3 cell
                result["energy"] = math.nan
        return results

    monkeypatch.setattr(BatchEvaluator, "_forward", poisoned)
    batch = [crystals.si(5.47), crystals.srtio3(3.95), crystals.overlapping(), crystals.malformed_cif]
    done = [e for e in irelax(batch, potential=m3gnet, formation="none", steps=20) if isinstance(e, RelaxDone)]
    by_index = {e.index: e.result for e in done}
    assert sorted(by_index) == [0, 1, 2, 3] and sorted(e.done for e in done) == [1, 2, 3, 4]
    assert by_index[0].status == "ok"
    assert by_index[1].status == "failed" and by_index[1].error == "energy is not finite"
    assert "overlapping atoms" in by_index[2].error and "malformed CIF" in by_index[3].error


def test_potential_errors_are_isolated(m3gnet, crystals, monkeypatch):
    """When the batched pass raises, each structure is evaluated alone and only the culprit fails."""
    original = BatchEvaluator._forward

    def fragile(self, graphs, sizes):
        if 5 in sizes:
            raise RuntimeError("boom")
        return original(self, graphs, sizes)

    monkeypatch.setattr(BatchEvaluator, "_forward", fragile)
    items = [(0, "si", crystals.si(5.47)), (1, "srtio3", crystals.srtio3())]
    results = [e for e in relax_batched(items, m3gnet, steps=10) if not isinstance(e, RelaxStep)]
    by_label = {r.label: r for r in results}
    assert by_label["si"].status == "ok"
    assert by_label["srtio3"].status == "failed" and by_label["srtio3"].error == "potential error: boom"
    (alone,) = [e for e in relax_batched([items[1]], m3gnet, steps=10) if not isinstance(e, RelaxStep)]
    assert alone.status == "failed" and alone.error == "potential error: boom"


def test_step_limit_in_a_batch(m3gnet, crystals):
    (result,) = relax([crystals.rattled(crystals.nacl(5.5), sigma=0.1)], potential=m3gnet, formation="none",
                      steps=2)
    assert result.status == "unconverged" and result.steps == 2 and len(result.trajectory) == 3
    assert "after 2 steps" in result.error and result.structure is not None
