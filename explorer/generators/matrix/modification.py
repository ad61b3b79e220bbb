"""Training side of the matrix family's modification models (paper §2.2, §5): aligned (initial, target) pair
tensors, the perturbed-copy augmentation and the training objective of each method.

| method     | network input            | predicts                 | sampling                         |
|------------|--------------------------|--------------------------|----------------------------------|
| regression | x_init                   | x_target (PBC loss)      | one step                         |
| palette    | x_t (noise) + x_init     | noise ε                  | DDPM from N(0, 1)                |
| cfm        | x_t on the path x_init→x | velocity (minimum image) | Euler from x_init                |
| palette-cfm| x_t (noise path) + x_init| velocity x − ε           | Euler from N(0, 1)               |

Sampling runs through :class:`~explorer.generators.matrix.pipeline.ModificationPipeline`, which reuses the
generation loop. Pairs are resampled every epoch with equal numbers of both kinds and a cap per group
(:func:`explorer.polymorphs.epoch_pairs`); site rows of the two matrices are aligned by species (both are
sorted by atomic number).

``palette-cfm`` is Palette's conditioning (the initial structure as an extra input) with the conditional
flow-matching objective of the ``cfm-normal`` generation model, so it can be warm-started from that model
(``--init-from cfm-normal``: the initial-structure input columns start at zero).
"""

from __future__ import annotations

import numpy as np
import torch

from ...data import ProcessedSet
from ...models.conditioning import Conditions, make_conditions
from ...representation import MATRIX_ROWS, minimum_image, wrap_coordinates
from ...schedulers import DDPMScheduler
from .losses import masked_mse, pbc_loss
from .objectives import Objective
from .pipeline import MODIFICATION_METHODS as METHODS
from .pipeline import regression_step

SITE_ROWS = slice(0, MATRIX_ROWS - 3)
LATTICE_ROWS = slice(MATRIX_ROWS - 3, MATRIX_ROWS)


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
