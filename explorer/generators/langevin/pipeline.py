"""The sampling loop of the langevin family: a batch of asymmetric-unit templates (space group, elements and
Wyckoff positions of the sites) -> sampled asymmetric units -> primitive structures.

All structures of a batch move together: one multigraph (:mod:`.graph`) and one network evaluation per
Langevin step serve every structure, and that evaluation gives both the position and the lattice scores
(positions are moved first, then the lattice, with the scores of the same evaluation).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from ...spacegroups import symbol
from .graph import Crystals
from .lattice import FAMILIES, family
from .sampler import LangevinScheduler
from .wyckoff import AsymmetricUnit, cell_counts

LENGTH_RANGE = (-1.5, 4.0)  # z of the lengths: softplus gives 0.2 .. 4 times the expected length scale
MIN_HEIGHT2 = 0.45  # flatter cells (LatticeMap.height2; every training cell >= 0.5) keep their previous angles
# rows = primitive vectors in units of the conventional ones (standard settings; R: obverse hexagonal axes)
CENTRING = {
    "P": np.eye(3),
    "A": np.array([[1, 0, 0], [0, 0.5, 0.5], [0, -0.5, 0.5]]),
    "B": np.array([[0.5, 0, 0.5], [0, 1, 0], [-0.5, 0, 0.5]]),
    "C": np.array([[0.5, 0.5, 0], [-0.5, 0.5, 0], [0, 0, 1]]),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]),
    "R": np.array([[2, 1, 1], [-1, 1, 1], [-1, -2, 1]]) / 3,
}


@dataclass(frozen=True)
class Template:
    """What is sampled: a space group and per site its atomic number and Wyckoff position index."""

    spacegroup: int
    numbers: tuple[int, ...]
    wyckoff: tuple[int, ...]

    def counts(self) -> dict[int, int]:
        """Atoms of each element in the conventional cell."""
        return cell_counts(self.spacegroup, self.numbers, self.wyckoff)


def primitive_structure(unit: AsymmetricUnit):
    """The primitive cell of a conventional-cell asymmetric unit (centring removed exactly: the primitive
    vectors of the group's lattice type, duplicate atoms merged)."""
    from pymatgen.core import Lattice, Structure

    conventional = unit.structure()
    transform = CENTRING[symbol(unit.spacegroup)[0]]
    if transform is CENTRING["P"]:
        return conventional
    lattice = Lattice(transform @ conventional.lattice.matrix)
    coords = np.mod(conventional.frac_coords @ np.linalg.inv(transform), 1.0)
    numbers = [site.specie.Z for site in conventional]
    kept_coords, kept_numbers = [], []
    for z, f in zip(numbers, coords):
        if any(zk == z and np.abs((d := f - fk) - np.rint(d)).max() < 1e-4 for zk, fk in zip(kept_numbers,
                                                                                          kept_coords)):
            continue
        kept_coords.append(f)
        kept_numbers.append(z)
    return Structure(lattice, kept_numbers, np.array(kept_coords))


class LangevinPipeline:
    """Annealed Langevin sampling with a trained :class:`~.model.ScoreNetwork` and its training prior
    (per-element volumes for the lattice scale, the mean lattice latent per crystal family)."""

    def __init__(self, network: torch.nn.Module, prior: dict, scheduler: LangevinScheduler | None = None,
                 device: torch.device | str = "cpu"):
        self.network = network.eval()
        self.volumes = np.asarray(prior["volumes"])
        self.z_mean = {f: torch.tensor(prior["z_mean"][f]) for f in FAMILIES}
        self.scheduler = scheduler or LangevinScheduler()
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, templates: list[Template], generator: torch.Generator | None = None,
                 callback=None) -> list[AsymmetricUnit]:
        """One sampled asymmetric unit per template. ``callback(step, total)`` after every Langevin step; an
        exception raised in it stops the sampling."""
        generator = generator or torch.Generator().manual_seed(0)
        scheduler = self.scheduler
        # factories default to the device (the graph is built where the network runs); not needed on the CPU
        with torch.device(self.device) if self.device.type != "cpu" else nullcontext():
            crystals = Crystals.of(templates, self.volumes)
            n = len(templates)
            dtype = torch.get_default_dtype()
            free = crystals.lattice.free.to(dtype)
            points = torch.rand(len(crystals.site_batch), 3, generator=generator).to(self.device, dtype)
            _, sigma_l = scheduler.sigma(0.0)
            z = torch.stack([self.z_mean[family(t.spacegroup)] for t in templates]).to(self.device, dtype)
            z = self._keep_cells(crystals, z, z + sigma_l * torch.randn(n, 6, generator=generator).to(z) * free)
            total = scheduler.num_steps + 1
            for step, (_, level) in enumerate(scheduler.timesteps):
                scores, dz = self._evaluate(crystals, points, z, level)
                matrices = crystals.lattice.matrices(z)
                projector, pinv = crystals.projector(matrices)
                noise = torch.randn(points.shape, generator=generator).to(points)
                move = scheduler.step_positions(scores, level, torch.einsum("sij,sj->si", projector, noise))
                points = torch.remainder(points + torch.einsum("sij,sj->si", pinv, move), 1.0)
                lattice_noise = torch.randn(z.shape, generator=generator).to(z)
                z = self._keep_cells(crystals, z, self._clamp(z + scheduler.step_lattice(dz, level, lattice_noise,
                                                                                        free)))
                if callback is not None:
                    callback(step + 1, total)
            level = float(scheduler.levels[-1])
            scores, dz = self._evaluate(crystals, points, z, level)
            _, pinv = crystals.projector(crystals.lattice.matrices(z))
            move, change = scheduler.denoise(scores, dz, level)
            points = torch.remainder(points + torch.einsum("sij,sj->si", pinv, move), 1.0)
            z = self._keep_cells(crystals, z, self._clamp(z + change * free))
            if callback is not None:
                callback(total, total)
            parameters = crystals.lattice.parameters(z).double().cpu().numpy()
        parameters[:, 3:] = np.degrees(parameters[:, 3:])
        points = points.double().cpu().numpy()
        batch = crystals.site_batch.cpu().numpy()
        return [AsymmetricUnit(t.spacegroup, parameters[b], np.array(t.numbers), np.array(t.wyckoff),
                               points[batch == b]) for b, t in enumerate(templates)]

    def _evaluate(self, crystals: Crystals, points, z, level: float):
        n = crystals.n_structures
        _, sigma_l = self.scheduler.sigma(level)
        levels = torch.full((n,), level, dtype=z.dtype)
        scores, dz, _ = self.network(crystals, points, z, levels, torch.full((n,), sigma_l, dtype=z.dtype))
        return scores, dz

    @staticmethod
    def _keep_cells(crystals: Crystals, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        """``new`` with the angles of ``old`` where ``new`` would make a (nearly) flat cell."""
        flat = crystals.lattice.height2(new) < MIN_HEIGHT2
        return torch.where(flat[:, None] & (torch.arange(6) >= 3), old, new)

    @staticmethod
    def _clamp(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z[:, :3].clamp(*LENGTH_RANGE), z[:, 3:]], 1)
