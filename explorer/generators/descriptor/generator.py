"""The descriptor family behind the :class:`~explorer.generators.base.Generator` interface: a DDPM samples
StructRepDiff vectors (the composition and atom count fixed to a requested formula by inpainting, or free), each
vector is decoded into its cell contents and lattice, and basin hopping reconstructs the positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice

from ...devices import resolve_device
from ...errors import ExplorerInputError
from ..base import GenerationRequest, Generator
from ..payload import read_payload, with_weights
from ..registry import checkpoint_path
from .model import VectorDenoiser
from .pipeline import VectorPipeline, VectorTransform
from .reconstruction import Reconstructor
from .training import TIMESTEPS, make_scheduler
from .vector import Layout

RECONSTRUCTION = {"trials": 6, "hops": 7, "iterations": 300}  # the paper's; a manifest entry may set its own


def load_descriptor(path: str | Path) -> dict:
    """{network (float32, eval), layout, transform, scale, max_atoms} of a descriptor inference checkpoint."""
    payload = read_payload(path)
    if payload.get("family") != "descriptor" or not {"model", "state_dict", "layout"} <= set(payload):
        raise ExplorerInputError(f"checkpoint {Path(path).name} is not a descriptor inference checkpoint")
    layout = Layout.from_json(payload["layout"])
    network = with_weights(lambda: VectorDenoiser(layout.size, **payload["model"]), payload["state_dict"])
    return {"network": network, "layout": layout,
            "transform": VectorTransform.from_json(layout, payload["transform"]),
            "scale": np.asarray(payload["scale"], dtype=float), "max_atoms": int(payload.get("max_atoms", 20)),
            "dataset": payload.get("dataset")}


def cell_lattice(parameters) -> Lattice:
    """A lattice from (a, b, c, α, β, γ); angles that cannot close a cell are replaced by 90°."""
    a, b, c, alpha, beta, gamma = (float(v) for v in parameters)
    cosines = np.cos(np.radians([alpha, beta, gamma]))
    volume_term = 1 - (cosines**2).sum() + 2 * cosines.prod()
    if not volume_term > 1e-3:
        alpha = beta = gamma = 90.0
    return Lattice.from_parameters(a, b, c, alpha, beta, gamma)


class DescriptorGenerator(Generator):
    """StructRepDiff (paper 001): vector DDPM + basin-hopping reconstruction. Takes a formula (the cell
    contents, fixed during sampling) or nothing (unconditional); the space group is not a condition of this
    family. ``steps``: DDPM steps (of the 2000 it was trained with)."""

    family = "descriptor"
    task = "generation"
    conditions = frozenset({"formula"})
    required = frozenset()

    def __init__(self, info, directory: Path):
        super().__init__(info)
        self.directory = Path(directory)

    @property
    def loaded(self) -> dict:
        return self._once("loaded", lambda: load_descriptor(checkpoint_path(self.info, self.directory)))

    @property
    def layout(self) -> Layout:
        return self.loaded["layout"]

    @property
    def default_steps(self) -> int:
        return int(self.info.info.get("default_steps", 1000))

    def steps_used(self, steps: int | None) -> int:
        steps = int(steps or self.default_steps)
        if not 1 <= steps <= TIMESTEPS:
            raise ExplorerInputError(f"steps must be in 1..{TIMESTEPS} for the descriptor models, got {steps}")
        return steps

    def reconstructor(self, sampled: bool = False, **options) -> Reconstructor:
        """The model's reconstruction settings (manifest ``reconstruction``; with ``sampled``, for vectors the DDPM
        sampled, ``sampled_reconstruction`` over them), overridden by ``options``. The model's own template trials
        (at most its trials) are dropped while the prototype library is not ready
        (:func:`~.templates.with_template_source`); templates (or their data) asked for in ``options`` are not."""
        from .templates import with_template_source

        info = self.info.info
        settings = {**RECONSTRUCTION, **info.get("reconstruction", {}),
                    **(info.get("sampled_reconstruction", {}) if sampled else {}), **options}
        if "templates" not in options:  # the model's template trials, within the trials asked for
            settings["templates"] = min(int(settings.get("templates", 0)), int(settings["trials"]))
        asked = "templates" in options or "template_data" in options
        return Reconstructor(self.layout.params, **with_template_source(settings, required=asked))

    def check(self, request: GenerationRequest, sites: bool = True) -> None:
        super().check(request, sites=False)
        if request.species:
            self.layout.check_elements(request.species)
            limit = self.loaded["max_atoms"]
            if len(request.species) > limit:
                raise ExplorerInputError(f"model {self.name!r} was trained on cells of at most {limit} atoms; "
                                         f"this formula's cell has {len(request.species)}")

    def vectors(self, requests: list[GenerationRequest], steps: int | None = None, generator=None,
                device="auto", callback=None) -> np.ndarray:
        """(len(requests), D) sampled vectors, the composition and atom count of requests with a formula fixed."""
        layout, loaded = self.layout, self.loaded
        scheduler = make_scheduler()
        scheduler.set_timesteps(self.steps_used(steps))
        device = resolve_device(device)
        known = np.zeros((len(requests), layout.size))
        mask = np.zeros((len(requests), layout.size), dtype=bool)
        for i, request in enumerate(requests):
            if request.species:
                known[i, layout.n_ead :] = layout.header(request.species, np.zeros(6))
                mask[i, layout.composition] = True
                mask[i, layout.atoms] = True
        pipeline = VectorPipeline(loaded["network"].to(device), loaded["transform"], scheduler, device)
        return pipeline(len(requests), known, mask, generator=generator, callback=callback)

    def composition_settings(self, **options) -> dict:
        """How an unconditional sample's composition is decoded (manifest ``composition``, overridden by
        ``options``): ``neutral`` and ``element_penalty`` as in :meth:`Layout.decode`; ``resample``: sample the
        vector again with that composition fixed (inpainting), so the EAD block and lattice fit the cell
        contents that are reconstructed."""
        settings = {"neutral": False, "element_penalty": 0.0, "resample": False}
        return {**settings, **self.info.info.get("composition", {}), **options}

    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64, reconstruction=None,
                          composition=None) -> list:
        """Structures in request order (Niggli-reduced cells), ``batch_size`` requests a batch. ``callback(done,
        total)`` counts DDPM steps and reconstruction hops (over all rounds); ``reconstruction``: Reconstructor
        options over the model's settings for sampled vectors (:meth:`reconstructor`); ``composition``:
        :meth:`composition_settings` options (requests without a formula)."""
        for request in requests:
            self.check(request)
        generator = torch.Generator().manual_seed(int(seed))
        reconstructor = self.reconstructor(sampled=True, **(reconstruction or {}))
        decoding = self.composition_settings(**(composition or {}))
        passes = 2 if decoding["resample"] and any(not r.species for r in requests) else 1
        steps_used = self.steps_used(steps)
        per_batch = passes * steps_used + reconstructor.rounds * reconstructor.hops  # hops over every round
        batches = [list(range(i, min(i + batch_size, len(requests)))) for i in range(0, len(requests), batch_size)]
        total, out = per_batch * len(batches), []
        for b, index in enumerate(batches):
            offset = b * per_batch
            batch = [requests[i] for i in index]
            for p in range(passes):
                progress = None if callback is None else (
                    lambda k, _n, o=offset + p * steps_used: callback(o + k, total))
                vectors = self.vectors(batch, steps, generator, device, progress)
                numbers, lattices = [], []
                for request, vector in zip(batch, vectors):
                    zs, parameters = self.layout.decode(vector, max_atoms=self.loaded["max_atoms"],
                                                        neutral=decoding["neutral"],
                                                        element_penalty=decoding["element_penalty"])
                    numbers.append(list(request.species) or zs)
                    lattices.append(cell_lattice(parameters))
                if p + 1 < passes:  # the decoded compositions become the next pass's formula
                    batch = [r if r.species else GenerationRequest(species=tuple(sorted(zs)))
                             for r, zs in zip(batch, numbers)]
            sampled = offset + passes * steps_used
            hop = None if callback is None else (lambda report, o=sampled: callback(o + report.hop, total))
            results = reconstructor.run(vectors[:, : self.layout.n_ead], numbers, lattices, self.loaded["scale"],
                                        seed=int(seed) + b, callback=hop)
            out += [r.structure for r in results]
            if callback is not None:  # rounds left unused (every structure solved) count as done
                callback(offset + per_batch, total)
        return out


__all__ = ["DescriptorGenerator", "cell_lattice", "load_descriptor"]
