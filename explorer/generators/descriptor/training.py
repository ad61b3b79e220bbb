"""Training of the descriptor family: a DDPM (eps prediction, cosine schedule of 2000 steps as in the paper) over
one dataset's StructRepDiff vectors, in the shared resumable loop. The run directory gets ``layout.json`` (EAD
parameters, training elements), ``transform.json`` (network space) and ``scale.json`` (the reconstruction
loss's entry scales) next to the loop's files. Training never runs in CI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ...fileio import atomic_write_text
from ...schedulers import DDPMScheduler
from ..training import TrainConfig, ema_weights, fit_summary, train_model, warm_start
from .dataset import dataset_spec, default_layout, load_vectors
from .model import VectorDenoiser
from .pipeline import VectorTransform
from .reconstruction import entry_scale
from .vector import Layout

METHOD = "ddpm"
TIMESTEPS = 2000
CLIP = 6.0  # |x0| bound in the network's (standardised) space


def make_scheduler() -> DDPMScheduler:
    return DDPMScheduler(TIMESTEPS, clip_sample_range=CLIP)


def _prepare(dataset: str, out_dir: Path, directory=None):
    """(layout, transform, training vectors in network space, scale), fitted once and kept in the run dir."""
    files = {name: out_dir / f"{name}.json" for name in ("layout", "transform", "scale")}
    layout = Layout.from_json(json.loads(files["layout"].read_text())) if files["layout"].is_file() \
        else default_layout(dataset, directory)
    vectors = load_vectors(dataset, layout, directory=directory, progress=True).vectors
    if files["transform"].is_file():
        transform = VectorTransform.from_json(layout, json.loads(files["transform"].read_text()))
        scale = json.loads(files["scale"].read_text())
    else:
        transform = VectorTransform.fit(layout, vectors)
        scale = entry_scale(vectors[:, : layout.n_ead], layout.params).tolist()
        atomic_write_text(files["layout"], json.dumps({**layout.to_json(), "dataset": dataset}))
        atomic_write_text(files["transform"], json.dumps(transform.to_json()))
        atomic_write_text(files["scale"], json.dumps(scale))
    return layout, transform, transform.forward(vectors).astype(np.float32), scale


def train_descriptor(config: TrainConfig, dataset: str, out_dir: str | Path, directory=None,
                     progress: bool = True) -> dict:
    """Train (or resume) the vector DDPM of ``dataset`` (see :mod:`.dataset`), warm-started from
    ``config.init_from`` (a descriptor model of the same dataset) when given; 5 % of its rows (seeded) are held
    out for the validation loss."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout, transform, x, _ = _prepare(dataset, out_dir, directory)
    order = np.random.default_rng(0).permutation(len(x))
    held = order[: max(1, len(x) // 20)]
    train = torch.tensor(x[order[len(held):]])
    val = torch.tensor(x[held])
    torch.manual_seed(config.seed)
    model = VectorDenoiser(layout.size, **config.model)
    if config.init_from and not (out_dir / "checkpoint.pt").is_file():  # a resumed run loads its own weights
        warm_start(model, config.init_from, "descriptor")
    scheduler = make_scheduler()

    def objective(net, batch):
        t = torch.randint(0, TIMESTEPS, (len(batch),))
        noise = torch.randn_like(batch)
        noisy = scheduler.add_noise(batch, noise, t)
        loss = ((net(noisy, scheduler.model_time(t)) - noise) ** 2).mean()
        return loss, {}

    def epoch_batches(rng):
        perm = rng.permutation(len(train))
        for start in range(0, len(perm) - config.batch_size + 1, config.batch_size):
            yield (train[perm[start : start + config.batch_size]],)

    @torch.no_grad()
    def validate(ema):
        state = torch.random.get_rng_state()
        torch.manual_seed(1234)
        loss = float(objective(ema, val)[0])
        torch.random.set_rng_state(state)
        return loss

    return fit_summary(train_model(config, model, objective, epoch_batches, validate, out_dir, progress), config,
                       len(train))


def export_descriptor(run_dir: str | Path, out_path: str | Path) -> dict:
    """The EMA weights (fp16) with network config, layout, transform and scale, as one small inference file."""
    run_dir = Path(run_dir)
    state, weights = ema_weights(run_dir)
    layout = json.loads((run_dir / "layout.json").read_text())
    payload = {"family": "descriptor", "method": METHOD, "model": state["config"]["model"], "state_dict": weights,
               "layout": layout, "transform": json.loads((run_dir / "transform.json").read_text()),
               "scale": json.loads((run_dir / "scale.json").read_text()), "dataset": layout.get("dataset"),
               "max_atoms": dataset_spec(layout["dataset"]).max_atoms if layout.get("dataset") else 20}
    torch.save(payload, out_path)
    return payload


__all__ = ["METHOD", "TIMESTEPS", "export_descriptor", "make_scheduler", "train_descriptor"]
