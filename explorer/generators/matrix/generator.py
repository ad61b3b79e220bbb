"""The matrix family behind the :class:`~explorer.generators.base.Generator` interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...devices import resolve_device
from ...errors import ExplorerInputError
from ...models import make_conditions
from ...representation import MAX_SITES, decode, encode
from ..base import GenerationRequest, Generator
from ..registry import checkpoint_path
from .checkpoints import load_checkpoint
from .objectives import METHODS
from .pipeline import MODIFICATION_METHODS, GenerationPipeline, ModificationPipeline

JITTER = 0.02  # fractional: repeated regression requests start from copies of the structure jittered this much


class _MatrixModel(Generator):
    family = "matrix"
    methods: tuple[str, ...] = ()

    def __init__(self, info, directory: Path):
        super().__init__(info)
        if info.method not in self.methods:
            raise ExplorerInputError(f"model {info.name!r}: method {info.method!r} is not a matrix {self.task} "
                                     f"method ({', '.join(self.methods)})")
        self.directory = Path(directory)

    @property
    def network(self) -> torch.nn.Module:
        """The denoiser, loaded (sha256-checked) on first use."""
        return self._once("network", self._load_network)

    def _load_network(self) -> torch.nn.Module:
        network, method = load_checkpoint(checkpoint_path(self.info, self.directory))
        if method != self.info.method:
            raise ExplorerInputError(f"checkpoint {self.info.file} was trained as {method}, manifest says "
                                     f"{self.info.method}")
        return network

    def pipeline(self, device="auto"):
        """A pipeline of its own for one call (the network is shared; the scheduler, which holds the call's
        timesteps, is not, so that two sessions can sample at once)."""
        return self._make_pipeline(resolve_device(device))

    def _make_pipeline(self, device):
        raise NotImplementedError

    def _run(self, batches, conditions, steps, seed, device, callback) -> list:
        """Sample each batch (row indices, Conditions) with one random stream; structures in request order."""
        steps = self.steps_used(steps)
        if steps < 1:
            raise ExplorerInputError(f"steps must be >= 1, got {steps}")
        pipeline = self.pipeline(device)
        generator = torch.Generator().manual_seed(int(seed))
        per_batch = 1 if getattr(pipeline, "method", None) == "regression" else steps
        total, results = per_batch * len(batches), {}
        for b, (index, cond) in enumerate(batches):
            progress = None if callback is None else (lambda i, _n, b=b: callback(b * per_batch + i, total))
            matrices = pipeline(cond, steps=steps, generator=generator, callback=progress).numpy()
            for row, i in enumerate(index):
                results[i] = decode(matrices[row], conditions[i])
        return [results[i] for i in range(len(conditions))]


def _padded(species: list) -> np.ndarray:
    padded = np.zeros((len(species), MAX_SITES), dtype=np.int64)
    for row, z in enumerate(species):
        padded[row, : len(z)] = z
    return padded


class MatrixGenerator(_MatrixModel):
    """A DDPM/DDIM/CFM generation model: formula + space group + target formation energy -> structures."""

    task = "generation"
    conditions = frozenset({"formula", "spacegroup", "energy"})
    required = conditions
    methods = METHODS

    def _make_pipeline(self, device):
        return GenerationPipeline(self.network, self.info.method, self.info.sampler, device=device)

    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64) -> list:
        """Batched by similar size (stable order by site count), ``batch_size`` requests a batch."""
        species = [list(r.species) for r in requests]
        order = np.argsort([len(s) for s in species], kind="stable")
        spacegroups = np.array([r.spacegroup for r in requests])
        energies = np.array([r.energy for r in requests], dtype=np.float32)
        batches = []
        for start in range(0, len(requests), batch_size):
            index = order[start : start + batch_size]
            cond = make_conditions(_padded([species[i] for i in index]), spacegroups[index], energies[index])
            batches.append((index, cond))
        return self._run(batches, species, steps, seed, device, callback)


class MatrixModifier(_MatrixModel):
    """A modification model: initial structure + target space group + formation-energy change -> structures.
    The regression model is deterministic: a request repeated in one call starts from copies of the initial
    structure whose fractional coordinates are jittered by up to ``JITTER`` (the first copy is not)."""

    task = "modification"
    conditions = frozenset({"initial_structure", "spacegroup", "energy_delta"})
    required = conditions
    methods = MODIFICATION_METHODS

    def _make_pipeline(self, device):
        return ModificationPipeline(self.network, self.info.method, device=device)

    def check(self, request: GenerationRequest) -> None:
        super().check(request)
        supported = set(self.info.info.get("elements", []))
        unsupported = sorted(set(request.atomic_numbers) - supported) if supported else []
        if unsupported:
            from ...elements import symbols

            names = ", ".join(symbols()[z - 1] for z in unsupported)
            raise ExplorerInputError(f"the modification model was not trained on {names}; no support for this "
                                     "composition")

    def sample_best(self, requests, draws: int = 1, **options) -> list:
        if int(draws) > 1 and self.info.method == "regression":
            raise ExplorerInputError("the regression model is deterministic: several draws give the same structure")
        return super().sample_best(requests, draws, **options)

    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64) -> list:
        """In request order, ``batch_size`` requests a batch."""
        crystals, encoded = [], {}
        for r in requests:  # encode each distinct initial structure once
            if id(r.initial) not in encoded:
                encoded[id(r.initial)] = encode(r.initial)
            crystals.append(encoded[id(r.initial)])
        initial = np.stack([c.matrix for c in crystals])
        generator = torch.Generator().manual_seed(int(seed))
        if self.info.method == "regression":
            self._jitter_repeats(requests, crystals, initial, generator)
        species = [c.atomic_numbers for c in crystals]
        spacegroups = np.array([r.spacegroup for r in requests])
        deltas = np.array([r.energy_delta for r in requests], dtype=np.float32)
        batches = []
        for start in range(0, len(requests), batch_size):
            index = np.arange(start, min(start + batch_size, len(requests)))
            cond = make_conditions(_padded([species[i] for i in index]), spacegroups[index], deltas[index],
                                   initial[index])
            batches.append((index, cond))
        return self._run(batches, species, steps, seed, device, callback)

    @staticmethod
    def _jitter_repeats(requests, crystals, initial: np.ndarray, generator: torch.Generator) -> None:
        """Jitter (in place) the initial coordinates of every repeat of a request's structure after its first."""
        repeats: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            repeats.setdefault(id(r.initial), []).append(i)
        for rows in repeats.values():
            if len(rows) < 2:
                continue
            n = crystals[rows[0]].n_sites
            noise = (torch.rand((len(rows) - 1, n, 3), generator=generator).numpy() - 0.5) * 2 * JITTER
            initial[rows[1:], :n] = np.mod(initial[rows[1:], :n] + noise, 1.0)
