import torch
from torch_geometric.nn.models.dimenet import SphericalBasisLayer

from explorer.generators.langevin import bases


def test_the_shipped_forms_are_what_torch_geometric_derives():
    for sizes in bases.SHIPPED_SIZES:
        assert bases.forms(*sizes) == bases.derive(*sizes)


def test_the_layer_equals_torch_geometrics_bit_for_bit():
    torch.manual_seed(0)
    dist, angle = torch.rand(40) * 5.0 + 0.3, torch.rand(60) * torch.pi  # per edge, per triplet
    idx_kj = torch.randint(0, 40, (60,))
    # small sizes (torch_geometric derives the shipped ones in 10 s; the test above checks their forms)
    ours = bases.spherical_basis_layer(3, 2, cutoff=4.0, envelope_exponent=5)
    theirs = SphericalBasisLayer(3, 2, cutoff=4.0, envelope_exponent=5)
    assert isinstance(ours, SphericalBasisLayer) and type(bases.spherical_basis_layer(3, 2)) is type(ours)
    assert torch.equal(ours(dist, angle, idx_kj), theirs(dist, angle, idx_kj))


def test_written_forms_read_back_the_same(tmp_path, monkeypatch):
    path = tmp_path / "bases.json"
    monkeypatch.setattr(bases, "SHIPPED_SIZES", ((2, 2),))
    bases.write_shipped(path)
    monkeypatch.setattr(bases, "SHIPPED", path)
    bases._shipped.cache_clear(), bases.forms.cache_clear()
    try:
        assert bases._shipped().keys() == {"2,2"}
        assert bases.forms(2, 2) == bases.derive(2, 2)
    finally:
        bases._shipped.cache_clear(), bases.forms.cache_clear()
