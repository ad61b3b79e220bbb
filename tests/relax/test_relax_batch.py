"""irelax/relax: events, cancellation, per-structure failure isolation, step limits, worker processes."""

from __future__ import annotations

import math

import pytest
from ase.calculators.lj import LennardJones

from explorer.errors import ExplorerInputError
from explorer.relax import RelaxDone, RelaxStep, check_structure, irelax, relax, relax_one


def test_failures_are_isolated(m3gnet, crystals, tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text(crystals.malformed_cif)
    good = tmp_path / "si.cif"
    crystals.si().to(filename=str(good))
    batch = [good, bad, crystals.overlapping(), str(tmp_path / "missing.cif"), crystals.si()]
    results = relax(batch, potential=m3gnet, formation="none", steps=100)
    assert [r.status for r in results] == ["ok", "failed", "failed", "failed", "ok"]
    assert [r.label for r in results][:2] == ["si.cif", "bad.cif"]
    assert "malformed CIF" in results[1].error
    assert "overlapping atoms" in results[2].error
    assert "file not found" in results[3].error
    assert all(r.structure is None and math.isnan(r.energy_per_atom) for r in results[1:4])
    assert results[0].energy_per_atom == pytest.approx(results[4].energy_per_atom, abs=1e-4)
    summary = results[2].summary()
    assert summary["status"] == "failed" and summary["energy_per_atom"] is None and summary["a"] is None


def test_step_limit_gives_unconverged(m3gnet, crystals):
    result = relax_one(m3gnet, crystals.rattled(crystals.nacl(5.5), sigma=0.1), steps=2)
    assert result.status == "unconverged"
    assert result.steps == 2 and len(result.trajectory) == 3
    assert result.structure is not None and math.isfinite(result.energy_per_atom)
    assert "after 2 steps" in result.error


def test_unsupported_elements_fail_cleanly(m3gnet):
    from pymatgen.core import Lattice, Structure

    americium = Structure(Lattice.cubic(3.5), ["Am"], [[0, 0, 0]])
    assert "not supported" in check_structure(americium, m3gnet)
    assert relax_one(m3gnet, americium).status == "failed"


@pytest.mark.parametrize(("calculator", "reason"), [
    (LennardJones(sigma=math.nan, rc=6.0), "energy is not finite"),  # NaN parameters -> NaN energies
    (LennardJones(sigma=2.0, epsilon=-1.0, rc=8.0), "cell volume exploded"),  # repulsive at long range
    (LennardJones(sigma=3.5, epsilon=-1.0, rc=8.0), "cell volume collapsed"),  # attractive at short range
])
def test_bad_dynamics_are_failures(crystals, calculator, reason):
    result = relax_one(None, crystals.nacl(), calculator=calculator, steps=300)
    assert result.status == "failed"
    assert reason in result.error
    assert result.structure is None


def test_events_and_cancellation(m3gnet, crystals):
    events = irelax([crystals.rattled(crystals.nacl(5.5), sigma=0.1), crystals.si()], potential=m3gnet,
                    formation="none", batch_size=1)  # one after the other
    first = next(events)
    assert isinstance(first, RelaxStep) and first.index == 0 and first.step == 0
    second = next(events)
    assert isinstance(second, RelaxStep) and second.step == 1
    events.close()  # like ASE's irun: closing the generator stops the relaxation
    with pytest.raises(StopIteration):
        next(events)


def test_done_events_in_order(m3gnet, crystals):
    seen = list(irelax([crystals.si(), crystals.overlapping()], potential=m3gnet, formation="none"))
    done = [e for e in seen if isinstance(e, RelaxDone)]
    assert [(e.done, e.total) for e in done] == [(1, 2), (2, 2)]
    assert {e.result.status for e in done} == {"ok", "failed"}
    steps = [e for e in seen if isinstance(e, RelaxStep)]
    assert steps and all(e.index == 0 for e in steps)  # the overlapping structure never takes a step


def test_bad_arguments(m3gnet, crystals):
    for kwargs in ({"fmax": 0}, {"steps": -1}, {"workers": 0}, {"formation": "dft"}, {"batch_size": 0}):
        with pytest.raises(ExplorerInputError):
            list(irelax([crystals.si()], potential=m3gnet, **kwargs))


def test_worker_processes(m3gnet, crystals):
    """Two spawned workers load the same potential (from its spec) and give the serial energies."""
    batch = [crystals.si(), crystals.malformed_cif, crystals.rattled(crystals.nacl(5.64))]
    results = relax(batch, potential=m3gnet, formation="none", workers=2, steps=100)
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert results[0].energy_per_atom == pytest.approx(-5.419, abs=0.01)
    assert results[2].energy_per_atom == pytest.approx(-3.3675, abs=0.01)
