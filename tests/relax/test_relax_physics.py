"""Physics checks of M3GNet-MP-2021.2.8-PES relaxations (legacy weights through the compat layer): one short
relaxation per crystal, energies within 0.01 eV/atom and lattice constants within 0.03 Å."""

from __future__ import annotations

import pytest

from explorer.relax import relax_one


def cubic_a(structure, cells: int = 1) -> float:
    """Cubic lattice constant from the volume (robust to the small shear a rattled relaxation leaves)."""
    return (structure.volume / cells) ** (1 / 3)


def test_rattled_rock_salt_nacl(m3gnet, crystals):
    result = relax_one(m3gnet, crystals.rattled(crystals.nacl(5.64)), fmax=0.05, steps=200)
    assert result.status == "ok"
    assert result.energy_per_atom == pytest.approx(-3.3675, abs=0.01)
    assert cubic_a(result.structure) == pytest.approx(5.69, abs=0.03)
    assert result.trajectory[0] > result.trajectory[-1]  # the rattled start is higher in energy
    assert len(result.trajectory) == result.steps + 1
    assert result.fmax < 0.05


def test_cubic_srtio3(m3gnet, crystals):
    result = relax_one(m3gnet, crystals.srtio3(3.905), fmax=0.05, steps=200)
    assert result.status == "ok"
    assert result.energy_per_atom == pytest.approx(-8.028, abs=0.01)
    assert cubic_a(result.structure) == pytest.approx(3.945, abs=0.03)


def test_diamond_si(m3gnet, crystals):
    result = relax_one(m3gnet, crystals.si(5.43), fmax=0.05, steps=200)
    assert result.status == "ok"
    assert result.energy_per_atom == pytest.approx(-5.419, abs=0.01)
    assert cubic_a(result.structure) == pytest.approx(5.45, abs=0.03)  # matgl's cubic benchmark: 5.457 Å
