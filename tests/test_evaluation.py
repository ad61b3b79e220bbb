import pytest
from crystal_fixtures import tiny_rows, write_csv_gz
from pymatgen.core import Lattice, Structure

from explorer.errors import ExplorerInputError
from explorer.evaluation import evaluate_generation, evaluation_conditions, match_all, match_pair

KEYS = {"n", "match_rate", "match_rate_loose", "rmse", "validity", "seconds", "model", "steps"}


def test_match_pair_with_itself_is_a_strict_match(nacl, si):
    strict, loose, rms = match_pair((nacl.as_dict(), nacl.as_dict()))
    assert strict and loose and rms == pytest.approx(0.0, abs=1e-6)
    # a supercell / primitive cell of the same crystal still matches
    primitive = nacl.get_primitive_structure()
    assert match_pair((primitive.as_dict(), nacl.as_dict()))[0]
    assert match_pair((nacl.as_dict(), si.as_dict())) == (False, False, None)


def test_match_pair_tolerances(srtio3):
    """A c axis 40 % longer is beyond the paper's ltol 0.2 but within DiffCSP's 0.3 (after volume scaling)."""
    stretched = Structure(Lattice.tetragonal(3.905, 3.905 * 1.4), srtio3.species, srtio3.frac_coords)
    strict, loose, rms = match_pair((stretched.as_dict(), srtio3.as_dict()))
    assert not strict and loose and rms is not None
    far = Structure(Lattice.tetragonal(3.905, 3.905 * 1.6), srtio3.species, srtio3.frac_coords)
    assert match_pair((far.as_dict(), srtio3.as_dict())) == (False, False, None)


def test_match_all_serial(nacl, si):
    results = match_all([nacl, si], [nacl, nacl], workers=1)
    assert [r[0] for r in results] == [True, False]


def test_evaluation_conditions(tiny_csv):
    targets, species, spacegroups, energies, skipped = evaluation_conditions(tiny_csv)
    assert len(targets) == 5 and skipped == 1  # malformed CIF counted; NaN energy left out
    assert species[0] == [11, 17] and species[3] == [8, 8, 8, 22, 38] and species[4] == [29]
    assert spacegroups == [225, 227, 221, 221, 225]
    assert energies[0] == pytest.approx(-2.1)
    assert len(evaluation_conditions(tiny_csv, limit=2)[0]) == 2
    # max_atoms applies to the cell stored in the CSV: only CsCl (2 atoms) and fcc Cu (4) remain
    assert len(evaluation_conditions(tiny_csv, max_atoms=4)[0]) == 2


def test_evaluate_generation_metrics(tiny_csv):
    metrics = evaluate_generation(tiny_csv, steps=3, seed=0, device="cpu", workers=1, limit=3)
    assert KEYS <= set(metrics)
    # no model: the default for a formula and a space group (langevin: whole noise levels + the final step)
    assert metrics["n"] == 3 and metrics["model"] == "langevin" and metrics["steps"] == 4
    for key in ("match_rate", "match_rate_loose", "validity"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["match_rate"] <= metrics["match_rate_loose"]
    assert metrics["rmse"] is None or metrics["rmse"] >= 0
    assert metrics["seconds"] >= 0 and isinstance(metrics["model"], str)


def test_evaluate_generation_bad_inputs(tmp_path):
    with pytest.raises(ExplorerInputError):
        evaluate_generation(tmp_path / "missing.csv.gz", steps=3, device="cpu")
    no_energy = write_csv_gz(tmp_path / "no_energy.csv.gz", tiny_rows(), columns=["material_id", "cif"])
    with pytest.raises(ExplorerInputError, match="formation_energy_per_atom"):
        evaluate_generation(no_energy, steps=3, device="cpu")
    unusable = write_csv_gz(tmp_path / "unusable.csv.gz", tiny_rows()[5:])
    with pytest.raises(ExplorerInputError, match="no usable rows"):
        evaluate_generation(unusable, steps=3, device="cpu")


def test_evaluate_the_pipeline_never_looks_up_the_rows_own_formula(tiny_data_dir):
    """NaCl (train row) in Fm-3m: the library's own NaCl is skipped, the KBr template answers it."""
    csv = tiny_data_dir / "mp_structures.csv.gz"
    metrics = evaluate_generation(csv, split="train", model="cfm-uniform", steps=2, workers=1, pipeline=True, n=2)
    assert metrics["pipeline"] and metrics["n"] == 3 and metrics["n_candidates"] == 2
    assert {"match_rate_any", "match_rate_loose_any", "spacegroup_rate", "sources", "first_sources"} <= set(metrics)
    assert metrics["first_sources"].get("prototype", 0) >= 1  # NaCl from KBr; Si and CsCl have no other template
    assert metrics["match_rate_loose"] >= 1 / 3 and metrics["match_rate_loose_any"] >= metrics["match_rate_loose"]
    assert metrics["spacegroup_rate"] >= 0.8


def test_evaluate_only_the_rows_without_a_prototype(tiny_data_dir):
    csv = tiny_data_dir / "mp_structures.csv.gz"
    metrics = evaluate_generation(csv, split="train", model="cfm-uniform", steps=2, workers=1, no_prototype_rows=True)
    assert metrics["no_prototype_rows"] and metrics["rows_read"] == 3 and metrics["n"] == 2  # Si, CsCl
    assert "spacegroup_rate" in metrics


def test_requests_drop_the_space_group_for_models_that_do_not_take_it():
    from explorer.evaluation import evaluation_requests
    from explorer.generators import get_generator

    requests = evaluation_requests([[11, 17]], [225], [-2.0], get_generator("descriptor-mp"))
    assert requests[0].spacegroup is None and requests[0].energy is None and requests[0].species == (11, 17)
    assert evaluation_requests([[11, 17]], [225], [-2.0], get_generator("langevin"))[0].spacegroup == 225
