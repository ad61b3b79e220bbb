"""The StructRepDiff vector of a crystal (paper 001, section 4.1) and its parts:

    [ EAD max-pooled (F) | EAD min-pooled (F) | shortest distance (1) | composition (E) | atoms (1) | a b c α β γ ]

F = features per atom of :class:`~.ead.EADParams`, E = the training elements of a model (composition = atom
fractions in that order). Lattice parameters are those of the Niggli-reduced cell (Å, degrees).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...errors import ExplorerInputError
from .ead import EAD, EADParams, PairList, neighbour_weights

SKIN = 1.0  # Å beyond the cutoff kept in a pair list
MIN_LENGTH, MIN_ANGLE, MAX_ANGLE = 1.0, 30.0, 150.0


@dataclass(frozen=True)
class Layout:
    """Where each part sits in the vector of a model with ``elements`` (atomic numbers) and EAD ``params``."""

    params: EADParams
    elements: tuple[int, ...]

    @property
    def n_ead(self) -> int:
        """Length of the EAD block (max, min, shortest distance): what reconstruction matches."""
        return 2 * self.params.size + 1

    @property
    def composition(self) -> slice:
        return slice(self.n_ead, self.n_ead + len(self.elements))

    @property
    def atoms(self) -> int:
        return self.n_ead + len(self.elements)

    @property
    def lattice(self) -> slice:
        return slice(self.atoms + 1, self.atoms + 7)

    @property
    def size(self) -> int:
        return self.atoms + 7

    def to_json(self) -> dict:
        return {"params": self.params.to_json(), "elements": list(self.elements)}

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        return cls(EADParams(**data["params"]), tuple(int(z) for z in data["elements"]))

    def check_elements(self, numbers) -> None:
        """One-line error for an element outside the model's training elements."""
        from pymatgen.core import Element

        outside = sorted(set(int(z) for z in numbers) - set(self.elements))
        if outside:
            names = ", ".join(Element.from_Z(z).symbol for z in outside)
            raise ExplorerInputError(f"element(s) {names} are not among this model's {len(self.elements)} training "
                                     "elements")

    def header(self, numbers, lattice_parameters) -> np.ndarray:
        """The composition, atom count and lattice entries (everything but the EAD block)."""
        self.check_elements(numbers)
        out = np.zeros(self.size - self.n_ead)
        index = {z: k for k, z in enumerate(self.elements)}
        for z in numbers:
            out[index[int(z)]] += 1.0 / len(numbers)
        out[len(self.elements)] = len(numbers)
        out[len(self.elements) + 1 :] = lattice_parameters
        return out

    def decode(self, vector: np.ndarray, max_atoms: int = 60, neutral: bool = False,
               element_penalty: float = 0.0) -> tuple[list[int], np.ndarray]:
        """(atomic numbers, lattice parameters) that a (generated) vector describes: the atom count rounded,
        the composition apportioned to it by largest remainders, the lattice clamped to a valid cell.

        With ``neutral`` or an ``element_penalty``, the composition is instead the apportionment over the k most
        abundant elements (k ≤ 6) with the smallest L1 distance to the sampled fractions + ``element_penalty`` ×
        its number of elements, among the charge-neutral ones (SMACT; an element alone does not count) where
        ``neutral`` and any is; the sampled block spreads a little weight over many elements."""
        vector = np.asarray(vector, dtype=float)
        if vector.shape != (self.size,):
            raise ExplorerInputError(f"a vector of this model has {self.size} entries, got {vector.shape}")
        n = int(np.clip(round(vector[self.atoms]), 1, max_atoms))
        fractions = np.clip(vector[self.composition], 0, None)
        if fractions.sum() <= 0:
            raise ExplorerInputError("the vector's composition block is empty")
        fractions = fractions / fractions.sum()
        if neutral or element_penalty:
            counts = closest_composition(fractions, n, self.elements, neutral, element_penalty)
        else:
            counts = apportion(fractions, n)
        numbers = [z for z, c in zip(self.elements, counts) for _ in range(c)]
        lattice = np.array(vector[self.lattice], dtype=float)
        lattice[:3] = np.clip(lattice[:3], MIN_LENGTH, None)
        lattice[3:] = np.clip(lattice[3:], MIN_ANGLE, MAX_ANGLE)
        return numbers, lattice


