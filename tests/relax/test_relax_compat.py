"""The matgl < 3.0 compatibility layer: legacy weights give matgl's legacy test values only with it, and it is
applied per model instance, never to matgl globally."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

from explorer.relax import compat

MOS_LEGACY_ENERGY = -10.824362  # matgl's legacy test value (tests/ext/test_ase.py) for its MoS structure


def mos() -> Structure:
    """matgl's MoS test fixture."""
    return Structure(Lattice.cubic(4.0), ["Mo", "S"], [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])


def energy(potential_model, structure) -> float:
    from matgl.ext.ase import PESCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = PESCalculator(potential_model, stress_unit="eV/A3")
    return float(atoms.get_potential_energy())


def test_mos_energy_needs_the_legacy_aggregation(pes_path):
    import matgl

    path = pes_path
    current = matgl.load_model(path)  # matgl's own loader: source-atom aggregation
    legacy = compat.load_legacy_model(path)
    assert not compat.uses_legacy_node_aggregation(current)
    assert compat.uses_legacy_node_aggregation(legacy)
    assert energy(legacy, mos()) == pytest.approx(MOS_LEGACY_ENERGY, abs=1e-4)
    assert abs(energy(current, mos()) - MOS_LEGACY_ENERGY) > 1.0  # -7.45 eV: why the layer exists


def test_restoring_is_per_instance_and_idempotent(pes_path):
    import matgl
    from matgl.layers._graph_convolution import M3GNetGraphConv

    path = pes_path
    first, second = matgl.load_model(path), matgl.load_model(path)
    assert compat.restore_legacy_node_aggregation(first) == 3  # one per M3GNet block
    assert compat.restore_legacy_node_aggregation(first) == 3
    assert not compat.uses_legacy_node_aggregation(second)
    assert M3GNetGraphConv.node_update_ is not compat.LegacyM3GNetGraphConv.node_update_
    assert energy(first, mos()) == pytest.approx(MOS_LEGACY_ENERGY, abs=1e-4)
    with pytest.raises(ValueError, match="no M3GNet graph convolution"):
        compat.restore_legacy_node_aggregation(torch.nn.Linear(2, 2))


def test_legacy_detection(pes_path, tmp_path):
    from matgl.apps.pes import Potential
    from matgl.models import M3GNet

    assert compat.is_legacy_checkpoint(pes_path)
    assert not compat.is_legacy_checkpoint(tmp_path)  # no model at all
    fresh = Potential(model=M3GNet(element_types=("Si",), nblocks=1, units=8, dim_node_embedding=8,
                                   dim_edge_embedding=8))
    fresh.save(tmp_path / "current-format")
    assert not compat.is_legacy_checkpoint(tmp_path / "current-format")


def test_legacy_loader_rejects_other_models(tmp_path):
    (tmp_path / "model.json").write_text('{"@class": "TensorNet", "@module": "matgl.models"}')
    with pytest.raises(ValueError, match="not an M3GNet model"):
        compat.load_legacy_model(tmp_path)


def test_loader_marks_the_shared_weights_legacy(m3gnet):
    assert m3gnet.spec.legacy
    assert compat.uses_legacy_node_aggregation(m3gnet.model)
    assert m3gnet.fingerprint.endswith("-legacy")


def test_eform_model_with_the_compat_layer(eform_path):
    """The 2018 Eform checkpoint (DGL Set2Set names, pickled Normalizer) loads and matches MP energies."""
    from explorer.relax import load_formation_model

    model = load_formation_model(eform_path)
    assert compat.uses_legacy_node_aggregation(model.model)
    state = torch.load(eform_path / "state.pt", weights_only=True)
    assert torch.equal(model.model.model.readout.lstm.weight_ih_l0, state["model.readout.set2set.lstm.weight_ih_l0"])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    srtio3 = Structure(Lattice.cubic(3.945), ["Sr", "Ti", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    assert model.predict(nacl) == pytest.approx(-2.10, abs=0.05)  # MP: about -2.1 eV/atom
    assert model.predict(srtio3) == pytest.approx(-3.49, abs=0.05)  # MP: about -3.5 eV/atom
    unsupported = Structure(Lattice.cubic(3.0), ["Am"], [[0, 0, 0]])
    assert model.predict_many([unsupported])[0] != model.predict_many([unsupported])[0]  # NaN
