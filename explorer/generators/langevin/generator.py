"""The langevin family behind the :class:`~explorer.generators.base.Generator` interface: formula + space group
(+ optional symmetry-inequivalent sites per element) -> structures that have the group by construction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ...devices import resolve_device
from ...errors import ExplorerInputError
from ..base import GenerationRequest, Generator
from ..payload import read_payload, with_weights
from ..registry import checkpoint_path
from .model import ScoreNetwork
from .pipeline import LangevinPipeline, Template, primitive_structure
from .sampler import LangevinScheduler
from .wyckoff import SiteSplit, SplitPrior, site_splits

MAX_CONVENTIONAL_ATOMS = 240  # atoms of the conventional cell one sample may have


def load_langevin(path: str | Path) -> tuple[ScoreNetwork, dict]:
    """(network in float32 eval mode, prior) from a langevin inference checkpoint."""
    payload = read_payload(path)
    if payload.get("family") != "langevin" or not {"model", "state_dict", "prior"} <= set(payload):
        raise ExplorerInputError(f"checkpoint {Path(path).name} is not a langevin inference checkpoint")
    return with_weights(lambda: ScoreNetwork(**payload["model"]), payload["state_dict"]), payload["prior"]


def _site_counts(wyckoff: dict | None) -> dict[int, int] | None:
    """{element symbol: sites} -> {atomic number: sites} (one-line error for anything else)."""
    if not wyckoff:
        return None
    from pymatgen.core import Element

    out = {}
    for key, count in wyckoff.items():
        try:
            z = Element(str(key).strip()).Z
        except ValueError:
            raise ExplorerInputError(f"the langevin model takes symmetry-inequivalent sites per element "
                                     f"(e.g. Na:1,Cl:1), got {key!r}") from None
        if int(count) < 1:
            raise ExplorerInputError(f"sites of {key} must be >= 1, got {count}")
        out[z] = int(count)
    return out


class LangevinGenerator(Generator):
    """Annealed Langevin dynamics on the asymmetric unit (paper 003): the site split (which Wyckoff positions
    hold which element) comes from ``wyckoff`` counts or the training data's position frequencies; the
    network moves each site within its Wyckoff position and the conventional lattice within its crystal
    family. ``steps``: Langevin steps in all (``levels × steps_per_level`` of the manifest entry)."""

    family = "langevin"
    task = "generation"
    conditions = frozenset({"formula", "spacegroup", "wyckoff"})
    required = frozenset({"formula", "spacegroup"})
    pipeline_draws = 1  # its samples have the group by construction (0.96 on val); an off-group one is replaced

    def __init__(self, info, directory: Path):
        super().__init__(info)
        self.directory = Path(directory)

    @property
    def loaded(self) -> tuple[ScoreNetwork, dict]:
        return self._once("loaded", lambda: load_langevin(checkpoint_path(self.info, self.directory)))

    @property
    def sampler_options(self) -> dict:
        return {"gamma_positions": 0.8, "gamma_lattice": 0.8, "temperature_lattice": 0.15, "steps_per_level": 10,
                **self.info.info.get("sampler_options", {})}

    @property
    def default_steps(self) -> int:
        return int(self.info.info.get("default_steps", 200))

    def pipeline(self, device="auto") -> LangevinPipeline:
        """A pipeline of its own for one call (the network is shared; the scheduler, which holds the call's noise
        ladder, is not, so that two sessions can sample at once)."""
        device = resolve_device(device)
        network, prior = self.loaded
        options = self.sampler_options
        scheduler = LangevinScheduler(options["gamma_positions"], options["gamma_lattice"],
                                      options["temperature_lattice"])
        return LangevinPipeline(network.to(device), prior, scheduler, device)

    def splits(self, request: GenerationRequest) -> list[SiteSplit]:
        """The site splits of the request, most likely first (one-line error when none fits)."""
        prior = self._once("split_prior", lambda: SplitPrior.from_json(self.loaded[1]))
        return site_splits(request.species, request.spacegroup, prior,
                           sites=_site_counts(request.wyckoff))

    def check(self, request: GenerationRequest, sites: bool = True) -> None:
        super().check(request, sites=False)
        split = self.splits(request)[0]
        atoms = sum(Template(split.spacegroup, split.numbers, split.wyckoff).counts().values())
        if atoms > MAX_CONVENTIONAL_ATOMS:
            raise ExplorerInputError(f"the conventional cell of this formula in space group {request.spacegroup} "
                                     f"has {atoms} atoms; the langevin model samples at most "
                                     f"{MAX_CONVENTIONAL_ATOMS}")

    def templates(self, requests: list[GenerationRequest], generator: torch.Generator) -> list[Template]:
        """One site split per request: the most likely one for the first occurrence of a request in the call,
        for its repeats one drawn with probability proportional to its likelihood."""
        seen: dict[int, list[SiteSplit]] = {}
        out = []
        for request in requests:
            key = id(request)
            if key not in seen:
                seen[key] = self.splits(request)
                split = seen[key][0]
            else:
                options = seen[key]
                weights = np.exp([s.log_prob - options[0].log_prob for s in options])
                u = float(torch.rand(1, generator=generator)) * weights.sum()
                split = options[min(int(np.searchsorted(np.cumsum(weights), u)), len(options) - 1)]
            out.append(Template(split.spacegroup, split.numbers, split.wyckoff))
        return out

    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64) -> list:
        """Primitive structures in request order, ``batch_size`` requests a batch (ordered by size)."""
        levels, per_level = self._ladder(steps)
        pipeline = self.pipeline(device)
        pipeline.scheduler.set_timesteps(levels, per_level)
        generator = torch.Generator().manual_seed(int(seed))
        templates = self.templates(requests, generator)
        order = np.argsort([sum(t.counts().values()) for t in templates], kind="stable")
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        per_batch = pipeline.scheduler.num_steps + 1
        total, results = per_batch * len(batches), {}
        for b, index in enumerate(batches):
            progress = None if callback is None else (lambda i, _n, b=b: callback(b * per_batch + i, total))
            units = pipeline([templates[i] for i in index], generator=generator, callback=progress)
            for i, unit in zip(index, units):
                results[int(i)] = primitive_structure(unit)
        return [results[i] for i in range(len(requests))]

    def _ladder(self, steps: int | None) -> tuple[int, int]:
        """(noise levels, steps per level) of a call with ``steps`` Langevin steps in all."""
        steps = int(steps or self.default_steps)
        if steps < 1:
            raise ExplorerInputError(f"steps must be >= 1, got {steps}")
        per_level = min(int(self.sampler_options["steps_per_level"]), steps)
        return math.ceil(steps / per_level), per_level

    def steps_used(self, steps: int | None) -> int:
        """Langevin steps a call with ``steps`` runs (whole noise levels), plus the final denoising step."""
        levels, per_level = self._ladder(steps)
        return levels * per_level + 1
