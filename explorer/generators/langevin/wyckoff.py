"""Wyckoff positions as affine maps, and crystals as asymmetric units.

Every site of a crystal is one Wyckoff position of its space group (standard setting, conventional cell, the
tables of pyxtal) and a generic point ``p`` (fractional, 3-vector): the site's atoms are ``R_k p + t_k`` for the
``k`` = 1..multiplicity operations of the position, its representative ``R_0 p + t_0``. A sample moves ``p``
only where ``R_0`` lets it (the position's free parameters), so every sample has the group by construction.

:func:`asymmetric_unit` reads a pymatgen Structure into this form (pyxtal's symmetrisation, tolerance 0.1 Å as
the data's space-group column); :func:`site_splits` lists the ways a formula can sit on a group's Wyckoff
positions, ranked by how often the training data use each position.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ...errors import ExplorerInputError
from ...spacegroups import check_spacegroup, lattice_points

SYMPREC = 0.1  # Å, as the space-group column of the data and the checks of every candidate
MAX_SPLITS = 400  # site splits ranked per request (the most likely first)


@dataclass(frozen=True)
class WyckoffPosition:
    """One Wyckoff position: ``rotations`` (m, 3, 3) and ``translations`` (m, 3) map a generic point onto the
    position's m atoms; ``operations`` (m, 3, 3): the rotation part of a group operation taking the first atom
    onto atom k (how its neighbourhood is turned); ``dof`` free parameters; ``index`` in pyxtal's list of the
    group (0: general)."""

    spacegroup: int
    index: int
    letter: str
    multiplicity: int
    dof: int
    rotations: np.ndarray
    translations: np.ndarray
    operations: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.multiplicity}{self.letter}"


@cache
def positions(spacegroup: int) -> tuple[WyckoffPosition, ...]:
    """The Wyckoff positions of a space group, general position first (pyxtal's order)."""
    from pyxtal.symmetry import Group

    out = []
    wps = Group(check_spacegroup(spacegroup)).Wyckoff_positions
    general = np.array([op.affine_matrix for op in wps[0].ops], dtype=np.float64)
    generic = np.array([0.1234, 0.3456, 0.2789])
    for index, wp in enumerate(wps):
        mats = np.array([op.affine_matrix for op in wp.ops], dtype=np.float64)
        rotations, translations = mats[:, :3, :3], mats[:, :3, 3]
        dof = int(np.linalg.matrix_rank(rotations[0]))
        null = np.eye(3) - np.linalg.pinv(rotations[0]) @ rotations[0]
        if not np.allclose(rotations @ null, 0, atol=1e-8):  # every copy moves with the representative only
            raise AssertionError(f"Wyckoff position {wp.get_label()} of {spacegroup}: copies depend on more than "
                                 "the representative")
        first = rotations[0] @ generic + translations[0]
        images = general[:, :3, :3] @ first + general[:, :3, 3]  # (ops, 3)
        copies = rotations @ generic + translations  # (m, 3)
        gap = images[None] - copies[:, None]
        which = np.abs(gap - np.rint(gap)).max(-1).argmin(1)  # a group operation per copy
        if np.abs(gap - np.rint(gap)).max(-1).min(1).max() > 1e-6:
            raise AssertionError(f"Wyckoff position {wp.get_label()} of {spacegroup}: a copy is no image")
        out.append(WyckoffPosition(spacegroup, index, wp.letter, int(wp.multiplicity), dof, rotations,
                                   translations, general[which, :3, :3]))
    return tuple(out)


@cache
def multiplicities(spacegroup: int) -> tuple[int, ...]:
    """The multiplicities of the Wyckoff positions of :func:`positions` (pyxtal's tables, without building the
    positions: a model load counts the prior's examples of every group)."""
    from pyxtal.symmetry import get_wyckoffs

    return tuple(len(ops) for ops in get_wyckoffs(check_spacegroup(spacegroup)))


def cell_counts(spacegroup: int, numbers, wyckoff) -> dict[int, int]:
    """Atoms of each element in the conventional cell of sites (atomic numbers, Wyckoff position indices)."""
    table = multiplicities(spacegroup)
    out: dict[int, int] = {}
    for z, w in zip(numbers, wyckoff):
        out[int(z)] = out.get(int(z), 0) + table[int(w)]
    return out


@dataclass
class AsymmetricUnit:
    """A crystal as its space group, conventional lattice parameters (Å, degrees) and one (element, Wyckoff
    position index, generic point) per symmetry-inequivalent site."""

    spacegroup: int
    parameters: np.ndarray  # a, b, c, alpha, beta, gamma
    numbers: np.ndarray  # (sites,) atomic numbers
    wyckoff: np.ndarray  # (sites,) position indices
    points: np.ndarray  # (sites, 3) generic points

    def frac_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """All atoms of the conventional cell: (atomic numbers, fractional coordinates in [0, 1))."""
        table = positions(self.spacegroup)
        numbers, coords = [], []
        for z, w, p in zip(self.numbers, self.wyckoff, self.points):
            wp = table[int(w)]
            coords.append(np.mod(wp.rotations @ p + wp.translations, 1.0))
            numbers += [int(z)] * wp.multiplicity
        return np.array(numbers), np.concatenate(coords)

    def structure(self):
        from pymatgen.core import Lattice, Structure

        numbers, coords = self.frac_coords()
        return Structure(Lattice.from_parameters(*self.parameters), numbers.tolist(), coords)


def asymmetric_unit(structure, tolerance: float = SYMPREC) -> AsymmetricUnit | None:
    """The asymmetric unit of ``structure`` in its space group found at ``tolerance`` (Å) in pyxtal's standard
    setting; None when pyxtal cannot symmetrise it."""
    from pyxtal import pyxtal

    crystal = pyxtal()
    try:
        crystal.from_seed(structure, tol=tolerance)
    except Exception:  # pyxtal raises many kinds for structures it cannot place
        return None
    number = int(crystal.group.number)
    table = positions(number)
    numbers, wyckoff, points = [], [], []
    for site in crystal.atom_sites:
        index = next((w.index for w in table if w.letter == site.wp.letter), None)
        if index is None:
            return None
        wp = table[index]
        point = np.linalg.pinv(wp.rotations[0]) @ (np.asarray(site.position, float) - wp.translations[0])
        gap = wp.rotations[0] @ point + wp.translations[0] - site.position
        if np.abs(gap - np.rint(gap)).max() > 1e-4:
            return None
        numbers.append(int(site.specie.Z) if hasattr(site.specie, "Z") else _number(site.specie))
        wyckoff.append(index)
        points.append(point)
    return AsymmetricUnit(number, np.array(crystal.lattice.get_para(degree=True), dtype=np.float64),
                          np.array(numbers), np.array(wyckoff), np.array(points))


def _number(symbol) -> int:
    from pymatgen.core import Element

    return Element(str(symbol)).Z


# ------------------------------------------------------------------------------------------- site splits


@dataclass(frozen=True)
class SiteSplit:
    """One way to place a composition on a group's Wyckoff positions: per site its element and position index,
    with its score under a :class:`SplitPrior` (higher: more likely)."""

    spacegroup: int
    numbers: tuple[int, ...]
    wyckoff: tuple[int, ...]
    log_prob: float

    def sites_per_element(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for z in self.numbers:
            out[z] = out.get(z, 0) + 1
        return out


def conventional_counts(species, spacegroup: int) -> dict[int, int]:
    """Atoms of each element in the conventional cell of ``spacegroup`` for cell contents ``species`` (atomic
    numbers of a primitive cell)."""
    counts: dict[int, int] = {}
    for z in species:
        counts[int(z)] = counts.get(int(z), 0) + lattice_points(spacegroup)
    return counts


def _element_options(table, count: int, logp: np.ndarray, sites: int | None, limit: int,
                     max_pops: int = 20000) -> list[tuple[float, tuple[int, ...]]]:
    """The ``limit`` most likely multisets of Wyckoff positions (indices) whose multiplicities sum to ``count``
    (``sites`` of them when given), best first: A* over partial multisets, each position without free
    parameters used at most once; the bound counts the fewest further sites the rest needs at the best
    log-probability."""
    mult = np.array([w.multiplicity for w in table])
    fixed = np.array([w.dof == 0 for w in table])
    best, most = float(logp.max()), int(mult.max())

    def bound(rem: int, used: int) -> float | None:
        need = -(-rem // most)
        if sites is not None:
            left = sites - used
            if left < need or (left == 0) != (rem == 0):
                return None
            need = left
        return need * best

    start = bound(count, 0)
    if start is None:
        return []
    heap = [(-start, 0.0, count, 0, ())]
    out, pops = [], 0
    while heap and len(out) < limit and pops < max_pops:
        _, score, rem, first, chosen = heapq.heappop(heap)
        pops += 1
        if rem == 0:
            out.append((score, chosen))
            continue
        for j in range(first, len(table)):
            if mult[j] > rem:
                continue
            h = bound(rem - mult[j], len(chosen) + 1)
            if h is None:
                continue
            value = score + float(logp[j])
            heapq.heappush(heap, (-(value + h), value, rem - int(mult[j]), j + 1 if fixed[j] else j,
                                  chosen + (j,)))
    return out


def _combine(options: list[list[tuple[float, tuple[int, ...]]]], fixed: set[int], limit: int) -> list:
    """The ``limit`` best choices of one option per element (best first) that use no position without free
    parameters twice: best-first over index tuples."""
    if any(not o for o in options):
        return []
    start = tuple(0 for _ in options)
    heap = [(-sum(o[0][0] for o in options), start)]
    seen, out = {start}, []
    while heap and len(out) < limit and len(seen) < 50 * limit:
        negative, index = heapq.heappop(heap)
        picked = [options[e][i][1] for e, i in enumerate(index)]
        used = [w for per in picked for w in per if w in fixed]
        if len(used) == len(set(used)):
            out.append((-negative, picked))
        for e in range(len(options)):
            nxt = index[:e] + (index[e] + 1,) + index[e + 1 :]
            if nxt[e] < len(options[e]) and nxt not in seen:
                seen.add(nxt)
                heapq.heappush(heap, (-sum(options[k][i][0] for k, i in enumerate(nxt)), nxt))
    return out


def split_pattern(numbers, wyckoff) -> tuple:
    """A split with the elements anonymised: the sorted tuple of each element's sorted position indices."""
    per: dict[int, list[int]] = {}
    for z, w in zip(numbers, wyckoff):
        per.setdefault(int(z), []).append(int(w))
    return tuple(sorted(tuple(sorted(v)) for v in per.values()))


PATTERN_WEIGHT = 3.0
NEIGHBOUR_TAU, NEIGHBOUR_WEIGHT = 3.0, 30.0  # chosen on val (benchmarks/split_prior.py)


@dataclass
class SplitPrior:
    """What the training data say about site splits: sites per (group, position), per (group, position,
    element), and structures per (group, anonymised split). A split scores

        sum over sites of log P(position | group, element) + PATTERN_WEIGHT * log(1 + structures with its
        anonymised split in the group),

    P(position | group, element) = (n(g, w, z) + |W| P(w | g)) / (n(g, z) + |W|) backed off to the add-one
    P(position | group). Chosen on val (true split first for 0.64 of 400 val structures; positions alone: 0.33).

    With ``examples`` (the training structures' own splits, element by element), a split also scores

        NEIGHBOUR_WEIGHT * log(1 + sum over training structures of the group with the same per-element counts
        whose split, their elements mapped onto the request's, is this one, of exp(-d / NEIGHBOUR_TAU)),

    ``d`` the elemental-property distance of that mapping (:func:`explorer.prototypes.best_substitution`, as ion
    exchange ranks its templates): the splits of chemically similar known crystals first (the Wyckoff templates
    of DiffCSP++). See :func:`site_splits`."""

    positions: dict = field(default_factory=dict)  # (g, w) -> sites
    elements: dict = field(default_factory=dict)  # (g, w, z) -> sites
    patterns: dict = field(default_factory=dict)  # (g, pattern) -> structures
    examples: dict = field(default_factory=dict)  # (g, sorted cell counts) -> [(numbers, wyckoff, structures)]
    neighbour_tau: float = NEIGHBOUR_TAU
    neighbour_weight: float = NEIGHBOUR_WEIGHT

    def __post_init__(self):
        self._group_element: dict[tuple[int, int], int] = {}
        for (g, _, z), c in self.elements.items():
            self._group_element[(g, z)] = self._group_element.get((g, z), 0) + c

    @classmethod
    def counted(cls, units, **options) -> SplitPrior:
        """The prior counted over training structures (an :class:`~.dataset.AsymmetricSet`); ``options``: the
        neighbour tau and weight."""
        return cls(units.frequencies(), units.element_frequencies(), units.patterns(), units.examples(), **options)

    @classmethod
    def from_json(cls, prior: dict) -> SplitPrior:
        examples: dict = {}
        for g, numbers, wyckoff, c in prior.get("examples", []):
            key = (int(g), tuple(sorted(cell_counts(int(g), numbers, wyckoff).values())))
            examples.setdefault(key, []).append((tuple(int(z) for z in numbers), tuple(int(w) for w in wyckoff),
                                                 int(c)))
        return cls({(int(g), int(w)): int(c) for g, w, c in prior.get("frequencies", [])},
                   {(int(g), int(w), int(z)): int(c) for g, w, z, c in prior.get("element_frequencies", [])},
                   {(int(g), tuple(tuple(int(w) for w in per) for per in pattern)): int(c)
                    for g, pattern, c in prior.get("patterns", [])}, examples,
                   float(prior.get("neighbour_tau", NEIGHBOUR_TAU)),
                   float(prior.get("neighbour_weight", NEIGHBOUR_WEIGHT)))

    def to_json(self) -> dict:
        out = {"frequencies": [[g, w, c] for (g, w), c in sorted(self.positions.items())],
               "element_frequencies": [[g, w, z, c] for (g, w, z), c in sorted(self.elements.items())],
               "patterns": [[g, [list(per) for per in pattern], c]
                            for (g, pattern), c in sorted(self.patterns.items())]}
        if self.examples:
            out["neighbour_tau"], out["neighbour_weight"] = self.neighbour_tau, self.neighbour_weight
            out["examples"] = [[g, list(numbers), list(wyckoff), c] for (g, _), rows in sorted(self.examples.items())
                               for numbers, wyckoff, c in rows]
        return out

    def neighbours(self, species, spacegroup: int) -> dict[tuple, float]:
        """{split key (:func:`split_key`): sum of exp(-d / tau) over the training structures that give it} for
        cell contents ``species`` (primitive cell) in ``spacegroup`` — see the class docstring."""
        from ...prototypes import best_substitution

        want = conventional_counts(species, spacegroup)
        rows = self.examples.get((int(spacegroup), tuple(sorted(want.values()))), [])
        target = [z for z, n in want.items() for _ in range(n)]
        out: dict[tuple, float] = {}
        for numbers, wyckoff, count in rows:
            template = [z for z, n in cell_counts(spacegroup, numbers, wyckoff).items() for _ in range(n)]
            distance, mapping = best_substitution(template, target)
            key = split_key((mapping[z] for z in numbers), wyckoff)
            out[key] = out.get(key, 0.0) + count * math.exp(-distance / self.neighbour_tau)
        return out

    def log_position(self, spacegroup: int, z: int) -> np.ndarray:
        """log P(position | group, element) for every position of the group."""
        table = positions(spacegroup)
        counts = np.array([self.positions.get((spacegroup, w.index), 0) + 1 for w in table], dtype=float)
        base = counts / counts.sum()
        own = np.array([self.elements.get((spacegroup, w.index, z), 0) for w in table], dtype=float)
        return np.log((own + len(table) * base) / (self._group_element.get((spacegroup, z), 0) + len(table)))

    def pattern_bonus(self, spacegroup: int, numbers, wyckoff) -> float:
        return PATTERN_WEIGHT * math.log1p(self.patterns.get((spacegroup, split_pattern(numbers, wyckoff)), 0))


def split_key(numbers, wyckoff) -> tuple:
    """A split as the sorted (atomic number, position index) pairs of its sites."""
    return tuple(sorted((int(z), int(w)) for z, w in zip(numbers, wyckoff)))


def site_splits(species, spacegroup: int, prior: SplitPrior | None = None, sites: dict | None = None,
                limit: int = MAX_SPLITS) -> list[SiteSplit]:
    """The ways cell contents ``species`` (primitive cell) fit on the Wyckoff positions of ``spacegroup``, most
    likely first under ``prior`` (:class:`SplitPrior`; None: fewest sites first). ``sites``: {atomic number:
    symmetry-inequivalent sites} keeps only the splits with those counts. One-line error when none fits."""
    from ...elements import symbols

    spacegroup = check_spacegroup(spacegroup)
    prior = prior or SplitPrior()
    counts = tuple(sorted(conventional_counts(species, spacegroup).items()))
    table = positions(spacegroup)
    sites = sites or {}
    options = [_element_options(table, n, prior.log_position(spacegroup, z), sites.get(z), limit)
               for z, n in counts]
    fixed = {w.index for w in table if w.dof == 0}
    found = {}
    for log_prob, picked in _combine(options, fixed, limit):
        numbers = tuple(z for (z, _), per in zip(counts, picked) for _ in per)
        wyckoff = tuple(w for per in picked for w in per)
        found[split_key(numbers, wyckoff)] = (float(log_prob), numbers, wyckoff)
    neighbours = prior.neighbours(species, spacegroup) if prior.neighbour_weight else {}
    logp = {z: prior.log_position(spacegroup, z) for z, _ in counts}
    for key in neighbours:  # a neighbour's split beyond the enumerated ones (unless it has other site counts)
        if key not in found and all(sum(1 for z, _ in key if z == e) == n for e, n in sites.items()):
            found[key] = (float(sum(logp[z][w] for z, w in key)), tuple(z for z, _ in key),
                          tuple(w for _, w in key))
    out = []
    for key, (log_prob, numbers, wyckoff) in found.items():
        score = log_prob + prior.pattern_bonus(spacegroup, numbers, wyckoff)
        score += prior.neighbour_weight * math.log1p(neighbours.get(key, 0.0))
        out.append(SiteSplit(spacegroup, numbers, wyckoff, score))
    if not out:
        names = symbols()
        formula = "".join(f"{names[z - 1]}{n // lattice_points(spacegroup)}" for z, n in counts)
        extra = "" if not sites else " with " + ", ".join(f"{names[z - 1]}:{k}" for z, k in sites.items()) + \
            " inequivalent sites"
        raise ExplorerInputError(f"no Wyckoff positions of space group {spacegroup} hold {formula}{extra}")
    out.sort(key=lambda split: -split.log_prob)
    return out
