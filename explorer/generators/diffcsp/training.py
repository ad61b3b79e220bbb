"""Training of the diffcsp peer: chemeleon-dng's diffusion loss (eps-prediction MSE on the noised lattice +
score matching of the wrapped-normal noise on fractional coordinates, one uniform timestep per cell) in
explorer's shared resumable loop, on :mod:`.dataset`'s cells. A warm start (``init_from``) continues a shipped
or exported model with a fresh optimiser, as the other families' continued runs do. Training never runs in CI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..training import TrainConfig, ema_weights, fit_summary, index_batches, train_model, warm_start
from .dataset import CellSet
from .network import build_module, crystal_batch, network_config

METHOD = "diffcsp"


class DiffusionObjective:
    """(loss, logs) of a batch of cells (indices into ``cells``) under the module's own ``calculate_loss``."""

    def __init__(self, cells: CellSet):
        self.cells = cells

    def __call__(self, module, index) -> tuple[torch.Tensor, dict]:
        batch = crystal_batch(*self.cells.batch(index), device=module.device)
        result = module.calculate_loss(batch)
        return result["total_loss"], {"lattice": result["loss_lattices"].item(),
                                      "coords": result["loss_frac_coords"].item()}


def train_diffcsp(config: TrainConfig, train: CellSet, val: CellSet, out_dir: str | Path,
                  progress: bool = True) -> dict:
    """Train (or resume) the diffusion module of ``config.model`` (see :func:`.network.network_config`)."""
    np.random.seed(config.seed)  # chemeleon-dng draws the timesteps from numpy's global stream
    torch.manual_seed(config.seed)
    module = build_module(config.model)
    if config.init_from and not (Path(out_dir) / "checkpoint.pt").is_file():
        warm_start(module, config.init_from, "diffcsp")
    objective, val_objective = DiffusionObjective(train), DiffusionObjective(val)
    val_index = np.arange(min(512, len(val)))

    epoch_batches = index_batches(len(train), config.batch_size)

    @torch.no_grad()
    def validate(ema):
        torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
        torch.manual_seed(1234)
        np.random.seed(1234)
        losses = [float(val_objective(ema, val_index[i : i + 64])[0]) for i in range(0, len(val_index), 64)]
        torch.random.set_rng_state(torch_state)
        np.random.set_state(numpy_state)
        return float(np.mean(losses)) if losses else float("nan")

    config.model = network_config(**config.model)
    return fit_summary(train_model(config, module, objective, epoch_batches, validate, out_dir, progress), config,
                       len(train))


def export_diffcsp(run_dir: str | Path, out_path: str | Path) -> dict:
    """The EMA weights of a run (fp16) with its network config, as one small inference file."""
    state, weights = ema_weights(run_dir)
    payload = {"family": "diffcsp", "method": METHOD, "model": network_config(**state["config"]["model"]),
               "state_dict": weights}
    torch.save(payload, out_path)
    return payload
