"""The diffcsp peer behind the :class:`~explorer.generators.base.Generator` interface: a formula -> structures
by DiffCSP's predictor-corrector sampling (:mod:`.sampler`: a DDPM step of the lattice and a predictor and a
corrector step of the fractional coordinates per step; all of the model's timesteps or a strided subset)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...devices import resolve_device
from ...errors import ExplorerInputError
from ..base import GenerationRequest, Generator
from ..payload import read_payload, with_weights
from ..registry import checkpoint_path
from .network import build_module, crystal_batch
from .sampler import LATTICE_BOUND, PredictorCorrectorSampler

MAX_ATOMS = 60


def load_diffcsp(path: str | Path):
    """(diffusion module in float32 eval mode, its network config) from a diffcsp inference checkpoint."""
    payload = read_payload(path)
    if payload.get("family") != "diffcsp" or not {"model", "state_dict"} <= set(payload):
        raise ExplorerInputError(f"checkpoint {Path(path).name} is not a diffcsp inference checkpoint")
    return with_weights(lambda: build_module(payload["model"]), payload["state_dict"]), payload["model"]


class DiffCSPGenerator(Generator):
    """DiffCSP (CSP task) trained here as a peer: it takes the cell contents and nothing else."""

    family = "diffcsp"
    task = "generation"
    conditions = frozenset({"formula"})
    required = frozenset({"formula"})

    def __init__(self, info, directory: Path):
        super().__init__(info)
        self.directory = Path(directory)

    @property
    def loaded(self):
        return self._once("loaded", lambda: load_diffcsp(checkpoint_path(self.info, self.directory)))

    @property
    def default_steps(self) -> int:
        return int(self.info.info.get("default_steps", self.loaded[1]["timesteps"]))

    def steps_used(self, steps: int | None) -> int:
        if steps is None:
            return self.default_steps
        timesteps = int(self.loaded[1]["timesteps"])
        if not 1 <= int(steps) <= timesteps:
            raise ExplorerInputError(f"model {self.name!r} samples with 1 to {timesteps} steps (a strided subset "
                                     f"of its {timesteps} timesteps), got {steps}")
        return int(steps)

    def sampler(self, steps: int | None = None) -> PredictorCorrectorSampler:
        """The predictor-corrector sampler set to ``steps`` (default: the manifest's ``default_steps``) with the
        manifest's ``corrector_scale`` (1 = DiffCSP's corrector step) and the predicted lattice clipped to
        +-``LATTICE_BOUND`` Å."""
        module, config = self.loaded
        sampler = PredictorCorrectorSampler(module, config["step_lr"],
                                            float(self.info.info.get("corrector_scale", 1.0)), LATTICE_BOUND)
        sampler.set_timesteps(self.steps_used(steps))
        return sampler

    def check(self, request: GenerationRequest, sites: bool = True) -> None:
        super().check(request, sites=False)
        if len(request.species) > MAX_ATOMS:
            raise ExplorerInputError(f"the diffcsp model samples at most {MAX_ATOMS} atoms, got "
                                     f"{len(request.species)}")

    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64) -> list:
        """Structures in request order, ``batch_size`` requests a batch."""
        from pymatgen.core import Lattice, Structure

        sampler = self.sampler(steps)
        timesteps = sampler.timesteps
        device = resolve_device(device)
        module = self.loaded[0].to(device)
        batches = [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)]
        total, out = len(timesteps) * len(batches), []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            for b, batch in enumerate(batches):
                numbers = [z for r in batch for z in r.species]
                sizes = [len(r.species) for r in batch]
                frac = torch.rand(len(numbers), 3)
                x = crystal_batch(numbers, frac, torch.randn(len(batch), 3, 3), sizes, device=device)
                for i, t in enumerate(timesteps):
                    with torch.no_grad():
                        x = sampler.step(module, x, t)
                    if callback is not None:
                        callback(b * len(timesteps) + i + 1, total)
                lattices = x.lattices.double().cpu().numpy()
                coords = torch.split(x.frac_coords.double().cpu(), sizes)
                for r, lattice, f in zip(batch, lattices, coords):
                    out.append(Structure(Lattice(lattice), list(r.species), f.numpy() % 1.0))
        return out
