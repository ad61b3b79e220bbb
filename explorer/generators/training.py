"""The training loop every generator family uses: AdamW, linear warm-up + cosine decay, EMA, gradient
clipping, resumable checkpoints (``checkpoint.pt``, ``log.jsonl``, ``config.json`` in the run directory) and a
fixed seed. Training never runs in CI."""

from __future__ import annotations

import copy
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..fileio import atomic_write_bytes
from .payload import read_payload


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


def learning_rate(step: int, config: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 10 % over ``max_steps`` or ``max_minutes``, whichever ends first."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    if config.max_minutes:
        progress = max(progress, min(1.0, elapsed / (60 * config.max_minutes)))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_model(config: TrainConfig, model: torch.nn.Module, objective, epoch_batches, validate,
                out_dir: str | Path, progress: bool = True) -> dict:
    """The loop every family trains with: ``epoch_batches(rng)`` yields the batches of one epoch (tuples),
    ``objective(model, *batch)`` returns (loss, logs), ``validate(ema_model)`` a validation loss. ``model`` is
    the freshly built (or warm-started) network; a run directory holding a checkpoint resumes from it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
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
        for batch in epoch_batches(rng):
            batches_this_epoch += 1
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config, elapsed)
            loss, logs = objective(model, *batch)
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


def index_batches(size: int, batch_size: int):
    """``epoch_batches`` for :func:`train_model` over ``size`` examples: a random permutation in full batches of
    indices (the last partial batch dropped), one tuple per batch."""

    def epoch_batches(rng):
        order = rng.permutation(size)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield (order[start : start + batch_size],)

    return epoch_batches


def warm_start(model: torch.nn.Module, source: str, family: str, methods=None, adapt=None) -> None:
    """Load the weights of ``source`` — a shipped model name or an inference checkpoint path — into ``model``
    (fp16 cast to float32): a warm start. The checkpoint must be of ``family`` (matrix checkpoints carry none) and,
    where given, of one of ``methods``, with the same architecture; ``adapt(state, method)`` may reshape its
    state first. Every mismatch is a one-line :class:`~explorer.errors.ExplorerInputError`."""
    from ..errors import ExplorerInputError
    from .registry import available_models, checkpoint_path, model_info

    path = Path(source)
    if not path.is_file():
        if source not in available_models():
            raise ExplorerInputError(f"--init-from {source!r} is neither a checkpoint file nor a shipped model")
        path = checkpoint_path(model_info(source))
    payload = read_payload(path)
    if payload.get("family", "matrix") != family:
        raise ExplorerInputError(f"--init-from {path.name} is a {payload.get('family', 'matrix')} checkpoint, "
                                 f"not {family}")
    if methods is not None and payload["method"] not in methods:
        raise ExplorerInputError(f"--init-from checkpoint was trained as {payload['method']}, "
                                 f"not {' or '.join(methods)}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    if adapt is not None:
        state = adapt(state, payload["method"])
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ExplorerInputError(f"--init-from checkpoint has a different architecture: {error}") from None


def ema_weights(run_dir: str | Path, half: bool = True) -> tuple[dict, dict]:
    """(checkpoint state, its EMA weights — fp16 when ``half``) of a run directory: what an export ships."""
    state = read_payload(Path(run_dir) / "checkpoint.pt")
    return state, {k: (v.half() if half and v.is_floating_point() else v) for k, v in state["ema"].items()}


def fit_summary(summary: dict, config: TrainConfig, train_size: int) -> dict:
    """``summary`` of :func:`train_model` with the epochs over ``train_size`` examples and that size."""
    summary["epochs"] = round(summary["steps"] * config.batch_size / max(1, train_size), 2)
    summary["train_size"] = train_size
    return summary

