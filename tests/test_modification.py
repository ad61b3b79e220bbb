"""explorer.modify and evaluate_modification: known prototypes first, model samples, M3GNet relaxation."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("model", ["mod-regression", "mod-palette", "mod-cfm", "mod-palette-cfm"])
def test_modify_with_every_shipped_model_keeps_the_composition(model, nacl):
    from pymatgen.core import Composition

    from explorer.modification import modify

    candidates = modify(nacl, 221, -0.1, model=model, n=2, steps=3, seed=0, device="cpu", prototypes=0,
                        relax_steps=0)
    assert len(candidates) == 2
    for c in candidates:
        assert c.structure.composition.reduced_composition == Composition("NaCl")
        assert c.structure.volume > 0 and c.spacegroup_requested == 221 and c.model == model


def test_modify_puts_known_prototypes_first(nacl, tiny_data_dir):
    from explorer.errors import ExplorerInputError
    from explorer.modification import modify

    # auto: up to 2 of 3 candidates are prototypes (here one is known), all relaxed with M3GNet
    progress = []
    candidates = modify(nacl, 221, -0.1, n=3, steps=2, seed=0, device="cpu", relax_steps=5,
                        relax_callback=lambda done, total: progress.append((done, total)))
    assert [c.model for c in candidates] == ["prototype", "mod-palette-cfm", "mod-palette-cfm"]
    assert [c.index for c in candidates] == [0, 1, 2]
    first = candidates[0]
    assert first.extra["prototype"]["source_formula"] == "CsCl" and first.spacegroup_detected == 221
    assert first.formula == "NaCl" and first.valid
    assert all(c.extra["relaxation"]["steps"] <= 5 and c.extra["relaxation"]["status"] for c in candidates)
    assert first.extra["relaxation"]["energy_per_atom"] < 0
    assert first.extra["relaxation"]["potential"].startswith("M3GNet")
    assert progress[-1] == (15, 15) and all(total == 15 for _, total in progress)  # 3 candidates x 5 steps
    unrelaxed = modify(nacl, 221, -0.1, n=1, steps=2, device="cpu", relax_steps=0)[0]
    assert unrelaxed.structure.volume / len(unrelaxed.structure) == pytest.approx(nacl.volume / len(nacl))
    assert "relaxation" not in unrelaxed.extra
    # the uploaded structure itself (rock-salt NaCl is in the library) says so when it comes back
    own = modify(nacl, 225, -0.1, n=2, steps=2, device="cpu", relax_steps=0)[0]
    assert own.model == "prototype" and own.extra["prototype"]["same_as_reference"]
    assert not first.extra["prototype"]["same_as_reference"]
    samples = modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", prototypes=0, relax_steps=0)
    assert [c.model for c in samples] == ["mod-palette-cfm"] * 2
    by_method = modify(nacl, 221, -0.1, model="regression", n=1, device="cpu", prototypes=0, relax_steps=0)
    assert by_method[0].model == "mod-regression"  # the issue's --model regression|palette|cfm
    for bad in (-1, "many", 1.5):
        with pytest.raises(ExplorerInputError, match="prototypes"):
            modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", prototypes=bad)
    with pytest.raises(ExplorerInputError, match="relaxation steps"):
        modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", relax_steps=-1)
    with pytest.raises(ExplorerInputError, match="fmax"):
        modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", relax_fmax=float("nan"))


def test_modify_asked_for_prototypes_without_data_says_so(nacl, tmp_path, monkeypatch):
    from explorer.errors import ExplorerInputError
    from explorer.modification import evaluate_modification, modify

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "no-data"))
    auto = modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", relax_steps=0)  # auto: the network only
    assert [c.model for c in auto] == ["mod-palette-cfm"] * 2
    with pytest.raises(ExplorerInputError, match="EXPLORER_DATA_DIR"):
        modify(nacl, 221, -0.1, n=2, steps=2, device="cpu", prototypes=True, relax_steps=0)
    with pytest.raises(ExplorerInputError, match="no-prototypes"):
        evaluate_modification(tmp_path / "any.csv.gz")


def test_evaluate_modification_uses_prototypes_of_other_formulas(tmp_path, tiny_data_dir):
    from crystal_fixtures import write_polymorph_pairs_csv

    from explorer.modification import evaluate_modification

    csv_path = write_polymorph_pairs_csv(tmp_path / "pairs.csv.gz")
    with_prototypes = evaluate_modification(csv_path, steps=2, device="cpu", workers=1, relax_steps=5)
    assert with_prototypes["n"] == 1 and with_prototypes["match_rate"] == 1.0
    assert with_prototypes["prototype_share"] == 1.0 and with_prototypes["model"] == "mod-palette-cfm+prototypes"
    assert with_prototypes["relax_steps"] == 5
    model_only = evaluate_modification(csv_path, steps=2, device="cpu", workers=1, prototypes=False, relax_steps=0)
    assert model_only["prototype_share"] == 0.0 and model_only["model"] == "mod-palette-cfm"


def test_modify_rejects_unsupported_compositions_and_bad_input(nacl):
    from pymatgen.core import Lattice, Structure

    from explorer.errors import ExplorerInputError
    from explorer.modification import modify

    with pytest.raises(ExplorerInputError, match="not trained on"):
        modify(Structure(Lattice.cubic(4.0), ["No"], [[0, 0, 0]]), 221, -0.1, device="cpu")
    with pytest.raises(ExplorerInputError, match="at most 60"):
        grid = [[i % 4 / 4, i // 4 % 4 / 4, i // 16 / 4] for i in range(61)]
        modify(Structure(Lattice.cubic(12.0), ["Na"] * 61, grid), 1, 0.0,
               device="cpu")
    with pytest.raises(ExplorerInputError):
        modify(nacl, 231, -0.1, device="cpu")
    with pytest.raises(ExplorerInputError, match=r"space group 62 \(Pnma\) cannot hold a cell of Na Cl"):
        modify(nacl, 62, -0.1, device="cpu", prototypes=0, relax_steps=0)  # its primitive cell has 2 atoms
