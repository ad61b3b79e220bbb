import numpy as np
import pytest
from crystal_fixtures import cesium_chloride, rock_salt_nacl

from explorer.coverage import Fingerprints, coverage_metrics, evaluate_coverage, fingerprints, frechet_distance
from explorer.errors import ExplorerInputError


def _set(structure, composition, valid=None):
    n = len(structure)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    return Fingerprints(np.asarray(structure, float), np.asarray(composition, float), valid, np.ones(n, bool),
                        np.full(n, 3.0), np.full(n, 2))


def test_coverage_counts_pairs_close_in_both_fingerprints():
    reference = _set([[0, 0], [1, 0], [5, 5]], [[0.0], [1.0], [2.0]])
    # composition std of the reference = 0.816: a distance of 12 scaled units is ~9.8 raw units
    generated = _set([[0.1, 0], [5, 5.2], [9, 9], [1, 0]], [[0.0], [2.0], [0.0], [30.0]], valid=[1, 1, 1, 0])
    metrics = coverage_metrics(generated, reference, struct_cutoff=0.6, comp_cutoff=12)
    # recall: ref 0 (gen 0), ref 1 (gen 0 at 0.9 > 0.6? no: gen 0 is 0.9 away -> miss), ref 2 (gen 1)
    assert metrics["cov_r"] == pytest.approx(2 / 3, abs=1e-4)
    # precision: gen 0 and 1 close, gen 2 far, gen 3 invalid -> 2 of 4
    assert metrics["cov_p"] == 0.5
    assert metrics["validity"] == 0.75 and metrics["n_reference"] == 3


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(3.0, abs=1e-6)


def test_fingerprints_of_real_structures():
    fp = fingerprints([rock_salt_nacl(), cesium_chloride()], workers=1)
    assert fp.structure.shape == (2, 61) and fp.composition.shape == (2, 132)
    assert fp.valid.all() and list(fp.n_elements) == [2, 2]
    assert not np.allclose(fp.structure[0], fp.structure[1])  # octahedral vs cubic coordination


def test_sanity_row_on_a_tiny_file(tiny_csv):
    metrics = evaluate_coverage(tiny_csv, n=4, split="train", conditions_split="train", training_structures=True,
                                workers=1)
    assert metrics["cov_r"] == 1.0 and metrics["cov_p"] == 1.0 and metrics["model"] == "train-structures"
    with pytest.raises(ExplorerInputError, match="only 4 usable train rows for 50 conditions"):
        evaluate_coverage(tiny_csv, n=50, split="train", training_structures=True, workers=1)


def test_unconditional_and_training_structures_exclude_each_other(tiny_csv):
    import pytest

    from explorer.coverage import evaluate_coverage
    from explorer.errors import ExplorerInputError

    with pytest.raises(ExplorerInputError, match="--unconditional samples a model"):
        evaluate_coverage(tiny_csv, n=2, unconditional=True, training_structures=True)


def test_model_samples_report_their_progress(tiny_csv):
    calls = []  # ddim takes an energy: the tiny file's NaN-energy train row is no condition (it made NaN samples)
    metrics = evaluate_coverage(tiny_csv, model="ddim", n=3, split="train", conditions_split="train", steps=2,
                                workers=1, callback=lambda done, total: calls.append((done, total)))
    assert metrics["model"] == "ddim" and metrics["n_generated"] == 3
    assert calls and calls[-1][0] == calls[-1][1] > 0  # the bar ends full
