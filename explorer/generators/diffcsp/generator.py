"""The diffcsp peer behind the :class:`~explorer.generators.base.Generator` interface: a formula -> structures
by DiffCSP's predictor-corrector sampling (every one of the model's timesteps: a DDPM step of the lattice and a
predictor and a corrector step of the fractional coordinates)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...devices import resolve_device
from ...errors import ExplorerInputError
from ..base import GenerationRequest, Generator
from ..payload import read_payload
from ..registry import checkpoint_path
from .network import build_module, crystal_batch

MAX_ATOMS = 60


def load_diffcsp(path: str | Path):
    """(diffusion module in float32 eval mode, its network config) from a diffcsp inference checkpoint."""
    payload = read_payload(path)
    if payload.get("family") != "diffcsp" or not {"model", "state_dict"} <= set(payload):
        raise ExplorerInputError(f"checkpoint {Path(path).name} is not a diffcsp inference checkpoint")
    module = build_module(payload["model"])
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return module.eval(), payload["model"]


class DiffCSPGenerator(Generator):
    """DiffCSP (CSP task) trained here as a peer: it takes the cell contents and nothing else."""

    family = "diffcsp"
    task = "generation"
    conditions = frozenset({"formula"})
    required = frozenset({"formula"})

    def __init__(self, info, directory: Path):
        super().__init__(info)
        self.directory = Path(directory)
        self._loaded = None

    @property
    def loaded(self):
        if self._loaded is None:
            self._loaded = load_diffcsp(checkpoint_path(self.info, self.directory))
        return self._loaded

    @property
    def default_steps(self) -> int:
        return int(self.info.info.get("default_steps", self.loaded[1]["timesteps"]))

    def steps_used(self, steps: int | None) -> int:
        timesteps = self.default_steps
        if steps not in (None, timesteps):
            raise ExplorerInputError(f"model {self.name!r} samples with its {timesteps} diffusion steps "
                                     f"(DiffCSP's sampler has no shorter schedule); leave --steps unset")
        return timesteps

    def check(self, request: GenerationRequest, sites: bool = True) -> None:
        super().check(request, sites=False)
        if len(request.species) > MAX_ATOMS:
            raise ExplorerInputError(f"the diffcsp model samples at most {MAX_ATOMS} atoms, got "
                                     f"{len(request.species)}")

    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64) -> list:
        """Structures in request order, ``batch_size`` requests a batch."""
        from pymatgen.core import Lattice, Structure

        timesteps = self.steps_used(steps)
        device = resolve_device(device)
        module, config = self.loaded
        module = module.to(device)
        batches = [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)]
        total, out = timesteps * len(batches), []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            for b, batch in enumerate(batches):
                numbers = [z for r in batch for z in r.species]
                sizes = [len(r.species) for r in batch]
                frac = torch.rand(len(numbers), 3)
                x = crystal_batch(numbers, frac, torch.randn(len(batch), 3, 3), sizes, device=device)
                for i, t in enumerate(range(timesteps, 0, -1)):
                    with torch.no_grad():
                        x = module.p_sample(x_t=x, t=torch.full((len(batch),), t, dtype=torch.long, device=device),
                                            step_lr=config["step_lr"])
                    if callback is not None:
                        callback(b * timesteps + i + 1, total)
                lattices = x.lattices.double().cpu().numpy()
                coords = torch.split(x.frac_coords.double().cpu(), sizes)
                for r, lattice, f in zip(batch, lattices, coords):
                    out.append(Structure(Lattice(lattice), list(r.species), f.numpy() % 1.0))
        return out
