"""Known structure prototypes of a space group, with the user's elements substituted in.

Given a composition and a space group, the *prototype library* looks for training structures with the same
stoichiometry pattern (the multiset of per-element site counts in the primitive standard cell, e.g. AB2 with
3 sites) in the same space group, maps their elements onto the requested ones (the count-compatible mapping
that keeps each element closest to its replacement in the 22 standardised elemental properties) and scales
the cell to a requested volume per atom. Candidates are ranked by that chemical distance, with structures
that are their own formula's lowest-energy polymorph first (a stable prototype is the better guess for a
"more stable polymorph"). Near-identical substituted structures (pymatgen StructureMatcher) are kept once.

This is classic prototype/ion substitution; in :mod:`explorer.modification` it supplies candidates next to the
learned models (see ``prototypes=`` of :func:`explorer.modification.modify`). The library is built from the
``train`` split of the structure files in the data directory (third-party data, read in place, never
shipped); evaluation pairs come from the val/test splits, whose formulas are not in the train split.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np
from pymatgen.core import Element, Structure

from .elements import N_ELEMENTS, feature_matrix, reduced_composition_key, symbols
from .errors import ExplorerInputError
from .representation import decode

NOT_GROUND_STATE_PENALTY = 3.0  # added to the chemical distance of a template that is not its formula's ground state
MAX_SCANNED = 60  # templates looked at (in ranked order) when removing duplicates
SUBGROUP_SCANNED = 8  # parent-group templates tried (distorting one costs up to a second; val hits were first)


@dataclass
class Prototype:
    """One substituted template: ``structure`` (the requested elements, scaled cell), where it came from
    (``source_id``, ``source_formula``), the element ``substitution`` {template symbol: new symbol},
    ``distance`` (sum of elemental-property distances of the substitution, standardised units),
    ``ground_state`` (the template is the lowest-energy polymorph of its own formula), its ``rank`` and, for a
    template distorted into a subgroup of its own group (:meth:`PrototypeLibrary.query_subgroup`), that
    ``parent_spacegroup`` (0: the template has the requested group itself)."""

    structure: Structure
    source_id: str
    source_formula: str
    substitution: dict = field(default_factory=dict)
    distance: float = 0.0
    ground_state: bool = False
    rank: int = 0
    same_as_reference: bool = False
    parent_spacegroup: int = 0

    def origin(self) -> dict:
        """JSON-ready: where the structure comes from and how it was made (no structure)."""
        origin = {"source_id": self.source_id, "source_formula": self.source_formula,
                  "substitution": self.substitution, "distance": self.distance, "ground_state": self.ground_state,
                  "same_as_reference": self.same_as_reference}
        if self.parent_spacegroup:
            origin["parent_spacegroup"] = self.parent_spacegroup
        return origin


def stoichiometry_pattern(atomic_numbers) -> tuple[int, ...]:
    """Sorted per-element site counts of a cell, e.g. (1, 2) for a 3-site AB2 cell."""
    return tuple(sorted(Counter(int(z) for z in atomic_numbers if z > 0).values()))


@lru_cache(maxsize=1)
def _property_rows() -> np.ndarray:
    return np.nan_to_num(feature_matrix()[:, N_ELEMENTS:].astype(np.float64))


def best_substitution(template_z, target_z) -> tuple[float, dict[int, int]]:
    """(distance, {template Z: target Z}): the bijection between the two element sets that preserves site
    counts and has the smallest summed elemental-property distance (an optimal assignment within each group of
    elements with the same site count)."""
    from scipy.optimize import linear_sum_assignment

    have, want = Counter(int(z) for z in template_z), Counter(int(z) for z in target_z)
    if sorted(have.values()) != sorted(want.values()):
        raise ExplorerInputError("the template and the target have different stoichiometry patterns")
    props = _property_rows()
    total, mapping = 0.0, {}
    for count in sorted(set(have.values())):
        old = sorted(z for z, n in have.items() if n == count)
        new = sorted(z for z, n in want.items() if n == count)
        cost = np.linalg.norm(props[np.array(old) - 1][:, None, :] - props[np.array(new) - 1][None, :, :], axis=-1)
        rows, columns = linear_sum_assignment(cost)
        total += float(cost[rows, columns].sum())
        mapping.update({old[r]: new[c] for r, c in zip(rows, columns)})
    return total, mapping


def default_volume_per_atom(template: Structure, substitution: dict[int, int]) -> float:
    """Å³/atom: the template's volume per atom scaled by the cubed ratio of the atomic radii of the new and
    old elements (averaged over sites)."""
    def radius(z: int) -> float:
        value = Element.from_Z(z).atomic_radius
        return float(value) if value is not None else 1.5

    old = sum(radius(site.specie.Z) ** 3 for site in template)
    new = sum(radius(substitution.get(site.specie.Z, site.specie.Z)) ** 3 for site in template)
    return template.volume / len(template) * new / old


class PrototypeLibrary:
    """Structures indexed by (stoichiometry pattern, space group). Build it with :meth:`from_data`
    (the train split of the data directory) or from any :class:`~explorer.data.ProcessedSet`."""

    def __init__(self, data):
        self.data = data
        self.ground_state = self._ground_states(data)
        self.index = defaultdict(list)
        for i in range(len(data)):
            self.index[(stoichiometry_pattern(data.species[i]), int(data.spacegroup[i]))].append(i)

    @staticmethod
    def _ground_states(data) -> np.ndarray:
        lowest = {}
        for i in range(len(data)):
            key = reduced_composition_key(data.species[i])
            if key not in lowest or data.energy[i] < data.energy[lowest[key]]:
                lowest[key] = i
        flags = np.zeros(len(data), dtype=bool)
        flags[list(lowest.values())] = True
        return flags

    @classmethod
    def from_data(cls, data_dir=None, splits=("train",), workers: int | None = None,
                  callback=None) -> PrototypeLibrary:
        """Library of the given splits of ``mp_structures`` + ``wbm_structures`` in the data directory
        (``workers``: processes encoding structures that are not cached yet, default all cores; ``callback(done,
        total, file name)`` follows that encoding and may raise to stop it)."""
        from .data import load_training_data

        return cls(load_training_data(data_dir, splits=splits, workers=workers, callback=callback))

    def __len__(self) -> int:
        return len(self.data)

    def count(self, atomic_numbers, spacegroup: int) -> int:
        """Number of templates with this stoichiometry pattern in ``spacegroup`` (before de-duplication)."""
        return len(self.index.get((stoichiometry_pattern(atomic_numbers), int(spacegroup)), []))

    def query(self, atomic_numbers, spacegroup: int, k: int = 5, volume_per_atom: float | None = None,
              other_formulas_only: bool = False, reference: Structure | None = None) -> list[Prototype]:
        """Up to ``k`` distinct substituted templates for a cell with these atomic numbers in ``spacegroup``,
        best first. ``volume_per_atom`` (Å³): the scaled cell volume (default: radius-ratio estimate).
        ``other_formulas_only``: skip templates of the requested formula itself (its known polymorphs) — for
        evaluation, where the target is such a polymorph; a user wants them, so it is off by default.
        ``reference``: a structure to compare with (the user's own): prototypes that match it (StructureMatcher
        0.2 / 0.3 / 5°) keep their rank and say so in ``same_as_reference``."""
        z = _checked_cell(atomic_numbers, volume_per_atom)
        rows = self.index.get((stoichiometry_pattern(z), int(spacegroup)), [])
        return self._substituted(self._ranked(rows, z, other_formulas_only), k, volume_per_atom, reference)

    def query_subgroup(self, atomic_numbers, spacegroup: int, k: int = 2, volume_per_atom: float | None = None,
                       other_formulas_only: bool = False, seed: int = 0) -> list[Prototype]:
        """Up to ``k`` distinct templates of *parent* groups — space groups of which ``spacegroup`` is a subgroup
        within :data:`explorer.symmetric.MAX_LAYERS` maximal steps —, substituted as in :meth:`query` and then
        distorted into ``spacegroup`` (:func:`explorer.symmetric.lower_symmetry`; ``seed`` makes the
        displacements reproducible): a distorted variant of a known structure type, for a group in which the
        train split has no template of the stoichiometry. ``parent_spacegroup`` says which group each came
        from."""
        from .symmetric import is_subgroup, lower_symmetry

        z = _checked_cell(atomic_numbers, volume_per_atom)
        pattern, spacegroup = stoichiometry_pattern(z), int(spacegroup)
        rows = [i for (key, group), members in self.index.items()
                if key == pattern and group != spacegroup and is_subgroup(spacegroup, group) for i in members]
        ranked = self._ranked(rows, z, other_formulas_only)[:SUBGROUP_SCANNED]
        return self._substituted(ranked, k, volume_per_atom, None,
                                 partial(lower_symmetry, spacegroup=spacegroup, seed=seed))

    def _ranked(self, rows, z, other_formulas_only: bool) -> list:
        """(rank key, distance, row, substitution) of the template ``rows`` for the target cell ``z``, best
        first: elemental-property distance, + a penalty for templates that are not their formula's ground
        state."""
        own_formula = reduced_composition_key(z)
        ranked = []
        for i in rows:
            if other_formulas_only and reduced_composition_key(self.data.species[i]) == own_formula:
                continue
            distance, mapping = best_substitution(self.data.species[i][: self.data.n_sites[i]], z)
            ranked.append((distance + (0.0 if self.ground_state[i] else NOT_GROUND_STATE_PENALTY), distance, i,
                           mapping))
        ranked.sort(key=lambda r: (r[0], r[2]))
        return ranked

    def _substituted(self, ranked, k: int, volume_per_atom, reference, lower=None) -> list[Prototype]:
        """Up to ``k`` :class:`Prototype` from the ``ranked`` templates: elements substituted, cell scaled,
        then, with ``lower``, distorted into a subgroup by ``lower(structure)`` (None drops the template; the
        prototype records its template's group as ``parent_spacegroup``), near-duplicates (StructureMatcher 0.2 /
        0.3 / 5°) kept once; at most :data:`MAX_SCANNED` templates looked at."""
        from .matching import Matcher
        from .representation import STRICT

        matcher = Matcher(**STRICT)
        reference = None if reference is None else matcher.reduced(reference)
        names = symbols()
        kept: list[Prototype] = []
        reduced: list = []  # of the kept ones
        for _, distance, i, mapping in ranked[:MAX_SCANNED]:
            template = decode(self.data.matrix[i], self.data.species[i][: self.data.n_sites[i]])
            formula = template.composition.reduced_formula
            structure = template.copy()
            structure.replace_species({Element.from_Z(a): Element.from_Z(b) for a, b in mapping.items() if a != b})
            volume = volume_per_atom or default_volume_per_atom(template, mapping)
            structure.scale_lattice(volume * len(structure))
            if lower is not None:
                structure = lower(structure)
                if structure is None:
                    continue
            mine = matcher.reduced(structure)
            if any(matcher.fit(mine, other) for other in reduced):
                continue
            same = reference is not None and matcher.fit(mine, reference)
            reduced.append(mine)
            parent = int(self.data.spacegroup[i]) if lower is not None else 0
            kept.append(Prototype(structure, str(self.data.ids[i]), formula,
                                  {names[a - 1]: names[b - 1] for a, b in mapping.items()}, round(distance, 4),
                                  bool(self.ground_state[i]), len(kept), same, parent))
            if len(kept) >= k:
                break
        return kept


def _checked_cell(atomic_numbers, volume_per_atom) -> list[int]:
    """The atomic numbers of a cell to substitute into, after the checks every query makes."""
    z = [int(v) for v in atomic_numbers if int(v) > 0]
    if not z:
        raise ExplorerInputError("no atoms to place")
    if max(z) > N_ELEMENTS:
        raise ExplorerInputError(f"atomic numbers must be in 1..{N_ELEMENTS}")
    if volume_per_atom is not None and not (math.isfinite(volume_per_atom) and volume_per_atom > 0):
        raise ExplorerInputError(f"volume per atom must be a positive number of Å³, got {volume_per_atom}")
    return z


def prototype_slots(n: int, prototypes, share: float = 0.5) -> int:
    """How many of ``n`` candidates may be prototypes: ``prototypes`` None/"auto" = ``share`` of them (rounded
    up) when the library's data files are present, else none; True = the same, and the data files must be
    there; False or 0 = none; an int = at most that many."""
    half = min(int(n), math.ceil(int(n) * share))
    if prototypes is None or (isinstance(prototypes, str) and prototypes == "auto"):
        return half if prototype_library_available() else 0
    if prototypes is True:
        require_prototype_library()
        return half
    if prototypes is False:
        return 0
    try:
        count = int(prototypes)
    except (TypeError, ValueError):
        count = -1
    if count < 0 or count != prototypes:
        raise ExplorerInputError(f"prototypes must be 'auto', True/False or a whole number >= 0, got {prototypes!r}")
    if count:
        require_prototype_library()
    return min(count, int(n))


def require_prototype_library() -> None:
    """Clear error when the structure files the prototype library is built from are not in the data directory."""
    from .config import data_dir

    if not prototype_library_available():
        raise ExplorerInputError(f"known prototypes need mp_structures.csv.gz and wbm_structures.csv.gz in the data "
                                 f"directory ({data_dir()}; set EXPLORER_DATA_DIR) — or ask for none "
                                 "(prototypes=0, --prototypes 0 / --no-prototypes)")


_LIBRARIES: dict = {}
_LIBRARIES_LOCK = threading.Lock()


def load_prototype_library(data_dir=None, callback=None) -> PrototypeLibrary:
    """The train-split library of the data directory, built once per process (0.7 s from the cached arrays;
    the first build encodes every structure with all cores, 235 s on 2 cores; ``callback(done, total, file
    name)`` follows it and may raise to stop it). Raises :class:`~explorer.errors.ExplorerInputError` when the
    structure files are missing."""
    from .config import data_dir as resolve_data_dir

    key = str(resolve_data_dir(data_dir))
    with _LIBRARIES_LOCK:  # the app builds it in the background while a Modify click may ask for it
        if key not in _LIBRARIES:
            _LIBRARIES[key] = PrototypeLibrary.from_data(key, callback=callback)
        return _LIBRARIES[key]


def prototype_library_ready(data_dir=None) -> bool:
    """Whether :func:`load_prototype_library` will be quick: built already in this process, or the processed
    arrays of both structure files are cached on disk (the first build encodes every structure: 235 s on
    2 cores for the shared MP + WBM files)."""
    from .config import data_dir as resolve_data_dir
    from .data import training_data_cached

    return str(resolve_data_dir(data_dir)) in _LIBRARIES or training_data_cached(data_dir)


def prototype_library_available(data_dir=None) -> bool:
    """Whether the structure files the library is built from are in the data directory."""
    from .config import data_dir as resolve_data_dir
    from .data import TRAINING_FILES

    folder = resolve_data_dir(data_dir)
    return all((folder / name).is_file() for name in TRAINING_FILES)
