"""Structures from StructRepDiff vectors (paper 001): ``explorer reconstruct`` and ``explorer evaluate
reconstruction``.

:func:`reconstruct` recovers the positions of a crystal from its vector — of a real structure (its own EAD
block, composition and Niggli cell) or of a vector file (a generated one; the model's layout says where each
part is). :func:`evaluate_reconstruction` is the paper's Table 1: the rows of a CSV reconstructed from their own
descriptors and matched against themselves. The loss's entry scales come from reference crystals: the model's
(its training rows) for :func:`reconstruct`, 300 seeded random rows of the CSV's train split (its val split
when it has no train split, as carbon_24 here) for :func:`evaluate_reconstruction`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .errors import ExplorerInputError

REFERENCE_ROWS = 300


def _descriptor_model(model: str | None):
    from .generators import get_generator

    generator = get_generator(model or "descriptor-mp", task="generation")
    if generator.family != "descriptor":
        raise ExplorerInputError(f"model {generator.name!r} is a {generator.family} model; reconstruction needs a "
                                 "descriptor model (e.g. descriptor-mp)")
    return generator


def read_vector(path) -> np.ndarray:
    """A vector from a .npy file, a JSON list or whitespace/comma-separated numbers (one-line error otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"vector file not found: {path}")
    try:
        if path.suffix == ".npy":
            vector = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            vector = np.asarray(json.loads(path.read_text()), dtype=float)
        else:
            vector = np.asarray(path.read_text().replace(",", " ").split(), dtype=float)
    except (ValueError, OSError) as error:
        raise ExplorerInputError(f"cannot read a vector from {path.name}: {error}") from None
    vector = np.asarray(vector, dtype=float).squeeze()
    if vector.ndim != 1 or not np.isfinite(vector).all():
        raise ExplorerInputError(f"{path.name} must hold one finite vector, got shape {vector.shape}")
    return vector


def reconstruct(structure=None, vector=None, model: str | None = None, seed: int = 0, callback=None, **options):
    """(reconstructed Structure, loss) from a pymatgen ``structure`` (its own descriptor) or a ``vector`` of
    ``model``'s layout (default descriptor-mp). ``options``: :class:`~explorer.generators.descriptor.
    reconstruction.Reconstructor` settings over the model's; ``callback(report)`` after each hop."""
    from .generators.descriptor.generator import cell_lattice
    from .generators.descriptor.vector import ead_block, reduced_cell

    if (structure is None) == (vector is None):
        raise ExplorerInputError("give a structure or a vector to reconstruct")
    generator = _descriptor_model(model)
    layout = generator.layout
    if structure is not None:
        reduced = reduced_cell(structure)
        if len(reduced) > 60:
            raise ExplorerInputError(f"reconstruction takes cells of at most 60 atoms; this one has {len(reduced)}")
        target = ead_block([reduced], layout.params)
        numbers, lattice = [site.specie.Z for site in reduced], reduced.lattice
    else:
        vector = np.asarray(vector, dtype=float)
        numbers, parameters = layout.decode(vector, max_atoms=60)
        target, lattice = vector[None, : layout.n_ead], cell_lattice(parameters)
    result = generator.reconstructor(**options).run(target, [numbers], [lattice], generator.loaded["scale"],
                                                    seed=seed, callback=callback)[0]
    return result.structure, result.loss


def reference_scale(csv_path, max_atoms: int, params):
    """Entry scales of the reconstruction loss from the CSV's train rows (its val rows without a train split)."""
    from .data import read_rows, read_structure_rows
    from .generators.descriptor.reconstruction import entry_scale
    from .generators.descriptor.vector import ead_block, reduced_cell

    splits = {row.get("split") for row in read_rows(csv_path)}
    split = "train" if "train" in splits else "val" if "val" in splits else None
    rows = read_structure_rows(csv_path, split, max_atoms, REFERENCE_ROWS, shuffle_seed=2)
    return entry_scale(ead_block([reduced_cell(r.structure) for r in rows], params), params), split


def evaluate_reconstruction(csv_path, split: str | None = None, limit: int | None = None, max_atoms: int = 20,
                            seed: int = 0, workers: int | None = None, batch: int = 16, callback=None,
                            params=None, **options) -> dict:
    """Reconstruct the rows of ``csv_path`` (``split``, at most ``max_atoms`` atoms, the first ``limit``) from
    their own EAD blocks with the exact composition and Niggli lattice, and match each against its row:
    n, match_rate (StructureMatcher 0.3 / 0.5 / 10), match_rate_strict (0.2 / 0.3 / 5), rmse (of the loose
    matches), validity, mean loss, seconds_per_structure (reconstruction only). ``options``: Reconstructor
    settings (default: the paper's 6 trials x 7 hops x 300 iterations; ``template_data`` that holds these rows
    leaves them out); ``callback(done, total)`` per batch."""
    from .data import read_structure_rows
    from .evaluation import match_all, summarize_matches
    from .generators.descriptor.ead import EADParams
    from .generators.descriptor.reconstruction import Reconstructor
    from .generators.descriptor.templates import with_template_source
    from .generators.descriptor.vector import ead_block, reduced_cell

    params = params or EADParams()
    rows = read_structure_rows(csv_path, split, max_atoms, limit)
    scale, scale_split = reference_scale(csv_path, max_atoms, params)
    targets = [reduced_cell(r.structure) for r in rows]
    reconstructor = Reconstructor(params, **with_template_source(options, exclude=[r.structure for r in rows]))
    started, out, losses = time.time(), [], []
    for start in range(0, len(targets), batch):
        part = targets[start : start + batch]
        results = reconstructor.run(ead_block(part, params), [[s.specie.Z for s in x] for x in part],
                                    [x.lattice for x in part], scale, seed=seed + start)
        out += [r.structure for r in results]
        losses += [r.loss for r in results]
        if callback is not None:
            callback(len(out), len(targets))
    seconds = time.time() - started
    summary = summarize_matches(match_all(out, targets, workers), out)
    return {"n": summary["n"], "match_rate": summary["match_rate_loose"], "match_rate_strict": summary["match_rate"],
            "rmse": summary["rmse"], "validity": summary["validity"], "loss_median": round(float(np.median(losses)), 6),
            "seconds_per_structure": round(seconds / len(out), 2), "split": split, "max_atoms": max_atoms,
            "scale_split": scale_split, "settings": {"trials": reconstructor.trials, "hops": reconstructor.hops,
                                                     "iterations": reconstructor.iterations,
                                                     "starts": reconstructor.starts, "step": reconstructor.step,
                                                     "lr": reconstructor.lr, "rounds": reconstructor.rounds,
                                                     "solved": reconstructor.solved,
                                                     "templates": reconstructor.templates,
                                                     "template_data": options.get("template_data"),
                                                     "swap": reconstructor.swap,
                                                     "permute": reconstructor.permute}, "seed": seed}


__all__ = ["evaluate_reconstruction", "read_vector", "reconstruct", "reference_scale"]
