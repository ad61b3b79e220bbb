"""The shipped descriptor models behind the generator interface: formula inpainting, unconditional sampling,
one-line errors for conditions they do not take."""

from __future__ import annotations

import pytest

from explorer.errors import ExplorerInputError
from explorer.generators import GenerationRequest, get_generator, model_info
from explorer.generators.descriptor.generator import cell_lattice

QUICK = {"trials": 2, "hops": 2, "iterations": 30}


def test_registered_with_formula_condition_only():
    info = model_info("descriptor-perov")
    assert info.family == "descriptor"
    assert info.conditions == ["formula"]
    assert info.info["sha256"]


def test_formula_is_kept_and_progress_counts_steps_and_hops():
    generator = get_generator("descriptor-perov")
    request = GenerationRequest(species=(8, 8, 8, 22, 38))  # SrTiO3
    seen = []
    out = generator.sample_structures([request, request], steps=20, seed=0, reconstruction=QUICK,
                                      callback=lambda done, total: seen.append((done, total)))
    assert [sorted(site.specie.Z for site in s) for s in out] == [[8, 8, 8, 22, 38]] * 2
    rounds = generator.reconstructor(sampled=True, **QUICK).rounds  # hops count over all rounds
    assert seen[-1] == (20 + rounds * QUICK["hops"],) * 2
    assert all(done <= total for done, total in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(s.volume > 10 for s in out)


def test_unconditional_samples_use_training_elements():
    generator = get_generator("descriptor-carbon")
    out = generator.sample_structures([GenerationRequest()], steps=10, seed=1, reconstruction=QUICK)
    assert {site.specie.symbol for site in out[0]} == {"C"}
    assert 1 <= len(out[0]) <= 24


def test_resampling_fixes_the_decoded_composition_and_counts_both_passes():
    generator = get_generator("descriptor-perov")
    seen = []
    settings = {"neutral": True, "element_penalty": 0.2, "resample": True}
    out = generator.sample_structures([GenerationRequest()], steps=10, seed=2, reconstruction=QUICK,
                                      composition=settings, callback=lambda done, total: seen.append((done, total)))
    rounds = generator.reconstructor(sampled=True, **QUICK).rounds
    assert seen[-1] == (2 * 10 + rounds * QUICK["hops"],) * 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert 2 <= len({site.specie.symbol for site in out[0]}) <= 6
    assert generator.composition_settings(neutral=False)["neutral"] is False


def test_sampled_vectors_reconstruct_with_the_models_sampling_settings():
    generator = get_generator("descriptor-perov")
    info = generator.info.info
    assert generator.reconstructor(**QUICK).rounds == info["reconstruction"]["rounds"]  # a structure's own vector
    assert generator.reconstructor(sampled=True, **QUICK).rounds == info["sampled_reconstruction"]["rounds"]
    assert generator.reconstructor(sampled=True, **QUICK).permute == info["reconstruction"]["permute"]  # the rest kept
    assert generator.reconstructor(sampled=True, rounds=2, **QUICK).rounds == 2  # options over both


def test_bad_conditions_are_one_line_errors():
    generator = get_generator("descriptor-carbon")
    with pytest.raises(ExplorerInputError, match="does not take a space group"):
        generator.check(GenerationRequest(species=(6, 6), spacegroup=227))
    with pytest.raises(ExplorerInputError, match="Na, Cl are not among"):
        generator.check(GenerationRequest(species=(11, 17)))
    with pytest.raises(ExplorerInputError, match="at most 24 atoms"):
        generator.check(GenerationRequest(species=(6,) * 30))
    with pytest.raises(ExplorerInputError, match="steps must be in 1..2000"):
        generator.steps_used(5000)


def test_cell_lattice_replaces_angles_that_cannot_close_a_cell():
    assert cell_lattice([3, 3, 3, 150, 150, 150]).angles == pytest.approx((90, 90, 90))
    assert cell_lattice([3, 4, 5, 80, 95, 100]).abc == pytest.approx((3, 4, 5))


def test_the_models_template_starts_wait_for_no_library_and_fit_the_trials():
    generator = get_generator("descriptor-mp")
    assert generator.info.info["reconstruction"]["templates"] == 3
    assert generator.reconstructor(**QUICK).templates == 0  # no library built or cached here: random starts only
    with pytest.raises(ExplorerInputError, match="templates must be"):
        generator.reconstructor(trials=2, templates=3)


def test_a_structures_own_vector_starts_from_the_models_training_rows(tiny_data_dir, srtio3):
    import shutil

    generator = get_generator("descriptor-perov")
    assert generator.info.info["reconstruction"]["template_data"]["file"] == "perov_5.csv.gz"
    assert generator.reconstructor(**QUICK).templates == 0  # its data file is not in this data directory
    shutil.copy(tiny_data_dir / "mp_structures.csv.gz", tiny_data_dir / "perov_5.csv.gz")  # SrTiO3 in val
    reconstructor = generator.reconstructor(**QUICK)
    assert reconstructor.templates == 2  # the model's 3, within the 2 trials asked for
    numbers = [site.specie.Z for site in srtio3]
    assert len(reconstructor.template_starts.starts(numbers, srtio3.lattice)) == 1
    assert generator.reconstructor(sampled=True, **QUICK).templates == 0  # sampled vectors: the library (not here)
