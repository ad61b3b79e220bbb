"""Distribution metrics of generated structures against reference rows, for every generator family.

The fingerprints are matminer's, as in CDVAE and the papers that report against it:

- structure: ``CrystalNNFingerprint.from_preset("ops")`` of every site, averaged over the sites;
- composition: ``ElementProperty.from_preset("magpie")``, standardised with the mean and standard deviation of
  the reference rows (NaN -> 0).

From them (CDVAE's definitions): **COV-R** (recall) is the share of reference structures that have a valid
generated structure within ``struct_cutoff`` in structure and ``comp_cutoff`` in composition fingerprint
(Euclidean; each minimum taken separately), **COV-P** (precision) the share of generated structures (all of
them, invalid ones count as misses) that are that close to some reference structure; **FD** is the Fréchet
distance between Gaussians fitted to the structure fingerprints of the valid generated and the reference
structures. **validity**: no two atoms closer than 0.5 Å (structural) and SMACT charge neutrality
(compositional), both needed. **EMD** of density (g/cm³) and of the number of elements: the 1-D Wasserstein
distances between generated (valid) and reference.

Reference fingerprints are cached per CSV file (sha256), split and size limit.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .checks import smact_valid
from .data import keyed_cache_path, read_structure_rows
from .errors import ExplorerInputError
from .fileio import cached_arrays, file_sha256

STRUCT_CUTOFF = 0.6  # the thresholds of the issue for MP-20 (the CDVAE protocol); perov_5 and carbon_24 differ
COMP_CUTOFF = 12.0
VERSION = 1


@dataclass
class Fingerprints:
    """Per structure: structure fingerprint (N, 61; NaN where CrystalNN failed), composition fingerprint
    (N, 132), structural and compositional validity, density (g/cm³) and number of elements."""

    structure: np.ndarray
    composition: np.ndarray
    struct_valid: np.ndarray
    comp_valid: np.ndarray
    density: np.ndarray
    n_elements: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.struct_valid & self.comp_valid & np.isfinite(self.structure).all(1)

    def __len__(self) -> int:
        return len(self.density)



_FEATURIZERS = None


def _featurizers():
    global _FEATURIZERS
    if _FEATURIZERS is None:
        from matminer.featurizers.composition import ElementProperty
        from matminer.featurizers.site import CrystalNNFingerprint

        _FEATURIZERS = (CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie"))
    return _FEATURIZERS


def _fingerprint(structure) -> tuple:
    """(structure fp, composition fp, structurally valid, compositionally valid, density, elements)."""
    from .representation import MIN_DISTANCE, min_interatomic_distance

    site, comp = _featurizers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            struct_fp = np.mean([site.featurize(structure, i) for i in range(len(structure))], 0)
        except Exception:  # CrystalNN cannot place some (broken) structures: no fingerprint, not valid
            struct_fp = np.full(len(site.feature_labels()), np.nan)
        comp_fp = np.asarray(comp.featurize(structure.composition), dtype=float)
    distance_ok = len(structure) < 2 or min_interatomic_distance(structure) >= MIN_DISTANCE
    return (struct_fp, comp_fp, distance_ok, smact_valid(structure.composition), float(structure.density),
            len(structure.composition.elements))


def fingerprints(structures: list, workers: int | str | None = None, callback=None) -> Fingerprints:
    """:class:`Fingerprints` of ``structures`` (``workers`` processes, or a Dask scheduler spec such as
    ``"local:2"``; ``callback(done, total)``)."""
    if isinstance(workers, str):  # a Dask scheduler spec (see explorer.distributed)
        from .distributed import map_in_order

        results = map_in_order(workers, _fingerprint, list(structures))
        if callback is not None:
            callback(len(structures), len(structures))
        return _collect(results)
    workers = max(1, min(workers or os.cpu_count() or 1, len(structures) or 1))
    results = []
    if workers == 1:
        for i, s in enumerate(structures):
            results.append(_fingerprint(s))
            if callback is not None:
                callback(i + 1, len(structures))
    else:
        with get_context("spawn").Pool(workers) as pool:
            for i, r in enumerate(pool.imap(_fingerprint, structures, chunksize=8)):
                results.append(r)
                if callback is not None:
                    callback(i + 1, len(structures))
    return _collect(results)


def _collect(results: list) -> Fingerprints:
    if not results:
        raise ExplorerInputError("no structures to fingerprint")
    columns = list(zip(*results))
    return Fingerprints(np.array(columns[0], dtype=float), np.array(columns[1], dtype=float),
                        np.array(columns[2], dtype=bool), np.array(columns[3], dtype=bool),
                        np.array(columns[4], dtype=float), np.array(columns[5], dtype=int))


# ------------------------------------------------------------------------------------------------ metrics


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # near-singular covariances (constant fingerprint entries) are expected
        warnings.simplefilter("ignore")
        root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def coverage_metrics(generated: Fingerprints, reference: Fingerprints, struct_cutoff: float = STRUCT_CUTOFF,
                     comp_cutoff: float = COMP_CUTOFF) -> dict:
    """cov_r, cov_p, fd_crystalnn, validity (and its two parts), emd_density, emd_elements."""
    from scipy.spatial.distance import cdist
    from scipy.stats import wasserstein_distance

    ref = np.isfinite(reference.structure).all(1)  # every reference structure CrystalNN can fingerprint
    if not ref.any():
        raise ExplorerInputError("no reference structure could be fingerprinted")
    valid = generated.valid
    mean = np.nanmean(reference.composition[ref], 0)
    std = np.nanstd(reference.composition[ref], 0)
    std[~(std > 0)] = 1.0

    def scaled(x):
        return np.nan_to_num((x - mean) / std, nan=0.0)

    out = {"n_generated": len(generated), "n_reference": int(ref.sum()),
           "validity": round(float(valid.mean()), 4),
           "struct_validity": round(float(generated.struct_valid.mean()), 4),
           "comp_validity": round(float(generated.comp_valid.mean()), 4),
           "struct_cutoff": struct_cutoff, "comp_cutoff": comp_cutoff}
    if not valid.any():
        return {**out, "cov_r": 0.0, "cov_p": 0.0, "fd_crystalnn": None, "emd_density": None, "emd_elements": None}
    struct = cdist(generated.structure[valid], reference.structure[ref])
    comp = cdist(scaled(generated.composition[valid]), scaled(reference.composition[ref]))
    recall = (struct.min(0) <= struct_cutoff) & (comp.min(0) <= comp_cutoff)
    precision = (struct.min(1) <= struct_cutoff) & (comp.min(1) <= comp_cutoff)
    return {
        **out,
        "cov_r": round(float(recall.mean()), 4),
        "cov_p": round(float(precision.sum() / len(generated)), 4),
        "fd_crystalnn": round(frechet_distance(generated.structure[valid], reference.structure[ref]), 4),
        "emd_density": round(float(wasserstein_distance(generated.density[valid], reference.density[ref])), 4),
        "emd_elements": round(float(wasserstein_distance(generated.n_elements[valid],
                                                         reference.n_elements[ref])), 4),
    }


def reference_fingerprints(csv_path, split: str | None = None, max_atoms: int | None = None,
                           limit: int | None = None, workers: int | None = None, callback=None) -> Fingerprints:
    """Fingerprints of the reference rows, cached on disk per file content, split, size and limit."""
    path = keyed_cache_path(f"coverage-{Path(csv_path).name.split('.')[0]}",
                            [file_sha256(csv_path), split, max_atoms, limit, VERSION])
    return cached_arrays(path, Fingerprints, lambda: fingerprints(
        [r.structure for r in read_structure_rows(csv_path, split, max_atoms, limit)], workers, callback))


def evaluate_coverage(csv_path, model: str | None = None, n: int = 1000, split: str | None = "test",
                      max_atoms: int | None = 20, conditions_split: str = "train", limit: int | None = None,
                      steps: int | None = None, seed: int = 0, device: str = "auto", workers: int | None = None,
                      struct_cutoff: float = STRUCT_CUTOFF, comp_cutoff: float = COMP_CUTOFF,
                      training_structures: bool = False, batch_size: int = 64,
                      unconditional: bool = False, callback=None) -> dict:
    """Coverage metrics of ``n`` structures of a registered model against the ``split`` rows of ``csv_path``.

    Every family here needs a formula and a space group: the conditions are those of ``n`` random rows
    (seeded) of ``conditions_split`` of the same file (default the train split, whose formulas the reference
    split never shares), with the row's formation energy for models that take one. ``training_structures``:
    the sanity row — those ``n`` rows' own structures instead of samples. ``unconditional``: ``n`` samples
    without any condition (models that need none, as the descriptor family — the papers' setting); a model that
    does not take a space group gets the rows' formulas only. ``callback(done, total)``: the sampling's progress
    (the model's steps, as its ``sample_structures`` counts them)."""
    started = time.time()
    if unconditional and training_structures:
        raise ExplorerInputError("--unconditional samples a model; --training-structures uses no model")
    generator = None
    if not training_structures:
        from .generators import GenerationRequest, get_generator

        generator = get_generator(model, task="generation")
    takes_energy = generator is not None and "energy" in generator.conditions
    rows = [] if unconditional else read_structure_rows(csv_path, conditions_split, max_atoms, n, shuffle_seed=seed,
                                                        with_energy=takes_energy)
    if not unconditional and len(rows) < n:
        raise ExplorerInputError(f"only {len(rows)} usable {conditions_split} rows for {n} conditions")
    if training_structures:
        generated, name = [r.structure for r in rows], f"{conditions_split}-structures"
    else:
        from .evaluation import evaluation_requests

        requests = ([GenerationRequest() for _ in range(n)] if unconditional else
                    evaluation_requests([r.species for r in rows], [r.spacegroup for r in rows],
                                        [r.energy for r in rows], generator))
        generator.check(requests[0])
        generated = generator.sample_structures(requests, steps=steps, seed=seed, device=device,
                                                batch_size=batch_size, callback=callback)
        name = generator.name + (" (unconditional)" if unconditional else "")
    sampled = time.time()
    reference = reference_fingerprints(csv_path, split, max_atoms, limit, workers)
    metrics = coverage_metrics(fingerprints(generated, workers), reference, struct_cutoff, comp_cutoff)
    return {**metrics, "model": name, "split": split,
            "conditions_split": None if unconditional else conditions_split, "max_atoms": max_atoms,
            "seed": seed, "sampling_seconds": round(sampled - started, 1), "seconds": round(time.time() - started, 1)}


__all__ = ["Fingerprints", "coverage_metrics", "evaluate_coverage", "fingerprints", "frechet_distance",
           "reference_fingerprints", "smact_valid"]
