"""Training of the matrix family: size-bucketed batches, generation and modification objectives, warm starts,
checkpoint export; the loop itself is :func:`explorer.generators.training.train_model`. Training never runs in
CI."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ...data import ProcessedSet
from ...models import build_model, make_conditions
from ..training import TrainConfig, ema_weights, train_model, warm_start
from .objectives import Objective


def size_bucketed_batches(n_sites: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of batches whose structures have similar atom counts (less padding, faster steps)."""
    order = rng.permutation(len(n_sites))
    chunk = batch_size * 32
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(n_sites[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_tensors(data: ProcessedSet, index: np.ndarray):
    """(x1, Conditions) for rows ``index`` of a processed set."""
    x1 = torch.from_numpy(data.matrix[index])
    cond = make_conditions(data.species[index], data.spacegroup[index], data.energy[index])
    return x1, cond


@torch.no_grad()
def mean_loss(model, objective, batches, seed: int = 1234) -> float:
    """Mean objective over ``batches`` of (x1, Conditions), with fixed noise (validation)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model.eval()
    losses = [float(objective(model, x1, cond)[0]) for x1, cond in batches]
    model.train()
    torch.random.set_rng_state(state)
    return float(np.mean(losses)) if losses else float("nan")


def validation_loss(model, objective: Objective, data: ProcessedSet, batch_size: int = 128,
                    limit: int = 1024, seed: int = 1234) -> float:
    """Mean training objective on (up to ``limit``) validation structures, with fixed noise."""
    index = np.arange(min(limit, len(data)))
    batches = (batch_tensors(data, index[i : i + batch_size]) for i in range(0, len(index), batch_size))
    return mean_loss(model, objective, batches, seed)


def train_generation(config: TrainConfig, train: ProcessedSet, val: ProcessedSet, out_dir: str | Path,
                     progress: bool = True) -> dict:
    """Train (or resume) a generation model; writes ``checkpoint.pt`` and ``log.jsonl`` in ``out_dir``.

    Returns a summary dict (steps, epochs, wall time, final validation loss)."""
    objective = Objective(config.method, pbc_weight=config.pbc_weight)

    def epoch_batches(rng):
        for index in size_bucketed_batches(train.n_sites, config.batch_size, rng):
            yield batch_tensors(train, index)

    def validate(model):
        return validation_loss(model, objective, val) if len(val) else float("nan")

    summary = train_model(config, _initial_model(config), objective, epoch_batches, validate, out_dir, progress)
    summary["epochs"] = round(summary["steps"] * config.batch_size / max(1, len(train)), 2)
    summary["train_size"] = len(train)
    return summary


def train_modification(config: TrainConfig, train: ProcessedSet, val: ProcessedSet, out_dir: str | Path,
                       progress: bool = True) -> dict:
    """Train (or resume) a modification model on polymorph pairs of the training split (plus, with
    ``config.augment`` > 0, batches of perturbed training structures, see
    :func:`~explorer.generators.matrix.modification.perturbed_pairs`)."""
    from ...polymorphs import epoch_pairs, lowest_pairs, polymorph_groups
    from .modification import ModificationObjective, pair_tensors, perturbed_pairs

    if not 0.0 <= config.augment < 1.0:
        raise ValueError(f"augment must be in [0, 1), got {config.augment}")
    objective = ModificationObjective(config.method)
    groups = polymorph_groups(train)
    val_pairs = lowest_pairs(polymorph_groups(val))

    def epoch_batches(rng):
        pairs = epoch_pairs(groups, rng)
        pairs = pairs[np.argsort(train.n_sites[pairs[:, 1]], kind="stable")]
        batches = [("pairs", pairs[i : i + config.batch_size]) for i in range(0, len(pairs), config.batch_size)]
        n_extra = int(round(len(batches) * config.augment / (1.0 - config.augment)))
        if n_extra:
            chosen = rng.choice(len(train), min(len(train), n_extra * config.batch_size), replace=False)
            chosen = chosen[np.argsort(train.n_sites[chosen], kind="stable")]
            batches += [("perturbed", chosen[i : i + config.batch_size])
                        for i in range(0, len(chosen), config.batch_size)]
        for k in rng.permutation(len(batches)):
            kind, index = batches[k]
            yield pair_tensors(train, index) if kind == "pairs" else perturbed_pairs(train, index, rng)

    def validate(model):
        batches = (pair_tensors(val, val_pairs[i : i + 128]) for i in range(0, len(val_pairs), 128))
        return mean_loss(model, objective, batches)

    summary = train_model(config, _initial_model(config), objective, epoch_batches, validate, out_dir, progress)
    summary.update(groups=len(groups), val_pairs=len(val_pairs))
    return summary


# a modification method that may start from a generation model trained with the same objective
WARM_START_FROM = {"palette-cfm": ("palette-cfm", "cfm-normal")}


def widen_inputs(state: dict, target: dict) -> dict:
    """``state`` with every 2-D weight that is narrower than ``target``'s in its input dimension padded with
    zero columns (a generation model's site/lattice input layers -> a modification model's, which also read
    the initial structure: the extra inputs start switched off)."""
    widened = dict(state)
    for key, value in state.items():
        want = target.get(key)
        if (want is not None and value.dim() == 2 and want.dim() == 2 and value.shape[0] == want.shape[0]
                and value.shape[1] < want.shape[1]):
            padded = torch.zeros_like(want)
            padded[:, : value.shape[1]] = value
            widened[key] = padded
    return widened


def load_initial_weights(model: torch.nn.Module, source: str, method: str) -> None:
    """Warm start ``model`` from a shipped model name or an inference checkpoint path (fp16 weights are cast to
    float32). The checkpoint must have the same architecture and training objective; a ``palette-cfm``
    modification model may also start from a ``cfm-normal`` generation model (see :func:`widen_inputs`)."""
    def adapt(state: dict, trained_as: str) -> dict:
        return widen_inputs(state, model.state_dict()) if trained_as != method else state

    warm_start(model, source, "matrix", WARM_START_FROM.get(method, (method,)), adapt)


def _initial_model(config: TrainConfig) -> torch.nn.Module:
    """The network of ``config.model``, warm-started from ``config.init_from`` when given (before a resumed
    run's own weights, which :func:`~explorer.generators.training.train_model` loads over it)."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config.model)
    if config.init_from:
        load_initial_weights(model, config.init_from, config.method)
    return model


def export_checkpoint(run_dir: str | Path, out_path: str | Path, half: bool = True) -> dict:
    """Write the EMA weights of a run as a small inference checkpoint (fp16 by default)."""
    state, weights = ema_weights(run_dir, half)
    payload = {"model": state["config"]["model"], "method": state["config"]["method"], "state_dict": weights}
    torch.save(payload, out_path)
    return payload
