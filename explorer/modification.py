"""Conditional modification (paper §2.2, §5): turn a polymorph into another (more stable) one.

Pairs come from polymorph groups — structures with identical cell contents (same species multiset in the
primitive standard cell), sorted by formation energy: (S_i -> S_0) "lowest" pairs and (S_i -> S_j, i > j > 0)
"non-lowest" pairs, resampled every epoch with equal numbers of both kinds and a cap per group. Conditions:
the target space group, E_diff = E_target - E_init (eV/atom) and the initial structure. Site rows of the two
matrices are aligned by species (both are sorted by atomic number).

| method     | network input            | predicts                 | sampling                         |
|------------|--------------------------|--------------------------|----------------------------------|
| regression | x_init                   | x_target (PBC loss)      | one step                         |
| palette    | x_t (noise) + x_init     | noise ε                  | DDPM from N(0, 1)                |
| cfm        | x_t on the path x_init→x | velocity (minimum image) | Euler from x_init                |
| palette-cfm| x_t (noise path) + x_init| velocity x − ε           | Euler from N(0, 1)               |

:func:`modify` puts *known prototypes* first (:mod:`explorer.prototypes`: train-split structures of the
requested space group with the same stoichiometry pattern, elements substituted) and relaxes every candidate
with M3GNet; :func:`evaluate_modification` measures the same (``prototypes=False`` / ``relax_steps=0`` for the
networks alone).

``palette-cfm`` is Palette's conditioning (the initial structure as an extra input) with the conditional
flow-matching objective of the ``cfm-normal`` generation model, so it can be warm-started from that model
(``--init-from cfm-normal``: the initial-structure input columns start at zero, i.e. the network starts as
the generation model and learns what to take from the initial structure).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np
import torch

from .data import ProcessedSet
from .errors import ExplorerInputError
from .losses import masked_mse, pbc_loss
from .models.conditioning import Conditions, make_conditions
from .objectives import Objective
from .pipeline import GenerationPipeline, resolve_device
from .representation import MATRIX_ROWS
from .schedulers import DDPMScheduler, FlowEulerScheduler, minimum_image, wrap_coordinates

METHODS = ("regression", "palette", "cfm", "palette-cfm")
RELAX_STEPS = 300  # FIRE steps of the relaxation of modified candidates
RELAX_FMAX = 0.05  # eV/Å
SITE_ROWS = slice(0, MATRIX_ROWS - 3)
LATTICE_ROWS = slice(MATRIX_ROWS - 3, MATRIX_ROWS)


def polymorph_groups(data: ProcessedSet, min_size: int = 2) -> list[np.ndarray]:
    """Row indices of structures with identical cell contents, each group sorted by energy (lowest first)."""
    groups = defaultdict(list)
    for i in range(len(data)):
        groups[data.species[i].tobytes()].append(i)
    out = []
    for members in groups.values():
        if len(members) >= min_size:
            members = np.array(members)
            out.append(members[np.argsort(data.energy[members], kind="stable")])
    return out


def lowest_pairs(groups: list[np.ndarray]) -> np.ndarray:
    """(initial, target) pairs S_i -> S_0 for every non-lowest polymorph."""
    pairs = [(g[i], g[0]) for g in groups for i in range(1, len(g))]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def non_lowest_pairs(groups: list[np.ndarray]) -> np.ndarray:
    """(initial, target) pairs S_i -> S_j with i > j > 0."""
    pairs = [(g[i], g[j]) for g in groups for i in range(2, len(g)) for j in range(1, i)]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def epoch_pairs(groups: list[np.ndarray], rng: np.random.Generator, cap_per_group: int = 6) -> np.ndarray:
    """One epoch of pairs: every group contributes at most ``cap_per_group`` lowest pairs, and as many
    non-lowest pairs (sampled) as lowest ones are drawn in total."""
    lowest, others = [], []
    for g in groups:
        low = lowest_pairs([g])
        if len(low) > cap_per_group:
            low = low[rng.choice(len(low), cap_per_group, replace=False)]
        lowest.append(low)
        high = non_lowest_pairs([g])
        if len(high):
            others.append(high[rng.choice(len(high), min(cap_per_group, len(high)), replace=False)])
    lowest = np.concatenate(lowest) if lowest else np.zeros((0, 2), np.int64)
    others = np.concatenate(others) if others else np.zeros((0, 2), np.int64)
    if len(others) > len(lowest):
        others = others[rng.choice(len(others), len(lowest), replace=False)]
    pairs = np.concatenate([lowest, others])
    return pairs[rng.permutation(len(pairs))]


def align_sites(initial: np.ndarray, target: np.ndarray, species: np.ndarray) -> np.ndarray:
    """Target coordinate rows permuted, within each element, to sit closest to the initial rows
    (minimum-image fractional distance, optimal assignment)."""
    from scipy.optimize import linear_sum_assignment

    aligned = target.copy()
    n = int((species > 0).sum())
    for z in np.unique(species[:n]):
        rows = np.flatnonzero(species[:n] == z)
        if len(rows) < 2:
            continue
        delta = initial[rows, None, :] - target[None, rows, :]
        cost = np.square(delta - np.round(delta)).sum(-1)
        _, columns = linear_sum_assignment(cost)
        aligned[rows] = target[rows[columns]]
    return aligned


def pair_tensors(data: ProcessedSet, pairs: np.ndarray) -> tuple[torch.Tensor, Conditions]:
    """(x_target, Conditions with initial = x_init, spacegroup = target's, energy = E_diff); the target's
    sites are aligned to the initial ones (see :func:`align_sites`)."""
    init, target = pairs[:, 0], pairs[:, 1]
    x1 = np.stack([align_sites(data.matrix[i], data.matrix[t], data.species[t]) for i, t in pairs])
    cond = make_conditions(data.species[target], data.spacegroup[target],
                           data.energy[target] - data.energy[init], initial=data.matrix[init])
    return torch.from_numpy(x1), cond


def perturbed_pairs(data: ProcessedSet, index: np.ndarray, rng: np.random.Generator, rattle: float = 0.03,
                    strain: float = 0.03) -> tuple[torch.Tensor, Conditions]:
    """Augmentation (the issue's "perturbed copies of ground states as extra initial structures"): each
    structure is its own target; its initial structure is a copy whose fractional coordinates are moved by
    N(0, ``rattle``) and whose lattice entries are scaled by 1 + N(0, ``strain``); E_diff = 0 eV/atom. It
    teaches the model to keep what is already right in the initial structure, from all training structures
    (not only the few thousand polymorph groups)."""
    x1 = data.matrix[index].astype(np.float32)
    initial = x1.copy()
    rows = data.species[index] > 0
    noise = rng.normal(0.0, rattle, size=(len(index), data.species.shape[1], 3)).astype(np.float32)
    initial[:, : data.species.shape[1]] = np.where(rows[..., None], np.mod(x1[:, : data.species.shape[1]] + noise, 1.0),
                                                   0.0)
    initial[:, LATTICE_ROWS] *= 1.0 + rng.normal(0.0, strain, size=(len(index), 3, 3)).astype(np.float32)
    cond = make_conditions(data.species[index], data.spacegroup[index], np.zeros(len(index), np.float32),
                           initial=initial)
    return torch.from_numpy(x1), cond


def regression_step(model, cond: Conditions) -> torch.Tensor:
    """One-step prediction of the target as a displacement of the initial structure (the network starts as
    the identity map, which is already close for similar polymorphs)."""
    zeros = torch.zeros(cond.initial.shape[0], device=cond.initial.device)
    return cond.initial + model(cond.initial, zeros, cond)


class ModificationObjective:
    """Training loss of a modification model on a batch (x_target, cond with ``initial``)."""

    def __init__(self, method: str, num_train_timesteps: int = 1000):
        if method not in METHODS:
            raise ValueError(f"unknown modification method {method!r}; choose from {METHODS}")
        self.method = method
        self.ddpm = DDPMScheduler(num_train_timesteps) if method == "palette" else None
        self.flow = Objective("cfm-normal") if method == "palette-cfm" else None

    def __call__(self, model, x1: torch.Tensor, cond: Conditions):
        batch, x0, rows = x1.shape[0], cond.initial, cond.row_mask()
        if self.method == "regression":
            pred = regression_step(model, cond)
            lattice_mask = torch.zeros_like(rows)
            lattice_mask[:, LATTICE_ROWS] = True
            pbc = pbc_loss(pred, x1, cond.site_mask)
            lattice = masked_mse(pred, x1, lattice_mask)
            return pbc + lattice, {"pbc": float(pbc.detach()), "lattice_mse": float(lattice.detach())}
        if self.method == "palette":
            steps = torch.randint(0, self.ddpm.num_train_timesteps, (batch,))
            noise = torch.randn_like(x1)
            eps = model(self.ddpm.add_noise(x1, noise, steps), self.ddpm.model_time(steps), cond)
            mse = masked_mse(eps, noise, rows)
            return mse, {"mse": float(mse.detach())}
        if self.method == "palette-cfm":
            return self.flow(model, x1, cond)
        t = torch.rand(batch)
        delta = x1 - x0
        delta[:, SITE_ROWS] = minimum_image(delta[:, SITE_ROWS])
        xt = wrap_coordinates(x0 + t.view(-1, 1, 1) * delta)
        mse = masked_mse(model(xt, t, cond), delta, rows)
        return mse, {"mse": float(mse.detach())}


class ModificationPipeline:
    """Samples target structures from initial ones with a trained modification model."""

    def __init__(self, model, method: str, device="cpu"):
        if method not in METHODS:
            raise ValueError(f"unknown modification method {method!r}; choose from {METHODS}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.method = method

    @torch.no_grad()
    def __call__(self, cond: Conditions, steps: int = 100, generator: torch.Generator | None = None) -> torch.Tensor:
        cond = cond.to(self.device)
        batch = cond.energy.shape[0]
        rows = cond.row_mask().unsqueeze(-1).float()
        if self.method == "regression":
            x = regression_step(self.model, cond)
        elif self.method == "palette-cfm":
            x = GenerationPipeline(self.model, "cfm-normal", device=self.device)(cond, steps, generator).to(self.device)
        elif self.method == "palette":
            scheduler = DDPMScheduler()
            scheduler.set_timesteps(steps)
            x = torch.randn((batch, MATRIX_ROWS, 3), generator=generator).to(self.device) * rows
            for t in scheduler.timesteps:
                eps = self.model(x, scheduler.model_time(t).expand(batch).to(self.device), cond)
                x = scheduler.step(eps, t, x, generator=generator if self.device.type == "cpu" else None) * rows
        else:
            scheduler = FlowEulerScheduler(periodic=True)
            scheduler.set_timesteps(steps)
            x = cond.initial.clone()
            for t in scheduler.timesteps:
                v = self.model(x, scheduler.model_time(t).expand(batch).to(self.device), cond)
                x = scheduler.step(v, t, x) * rows
        return wrap_coordinates((x * rows).float().cpu())


def load_modification_pipeline(model: str | None = None, device: str = "auto"):
    """(pipeline, manifest entry) of a shipped modification model (default: the manifest's
    ``default_modification``). A method name ("regression", "palette", "cfm", "palette-cfm") stands for the
    shipped ``mod-<method>`` model."""
    from .pretrained import load_pretrained, read_manifest

    if model is None:
        model = read_manifest().get("default_modification")
        if model is None:
            raise ExplorerInputError("no modification model is shipped yet (pretrained/manifest.json)")
    if model in METHODS:
        model = f"mod-{model}"
    network, entry = load_pretrained(model)
    if entry.method not in METHODS:
        raise ExplorerInputError(f"model {entry.name!r} is a {entry.method} generation model, not a modification model")
    return ModificationPipeline(network, entry.method, device), entry


def sample_best_modified(pipeline: ModificationPipeline, cond: Conditions, species: list[np.ndarray],
                         spacegroups, draws: int = 1, steps: int = 100,
                         generator: torch.Generator | None = None) -> list:
    """One structure per row of ``cond`` (``species[i]``: its atomic numbers), chosen among ``draws`` samples
    by :func:`~explorer.generation.condition_score` (valid, requested space group detected; first draw on
    ties). The target structure is never looked at. A regression model is deterministic: ``draws`` must be 1."""
    from .generation import best_draw
    from .representation import decode

    draws = int(draws)
    if draws < 1:
        raise ExplorerInputError(f"draws must be >= 1, got {draws}")
    if draws > 1 and pipeline.method == "regression":
        raise ExplorerInputError("the regression model is deterministic: several draws give the same structure")
    options = []
    for _ in range(draws):
        matrices = pipeline(cond, steps=steps, generator=generator).numpy()
        options.append([decode(m, z) for m, z in zip(matrices, species)])
    if draws == 1:
        return options[0]
    return [best_draw([draw[i] for draw in options], spacegroup) for i, spacegroup in enumerate(spacegroups)]


def prototype_slots(n: int, prototypes) -> int:
    """How many of ``n`` candidates may be prototypes: ``prototypes`` None/"auto" = half of them (rounded up)
    when the library's data files are present, else none; True = half of them, and the data files must be
    there; False or 0 = none; an int = at most that many."""
    from .prototypes import prototype_library_available

    half = (int(n) + 1) // 2
    if prototypes is None or (isinstance(prototypes, str) and prototypes == "auto"):
        return half if prototype_library_available() else 0
    if prototypes is True:
        require_prototype_library()
        return half
    if prototypes is False:
        return 0
    try:
        count = int(prototypes)
    except (TypeError, ValueError):
        count = -1
    if count < 0 or count != prototypes:
        raise ExplorerInputError(f"prototypes must be 'auto', True/False or a whole number >= 0, got {prototypes!r}")
    if count:
        require_prototype_library()
    return min(count, int(n))


def require_prototype_library() -> None:
    """Clear error when the structure files the prototype library is built from are not in the data directory."""
    from .config import data_dir
    from .prototypes import prototype_library_available

    if not prototype_library_available():
        raise ExplorerInputError(f"known prototypes need mp_structures.csv.gz and wbm_structures.csv.gz in the data "
                                 f"directory ({data_dir()}; set EXPLORER_DATA_DIR) — or ask for none "
                                 "(prototypes=0, --prototypes 0 / --no-prototypes)")


def find_prototypes(crystal, spacegroup: int, k: int, other_formulas_only: bool = False) -> list:
    """Up to ``k`` :class:`~explorer.prototypes.Prototype` s for an encoded initial structure: known structures
    of ``spacegroup`` with its stoichiometry pattern, its elements substituted in, scaled to its volume per atom
    (Å³). A prototype that is the initial structure itself (within StructureMatcher tolerances; e.g. the user's
    own known structure, asked for in its own space group) says so in ``same_as_reference`` and keeps its rank:
    the space group asked for may be one the initial structure only nearly has."""
    from .prototypes import load_prototype_library
    from .representation import decode

    if k < 1:
        return []
    initial = decode(crystal.matrix, crystal.atomic_numbers)
    return load_prototype_library().query(crystal.atomic_numbers, spacegroup, k=k,
                                          volume_per_atom=initial.volume / len(initial),
                                          other_formulas_only=other_formulas_only, reference=initial)


def relaxation_potential(potential="m3gnet"):
    """The shared loaded potential (:func:`~explorer.relax.shared_potential`), with a clear error that says how
    to do without one when there is none to load."""
    from .relax import shared_potential

    try:
        return shared_potential(potential)
    except ExplorerInputError as exc:
        raise ExplorerInputError(f"{exc} — or leave the candidates unrelaxed (relax_steps=0, "
                                 "--relax-steps 0)") from None


def relax_structures(structures: list, steps: int = RELAX_STEPS, fmax: float = RELAX_FMAX,
                     potential="m3gnet") -> list[tuple]:
    """(structure, info) per input: relaxed (positions and cell) with the interatomic potential (M3GNet by
    default) in at most ``steps`` FIRE steps to ``fmax`` (eV/Å); info = {"potential", "status", "steps",
    "energy_per_atom" (eV/atom)}. A structure whose relaxation fails comes back unchanged (its status and
    error say why)."""
    from .relax import relax

    check_relax_settings(steps, fmax)
    if not structures:
        return []
    loaded = relaxation_potential(potential)
    results = relax(structures, potential=loaded, fmax=fmax, steps=int(steps), formation="none")
    out = []
    for result, structure in zip(results, structures):
        energy = float(result.energy_per_atom) if math.isfinite(result.energy_per_atom) else None
        info = {"potential": loaded.name, "status": result.status, "steps": int(result.steps),
                "energy_per_atom": energy}
        if result.error:
            info["error"] = result.error
        out.append((result.structure if result.structure is not None else structure, info))
    return out


def check_relax_settings(steps: int, fmax: float) -> None:
    """Clear errors for relaxation settings: steps >= 0, fmax > 0 eV/Å."""
    if int(steps) != steps or steps < 0:
        raise ExplorerInputError(f"relaxation steps must be a whole number >= 0, got {steps}")
    if not (math.isfinite(fmax) and fmax > 0):
        raise ExplorerInputError(f"relaxation fmax must be > 0 eV/Å, got {fmax}")


def modify(structure, spacegroup: int, energy_delta: float, model: str | None = None, n: int = 8,
           steps: int = 100, seed: int = 0, device: str = "auto", jitter: float = 0.02, snap: bool = False,
           draws: int = 1, prototypes="auto", relax_steps: int = RELAX_STEPS, relax_fmax: float = RELAX_FMAX,
           potential="m3gnet"):
    """Candidates of the same composition as ``structure`` in ``spacegroup``, with a target formation-energy
    change ``energy_delta`` (eV/atom, negative = more stable).

    The first candidates are known structures of the requested space group with the same stoichiometry
    pattern, the structure's elements substituted in (:mod:`explorer.prototypes`), best first (ground-state
    templates first; ``energy_delta`` does not enter their choice); their ``model`` is "prototype" and
    ``extra["prototype"]`` says where each came from and whether it is the uploaded structure itself
    (``same_as_reference``). How many: ``prototypes`` "auto" = up to half of ``n`` when the data directory
    holds the structure files, True = the same but the files must be there, an int = at most that many,
    0 = none.

    The rest are sampled from the modification model. The regression model is deterministic: its samples
    start from copies of the structure whose fractional coordinates are jittered by up to ``jitter`` (the first
    copy is not jittered). ``draws > 1`` (sampling models): each sample is the best of that many (see
    :func:`sample_best_modified`).

    ``relax_steps > 0``: every candidate is then relaxed with ``potential`` (M3GNet; at most ``relax_steps``
    FIRE steps to ``relax_fmax`` eV/Å, see :func:`relax_structures`; ``extra["relaxation"]`` holds the
    potential, status and energy per atom); 0 = as sampled."""
    from .generation import check_energy, make_candidate
    from .representation import encode
    from .spacegroups import check_spacegroup

    spacegroup = check_spacegroup(spacegroup)
    energy_delta = check_energy(energy_delta)
    if int(n) < 1:
        raise ExplorerInputError(f"n must be >= 1, got {n}")
    check_relax_settings(relax_steps, relax_fmax)
    slots = prototype_slots(n, prototypes)
    crystal = encode(structure)
    pipeline, entry = load_modification_pipeline(model, device)
    supported = set(entry.info.get("elements", []))
    unsupported = sorted({int(z) for z in crystal.atomic_numbers} - supported) if supported else []
    if unsupported:
        from .elements import symbols

        names = ", ".join(symbols()[z - 1] for z in unsupported)
        raise ExplorerInputError(f"the modification model was not trained on {names}; no support for this composition")
    found = find_prototypes(crystal, spacegroup, slots)
    structures = [p.structure for p in found]
    count = int(n) - len(found)
    if count:
        generator = torch.Generator().manual_seed(int(seed))
        initial = np.repeat(crystal.matrix[None], count, axis=0)
        if entry.method == "regression" and count > 1:
            noise = (torch.rand((count - 1, crystal.n_sites, 3), generator=generator).numpy() - 0.5) * 2 * jitter
            initial[1:, : crystal.n_sites] = np.mod(initial[1:, : crystal.n_sites] + noise, 1.0)
        species = np.zeros((count, 60), dtype=np.int64)
        species[:, : crystal.n_sites] = crystal.atomic_numbers
        cond = make_conditions(species, np.full(count, spacegroup), np.full(count, energy_delta, np.float32), initial)
        structures += sample_best_modified(pipeline, cond, [crystal.atomic_numbers] * count, [spacegroup] * count,
                                           draws, int(steps), generator)
    relaxed = (relax_structures(structures, int(relax_steps), relax_fmax, potential) if relax_steps
               else [(s, None) for s in structures])
    candidates = []
    for index, (result, info) in enumerate(relaxed):
        prototype = found[index] if index < len(found) else None
        candidate = make_candidate(result, spacegroup, energy_delta, snap=snap, index=index,
                                   model="prototype" if prototype else entry.name,
                                   steps=0 if prototype else int(steps), seed=0 if prototype else int(seed))
        if prototype is not None:
            candidate.extra["prototype"] = prototype.origin()
        if info is not None:
            candidate.extra["relaxation"] = info
        candidates.append(candidate)
    return candidates


def evaluate_modification(csv_path, limit: int | None = None, model: str | None = None, steps: int = 100,
                          seed: int = 0, device: str = "auto", workers: int | None = None,
                          split: str | None = None, draws: int = 1, prototypes: bool = True,
                          relax_steps: int = RELAX_STEPS) -> dict:
    """Pairs from the polymorph groups inside a CSV (each non-lowest polymorph -> the lowest one of its cell
    contents); one structure per pair, StructureMatcher against the target.

    With ``prototypes`` (needs the data directory's structure files) the structure is the best prototype of
    the target's space group (:mod:`explorer.prototypes`; templates of the pair's own formula are never used,
    so the target cannot be looked up) and, for pairs without one, a model sample; without, always a model
    sample (the best of ``draws``, see :func:`sample_best_modified`). ``prototype_share``: the fraction of
    pairs answered by a prototype. ``relax_steps > 0`` (as :func:`modify` does by default): every structure is
    relaxed with M3GNet (at most that many FIRE steps, fmax 0.05 eV/Å) before matching."""
    check_relax_settings(relax_steps, RELAX_FMAX)
    if prototypes:
        require_prototype_library()
    from .data import process_rows, read_rows
    from .evaluation import match_metrics
    from .representation import CrystalMatrix, decode

    started = time.time()
    rows = read_rows(csv_path)
    if split is not None:
        rows = [row for row in rows if row.get("split") == split]
    data = process_rows(rows, workers=workers)
    data = data.select(np.isfinite(data.energy))
    pairs = lowest_pairs(polymorph_groups(data))
    if limit is not None:
        pairs = pairs[:limit]
    if not len(pairs):
        raise ExplorerInputError(f"no polymorph pairs (same cell contents, >= 2 structures) in {csv_path}")
    pipeline, entry = load_modification_pipeline(model, device)
    species = [data.species[target][: data.n_sites[target]] for target in pairs[:, 1]]
    targets = [decode(data.matrix[target], z) for target, z in zip(pairs[:, 1], species)]
    generated = [None] * len(pairs)
    if prototypes:
        for k, (initial, target) in enumerate(pairs):
            crystal = CrystalMatrix(data.matrix[initial], species[k], int(data.spacegroup[initial]))
            found = find_prototypes(crystal, int(data.spacegroup[target]), 1, other_formulas_only=True)
            generated[k] = found[0].structure if found else None
    by_prototype = sum(s is not None for s in generated)
    remaining = np.array([k for k, s in enumerate(generated) if s is None], dtype=np.int64)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(remaining), 64):
        chunk = remaining[start : start + 64]
        _, cond = pair_tensors(data, pairs[chunk])
        samples = sample_best_modified(pipeline, cond, [species[k] for k in chunk], data.spacegroup[pairs[chunk, 1]],
                                       draws, steps, generator)
        for k, structure in zip(chunk, samples):
            generated[k] = structure
    if relax_steps:
        generated = [structure for structure, _ in relax_structures(generated, relax_steps, RELAX_FMAX)]
    return {
        **match_metrics(generated, targets, workers),
        "seconds": round(time.time() - started, 1),
        "model": f"{entry.name}+prototypes" if prototypes else entry.name,
        "steps": steps,
        "split": split,
        "draws": draws,
        "prototype_share": round(by_prototype / len(pairs), 4),
        "relax_steps": relax_steps,
    }