def apportion(fractions: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to ``n`` in proportion to ``fractions`` (largest remainders)."""
    share = fractions / fractions.sum() * n
    counts = np.floor(share).astype(int)
    for k in np.argsort(-(share - counts))[: n - counts.sum()]:
        counts[k] += 1
    return counts


def is_neutral(counts, elements) -> bool:
    """SMACT validity of the composition ``counts`` over ``elements`` (atomic numbers)."""
    from pymatgen.core import Composition, Element

    from ...checks import smact_valid

    return smact_valid(Composition({Element.from_Z(int(z)): int(c) for z, c in zip(elements, counts) if c}))


def closest_composition(fractions: np.ndarray, n: int, elements, neutral: bool = True, element_penalty: float = 0.0,
                        max_elements: int = 6) -> np.ndarray:
    """Counts (summing to ``n``) minimising L1(counts / n, fractions) + ``element_penalty`` × elements among the
    apportionments over the k most abundant elements (k ≤ ``max_elements``); with ``neutral`` only the
    charge-neutral compounds compete (the unconstrained best where none is)."""
    order = np.argsort(-fractions)
    scored = []
    for k in range(1, min(max_elements, n, int((fractions > 0).sum())) + 1):
        top = np.zeros_like(fractions)
        top[order[:k]] = fractions[order[:k]]
        counts = apportion(top, n)
        if not any(np.array_equal(counts, other) for _, other in scored):
            cost = float(np.abs(counts / n - fractions).sum()) + element_penalty * np.count_nonzero(counts)
            scored.append((cost, counts))
    scored.sort(key=lambda item: item[0])
    if neutral:
        for _, counts in scored:
            if np.count_nonzero(counts) > 1 and is_neutral(counts, elements):
                return counts
    return scored[0][1]


def reduced_cell(structure):
    """The Niggli-reduced structure (the cell whose parameters the vector holds)."""
    return structure.get_reduced_structure()


def pack(structures, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(fractional positions (C, N, 3), lattices (C, 3, 3), atomic numbers (C, N), mask (C, N)) of structures
    padded to the largest."""
    n = max(len(s) for s in structures)
    frac = torch.zeros(len(structures), n, 3, dtype=dtype)
    numbers = torch.zeros(len(structures), n, dtype=torch.long)
    lattice = torch.zeros(len(structures), 3, 3, dtype=dtype)
    for c, s in enumerate(structures):
        frac[c, : len(s)] = torch.tensor(s.frac_coords % 1.0, dtype=dtype)
        numbers[c, : len(s)] = torch.tensor([site.specie.Z for site in s])
        lattice[c] = torch.tensor(s.lattice.matrix, dtype=dtype)
    return frac, lattice, numbers, numbers > 0


def ead_block(structures, params: EADParams, batch: int = 64) -> np.ndarray:
    """(C, 2F + 1) EAD blocks of structures (as given, no reduction)."""
    ead = EAD(params)
    out = []
    with torch.no_grad():
        for start in range(0, len(structures), batch):
            frac, lattice, numbers, mask = pack(structures[start : start + batch])
            pairs = PairList.build(frac, lattice, mask, params.cutoff)
            out.append(ead.pooled(frac, lattice, neighbour_weights(numbers).double(), mask, pairs).numpy())
    return np.concatenate(out)


def describe(structures, layout: Layout) -> np.ndarray:
    """(C, layout.size) StructRepDiff vectors of pymatgen structures (Niggli-reduced first)."""
    if not structures:
        raise ExplorerInputError("no structures to describe")
    reduced = [reduced_cell(s) for s in structures]
    block = ead_block(reduced, layout.params)
    headers = np.stack([layout.header([site.specie.Z for site in s], s.lattice.parameters) for s in reduced])
    return np.concatenate([block, headers], 1)


__all__ = ["Layout", "apportion", "closest_composition", "describe", "is_neutral", "ead_block", "pack", "reduced_cell"]
