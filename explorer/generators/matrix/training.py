"""Training loop for the generative models: AdamW, linear warm-up + cosine decay, EMA, gradient clipping,
size-bucketed batches, resumable checkpoints and a fixed seed. Training never runs in CI."""

from __future__ import annotations

import copy
import io
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...data import ProcessedSet
from ...fileio import atomic_write_bytes
from ...models import build_model, make_conditions
from .checkpoints import read_payload
from .objectives import Objective


@dataclass
class TrainConfig:
    method: str = "cfm-uniform"
    model: dict = field(default_factory=lambda: {"arch": "transformer", "dim": 128, "depth": 4, "heads": 4})
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500
    max_steps: int = 20000
    max_minutes: float | None = None
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    pbc_weight: float = 0.1
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = 500
    val_every: int = 1000
    max_sites: int = 60
    init_from: str | None = None  # warm start: a shipped model name or an inference checkpoint path
    augment: float = 0.0  # modification: share of each epoch's batches that are perturbed copies (E_diff = 0)


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


def learning_rate(step: int, config: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 10 % over ``max_steps`` or ``max_minutes``, whichever ends first."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    if config.max_minutes:
        progress = max(progress, min(1.0, elapsed / (60 * config.max_minutes)))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


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

    summary = train_model(config, objective, epoch_batches, validate, out_dir, progress)
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

    summary = train_model(config, objective, epoch_batches, validate, out_dir, progress)
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
    from ...errors import ExplorerInputError
    from ..registry import available_models, checkpoint_path, model_info

    path = Path(source)
    if not path.is_file():
        if source not in available_models():
            raise ExplorerInputError(f"--init-from {source!r} is neither a checkpoint file nor a shipped model")
        path = checkpoint_path(model_info(source))
    payload = read_payload(path)
    allowed = WARM_START_FROM.get(method, (method,))
    if payload["method"] not in allowed:
        raise ExplorerInputError(f"--init-from checkpoint was trained as {payload['method']}, "
                                 f"not {' or '.join(allowed)}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    if payload["method"] != method:
        state = widen_inputs(state, model.state_dict())
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ExplorerInputError(f"--init-from checkpoint has a different architecture: {error}") from None


def train_model(config: TrainConfig, objective, epoch_batches, validate, out_dir: str | Path,
                progress: bool = True) -> dict:
    """The shared loop: ``epoch_batches(rng)`` yields (x1, Conditions) batches of one epoch, ``objective``
    maps (model, x1, cond) to (loss, logs), ``validate(ema_model)`` returns a validation loss."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config.model)
    if config.init_from:
        load_initial_weights(model, config.init_from, config.method)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, elapsed, epoch = 0, 0.0, 0
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file():
        state = read_payload(checkpoint)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, epoch = state["step"], state["elapsed"], state["epoch"]
        torch.random.set_rng_state(state["torch_rng"])
    rng = np.random.default_rng(config.seed + epoch)
    (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=1))
    log = open(out_dir / "log.jsonl", "a")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.max_steps, initial=step, desc=f"train {config.method}", unit="step")

    def save():
        buffer = io.BytesIO()
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                    "step": step, "elapsed": elapsed, "epoch": epoch, "config": asdict(config),
                    "torch_rng": torch.random.get_rng_state()}, buffer)
        atomic_write_bytes(checkpoint, buffer.getvalue())

    started = time.time() - elapsed
    # a resumed run that already reached its step or time budget trains no further
    done = step >= config.max_steps or (config.max_minutes is not None and elapsed > config.max_minutes * 60)
    while not done:
        batches_this_epoch = 0
        for x1, cond in epoch_batches(rng):
            batches_this_epoch += 1
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config, elapsed)
            loss, logs = objective(model, x1, cond)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            decay = min(config.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1 - decay)
            step += 1
            elapsed = time.time() - started
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.4f}")
            if step % 50 == 0:
                log.write(json.dumps({"step": step, "loss": float(loss), "grad_norm": float(grad_norm),
                                      "lr": learning_rate(step, config, elapsed), "elapsed": elapsed, **logs}) + "\n")
                log.flush()
            if step % config.val_every == 0:
                log.write(json.dumps({"step": step, "val_loss": validate(ema)}) + "\n")
            if step % config.checkpoint_every == 0:
                save()
            out_of_time = config.max_minutes is not None and elapsed > config.max_minutes * 60
            if step >= config.max_steps or out_of_time:
                done = True
                break
        else:
            epoch += 1
            if not batches_this_epoch:
                raise ValueError("no training batches: the training set is empty")
    val_loss = validate(ema)
    log.write(json.dumps({"step": step, "val_loss": val_loss, "final": True}) + "\n")
    log.close()
    save()
    if bar is not None:
        bar.close()
    return {"steps": step, "wall_time_s": round(elapsed, 1), "val_loss": val_loss}


def export_checkpoint(run_dir: str | Path, out_path: str | Path, half: bool = True) -> dict:
    """Write the EMA weights of a run as a small inference checkpoint (fp16 by default)."""
    state = read_payload(Path(run_dir) / "checkpoint.pt")
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in state["ema"].items()}
    payload = {"model": state["config"]["model"], "method": state["config"]["method"], "state_dict": weights}
    torch.save(payload, out_path)
    return payload
