"""Training of the langevin family: denoising score matching on asymmetric units, positions and lattice
noised together at one level per structure (weights sigma^2, so every level counts alike), in the shared
resumable loop (:func:`explorer.generators.training.train_model`). Training never runs in CI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from ...fileio import atomic_write_text
from ..training import TrainConfig, ema_weights, fit_summary, index_batches, train_model, warm_start
from .dataset import AsymmetricSet
from .graph import Crystals
from .lattice import FAMILIES, LatticeMap, family, fit_element_volumes
from .model import ScoreNetwork
from .noise import SIGMA_LATTICE, SIGMA_POSITIONS, sigmas
from .wyckoff import SplitPrior, cell_counts

METHOD = "langevin"


def _atom_counts(data: AsymmetricSet) -> np.ndarray:
    """(S, 119) atoms of each element in each conventional cell."""
    counts = np.zeros((len(data), 119))
    for i in range(len(data)):
        unit = data.unit(i)
        for z, n in cell_counts(unit.spacegroup, unit.numbers, unit.wyckoff).items():
            counts[i, z] = n
    return counts


def _cell_volumes(parameters: np.ndarray) -> np.ndarray:
    from .lattice import lattice_matrices

    p = torch.tensor(parameters, dtype=torch.float64)
    p = torch.cat([p[:, :3], p[:, 3:].deg2rad()], 1)
    return torch.det(lattice_matrices(p)).abs().numpy()


def fit_prior(train: AsymmetricSet) -> dict:
    """What sampling needs from the training data: per-element volumes (the lattice scale), the site-split
    statistics of :class:`~.wyckoff.SplitPrior` (the ranking of site splits) and the mean lattice latent per
    crystal family (where the lattice starts)."""
    counts = _atom_counts(train)
    volumes = fit_element_volumes(counts, _cell_volumes(train.parameters))
    scale = np.cbrt(counts @ volumes)
    lattice = LatticeMap(train.spacegroup.tolist(), scale)
    z = lattice.encode(train.parameters).double().numpy()
    families = np.array([family(sg) for sg in train.spacegroup])
    z_mean = {f: z[families == f].mean(0).tolist() if (families == f).any() else [0.5413] * 3 + [np.pi / 2] * 3
              for f in FAMILIES}
    splits = SplitPrior.counted(train)
    return {"volumes": volumes.tolist(), **splits.to_json(), "z_mean": z_mean}


class ScoreObjective:
    """sigma^2-weighted denoising score matching of positions (Cartesian, within each Wyckoff position's free
    directions, minimum-image target) and of the lattice latent (free entries), at one random level per
    structure."""

    def __init__(self, data: AsymmetricSet, volumes):
        self.data = data
        self.volumes = np.asarray(volumes)

    def __call__(self, model, index) -> tuple[torch.Tensor, dict]:
        units = [self.data.unit(int(i)) for i in index]
        crystals = Crystals.of(units, self.volumes)
        dtype = torch.get_default_dtype()
        points = torch.tensor(np.concatenate([u.points for u in units]), dtype=dtype)
        z = crystals.lattice.encode(np.stack([u.parameters for u in units])).to(dtype)
        free = crystals.lattice.free.to(dtype)
        level = torch.rand(len(units))
        sigma_x, sigma_l = sigmas(level, SIGMA_POSITIONS), sigmas(level, SIGMA_LATTICE)
        z_noisy = z + sigma_l[:, None] * torch.randn_like(z) * free
        matrices = crystals.lattice.matrices(z_noisy)
        projector, pinv = crystals.projector(matrices)
        site_sigma = sigma_x[crystals.site_batch]
        move = torch.einsum("sij,sj->si", projector, torch.randn_like(points)) * site_sigma[:, None]
        step = torch.einsum("sij,sj->si", pinv, move)
        noisy = points + step
        shift = torch.einsum("sij,sj->si", crystals.site_rotation, step)  # of the representative, fractional
        shift = shift - torch.round(shift)  # the nearest clean image
        nearest = torch.einsum("sji,sj->si", matrices[crystals.site_batch], shift)
        target = -torch.einsum("sij,sj->si", projector, nearest) / site_sigma[:, None]
        scores, dz, graph = model(crystals, noisy, z_noisy, level, sigma_l)
        moving = crystals.site_dof > 0
        dof = crystals.site_dof.clamp_min(1).to(dtype)
        loss_x = (((scores - target) ** 2).sum(1) / dof)[moving].mean() if moving.any() else scores.sum() * 0
        loss_l = (((dz - (z - z_noisy)) ** 2 * free).sum(1) / free.sum(1) / sigma_l**2).mean()
        loss = loss_x + loss_l
        return loss, {"positions": loss_x.item(), "lattice": loss_l.item(), "edges": len(graph.dst)}


def train_langevin(config: TrainConfig, train: AsymmetricSet, val: AsymmetricSet, out_dir: str | Path,
                   progress: bool = True) -> dict:
    """Train (or resume) the score network, warm-started from ``config.init_from`` (a shipped langevin model or
    checkpoint) when given; the run directory gets ``prior.json`` (see :func:`fit_prior`) next to the shared
    loop's files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prior_path = out_dir / "prior.json"
    if prior_path.is_file():
        prior = json.loads(prior_path.read_text())
    else:
        prior = fit_prior(train)
        atomic_write_text(prior_path, json.dumps(prior))
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = ScoreNetwork(**config.model)
    if config.init_from and not (out_dir / "checkpoint.pt").is_file():  # a resumed run loads its own weights
        warm_start(model, config.init_from, "langevin")
    objective = ScoreObjective(train, prior["volumes"])
    val_objective = ScoreObjective(val, prior["volumes"])
    val_index = np.arange(min(512, len(val)))

    epoch_batches = index_batches(len(train), config.batch_size)

    @torch.no_grad()
    def validate(ema):
        state = torch.random.get_rng_state()
        torch.manual_seed(1234)
        ema.eval()
        losses = [float(val_objective(ema, val_index[i : i + 64])[0]) for i in range(0, len(val_index), 64)]
        ema.train()
        torch.random.set_rng_state(state)
        return float(np.mean(losses)) if losses else float("nan")

    return fit_summary(train_model(config, model, objective, epoch_batches, validate, out_dir, progress), config,
                       len(train))


def export_langevin(run_dir: str | Path, out_path: str | Path) -> dict:
    """The EMA weights of a run (fp16) with its network config and prior, as one small inference file."""
    run_dir = Path(run_dir)
    state, weights = ema_weights(run_dir)
    payload = {"family": "langevin", "method": METHOD, "model": state["config"]["model"], "state_dict": weights,
               "prior": json.loads((run_dir / "prior.json").read_text())}
    torch.save(payload, out_path)
    return payload
