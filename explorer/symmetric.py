"""Crystals with an exact space group (pyxtal).

- :func:`random_symmetric`: the formula's atoms put on Wyckoff positions of the group that can hold them, at
  random free coordinates, in a random cell of the group's crystal family. The baseline of random symmetric
  search, and what :func:`explorer.generate` returns in a slot where neither a known prototype nor a network
  sample has the requested space group.
- :func:`lower_symmetry`: a crystal of a space group H turned into one of its subgroups G (a path of maximal
  t- and k-subgroups, pyxtal's tables, at most ``MAX_LAYERS`` steps): every Wyckoff orbit of H split into the
  orbits of G it becomes, the atoms displaced at random along the freedoms G gives them (and, where G needs
  another lattice metric — cubic to tetragonal —, the cell strained by a few per cent) — the distorted
  variants of a parent structure (octahedral tilts of a cubic perovskite, a monoclinic shear of an orthorhombic
  cell), the way crystallographers relate structure types (Bärnighausen trees).

Every returned crystal has its group by construction, checked with spglib (symprec 0.1). Both are reproducible
from their ``seed`` (pyxtal's own lattice mutation draws from an unseeded generator, so the strain is applied
here instead).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import threading
import warnings
from collections import Counter
from copy import deepcopy
from functools import cache, lru_cache

import numpy as np
from pymatgen.core import Structure

from .elements import symbols
from .representation import detect_spacegroup
from .spacegroups import lattice_points

ATTEMPTS = 4
MAX_LAYERS = 3  # group-subgroup steps from a parent group to the requested one
DISPLACEMENT = 0.3  # pyxtal's displacement scale along the subgroup's freedoms (chosen on val: 0.15 often too small)
LATTICE_STRAIN = 0.1  # pyxtal's degree of lattice mutation (and atomic displacement) where the metric must change
STRAIN_DRAWS = 2  # random strains tried per choice (a small draw may leave the parent's metric)
LOWERING_TRIES = 6  # (path, splitter) choices tried per structure
_LOWERING = threading.Lock()  # lower_symmetry seeds and restores numpy's global generator (pyxtal draws from it)


def random_symmetric(atomic_numbers, spacegroup: int, seed: int = 0, attempts: int = ATTEMPTS,
                     volume_factor: float = 1.1) -> Structure | None:
    """A random crystal with exactly these cell contents (primitive cell) in ``spacegroup``, or None when pyxtal
    finds no placement in ``attempts`` tries (or the formula cannot have the group). ``seed`` makes it
    reproducible; ``volume_factor`` scales pyxtal's volume estimate from atomic radii."""
    from pyxtal import pyxtal

    counts = Counter(int(z) for z in atomic_numbers)
    names = symbols()
    species = [names[z - 1] for z in sorted(counts)]
    numbers = [counts[z] for z in sorted(counts)]
    for attempt in range(int(attempts)):
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, int(spacegroup), species, numbers, factor=volume_factor, conventional=False,
                                    random_state=int(seed) * 7919 + attempt)
                if not crystal.valid:
                    continue
                structure = crystal.to_pymatgen().get_primitive_structure()
        except Exception:  # pyxtal raises its own errors for formulas the group cannot hold
            continue
        if sorted(site.specie.Z for site in structure) != sorted(int(z) for z in atomic_numbers):
            continue
        if detect_spacegroup(structure) == int(spacegroup):
            return structure
    return None


def subgroup_paths(parent: int, child: int, max_layers: int = MAX_LAYERS) -> tuple:
    """The ways from space group ``parent`` down to its subgroup ``child`` in at most ``max_layers`` maximal
    steps: a tuple of paths, each a tuple of steps ("t" or "k", the ids of pyxtal's splitters that lead to the
    next group); () when ``child`` is not such a subgroup (or is ``parent`` itself, or pyxtal's search fails —
    a failure is not cached)."""
    if int(parent) == int(child):
        return ()
    try:
        return _subgroup_paths(int(parent), int(child), int(max_layers))
    except Exception:  # pyxtal's search fails for some pairs; they are then not related here
        return ()


@lru_cache(maxsize=4096)
def _subgroup_paths(parent: int, child: int, max_layers: int) -> tuple:
    from pyxtal.symmetry import Group, get_point_group

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = Group(parent, quick=True).search_subgroup_paths(child, max_layer=max_layers)
        paths = []
        for path in found:
            groups = [int(g) for g in path]
            steps = []
            for upper, lower in zip(groups[:-1], groups[1:]):
                kind = "k" if get_point_group(upper) == get_point_group(lower) else "t"
                table = Group._get_max_k_subgroup(upper) if kind == "k" else Group._get_max_t_subgroup(upper)
                steps.append((kind, tuple(i for i, g in enumerate(table["subgroup"]) if int(g) == lower)))
            if all(ids for _, ids in steps):
                paths.append(tuple(steps))
    return tuple(paths)


def is_subgroup(child: int, parent: int) -> bool:
    """Whether ``child`` is a proper subgroup of ``parent`` within :data:`MAX_LAYERS` maximal steps."""
    if int(child) not in _below(int(parent), MAX_LAYERS):  # pyxtal's path search would find no path either
        return False
    return bool(subgroup_paths(int(parent), int(child)))


@cache
def _maximal_subgroups(number: int) -> frozenset:
    """The maximal t- and k-subgroups of space group ``number`` that pyxtal's path search steps to."""
    from pyxtal.symmetry import Group

    return frozenset(int(g) for g in Group._get_max_subgroup_numbers(number))


@cache
def _below(parent: int, layers: int) -> frozenset:
    """The space groups that ``layers`` or fewer maximal steps lead to from ``parent`` (the graph that pyxtal's
    path search walks, without its paths: a quick no for the groups it cannot reach)."""
    if layers == 0:
        return frozenset()
    out = set(_maximal_subgroups(parent))
    for group in _maximal_subgroups(parent):
        out |= _below(group, layers - 1)
    return frozenset(out)


def lower_symmetry(structure: Structure, spacegroup: int, seed: int = 0, displacement: float = DISPLACEMENT,
                   tries: int = LOWERING_TRIES) -> Structure | None:
    """``structure`` (space group H, found by pyxtal at 0.05 Å) distorted into its subgroup ``spacegroup``
    (see the module docstring), as a primitive cell with the same number of atoms; None when ``spacegroup``
    is not a subgroup of H within :data:`MAX_LAYERS` steps, or no tried distortion keeps the cell size and has
    the group (spglib, symprec 0.1). The structure itself when it already has the group. ``seed`` makes it
    reproducible (pyxtal draws from numpy's global generator, whose state is restored afterwards; one lowering
    at a time per process)."""
    spacegroup = int(spacegroup)
    if detect_spacegroup(structure) == spacegroup:
        return structure
    wanted = sorted(site.specie.Z for site in structure)
    with _LOWERING:
        return _lowered(structure, spacegroup, wanted, int(seed), float(displacement), int(tries))


def _lowered(structure: Structure, spacegroup: int, wanted: list, seed: int, displacement: float,
             tries: int) -> Structure | None:
    """:func:`lower_symmetry`'s search (under its lock)."""
    state = np.random.get_state()
    try:  # pyxtal prints its splitters when one fails: not for the user's terminal
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            crystal = _crystal_class()()
            try:
                crystal.from_seed(structure, tol=0.05)
            except Exception:  # pyxtal cannot read every cell (e.g. overlapping atoms)
                return None
            np.random.seed(seed % (2 ** 32))
            rng = np.random.default_rng(seed)
            choices = [(tuple(kind for kind, _ in path), ids) for path in subgroup_paths(crystal.group.number,
                                                                                         spacegroup)
                       for ids in itertools.product(*(step_ids for _, step_ids in path))]
            cell = len(wanted) * lattice_points(spacegroup)  # atoms in the group's conventional cell
            for kinds, ids in choices[:tries]:
                # atoms displaced; where that leaves the parent's lattice metric, the lattice strained too
                for strain, eps in ((False, displacement),) + ((True, LATTICE_STRAIN),) * STRAIN_DRAWS:
                    try:
                        lowered = _by_path(crystal, kinds, ids, float(eps))
                        conventional = None if lowered is None else lowered.to_pymatgen()
                        if conventional is not None and strain:
                            for _ in kinds:  # once a group-subgroup step, as pyxtal's own mutation did
                                conventional = _strained(conventional, lowered.lattice.ltype, rng, float(eps))
                    except Exception:  # a splitter pyxtal cannot apply to this cell
                        conventional = None
                    if conventional is None or len(conventional) != cell:
                        break  # this path gives no cell, or a larger one: another draw will not change that
                    result = conventional.get_primitive_structure()
                    if sorted(site.specie.Z for site in result) == wanted and detect_spacegroup(result) == spacegroup:
                        return result
    finally:
        np.random.set_state(state)
    return None


@cache
def _crystal_class():
    """pyxtal's crystal whose copies share what they never change: the space group's tables and the Wyckoff
    positions (pyxtal copies a Wyckoff position before it transforms one). pyxtal deep-copies the whole crystal,
    group tables included, twice a group-subgroup step; the copies are otherwise the same."""
    from pyxtal import pyxtal

    class SharedTablesCrystal(pyxtal):
        def copy(self):
            memo = {id(self.group): self.group}
            for site in self.mol_sites if self.molecular else self.atom_sites:
                memo[id(site.wp)] = site.wp
            return deepcopy(self, memo)

    return SharedTablesCrystal


@lru_cache(maxsize=256)  # a request reuses its own (573 made for 40 requests took ~17 MB; 64 kept as many hits)
def _splitter(hall_number: int, sites: tuple, index: int, kind: str):
    """pyxtal's Wyckoff splitter of these Wyckoff positions (indices) of the group (its Hall number: the group in
    its setting) into its maximal subgroup ``index`` of ``kind`` ("t" or "k"): the same every time (it draws
    nothing when the subgroup is given), and the lowering's most expensive part."""
    from pyxtal.symmetry import Group
    from pyxtal.wyckoff_split import wyckoff_split

    return wyckoff_split(Group(hall_number, use_hall=True), wp1=list(sites), idx=index, group_type=kind)


def _by_path(crystal, kinds, ids, eps: float):
    """``crystal.subgroup_by_path(kinds, ids, eps)[0]`` (pyxtal, atomic crystals) with the splitters from
    :func:`_splitter`: the same structure from the same draws of numpy's global generator; None where pyxtal
    gives none."""
    struc, group = crystal.copy(), crystal.group
    for kind, index in zip(kinds, ids):
        splitter = _splitter(group.hall_number, tuple(site.wp.index for site in struc.atom_sites), int(index), kind)
        struc = struc._subgroup_by_splitter(splitter, eps=eps, mut_lat=False)
        if struc is None:
            return None
        group = splitter.H
    return struc


def _strained(structure: Structure, lattice_type: str, rng: np.random.Generator, degree: float) -> Structure:
    """``structure`` (a conventional cell) with its cell parameters scaled by 1 ± degree/2 at random within what
    its crystal family leaves free (a = b for tetragonal and hexagonal cells, β alone for monoclinic ones), the
    fractional coordinates kept: pyxtal's lattice mutation, drawn from ``rng``."""
    from pymatgen.core import Lattice

    factors = 1 + degree * (rng.random(6) - 0.5)
    a, b, c, alpha, beta, gamma = structure.lattice.parameters
    if lattice_type == "cubic":
        a = b = c = a * factors[0]
    elif lattice_type in ("hexagonal", "trigonal", "tetragonal"):
        a, b, c = a * factors[0], a * factors[0], c * factors[2]
    else:
        a, b, c = a * factors[0], b * factors[1], c * factors[2]
        if lattice_type == "monoclinic":
            beta = beta * factors[4]
        elif lattice_type == "triclinic":
            alpha, beta, gamma = alpha * factors[3], beta * factors[4], gamma * factors[5]
    lattice = Lattice.from_parameters(a, b, c, alpha, beta, gamma)
    return Structure(lattice, structure.species, structure.frac_coords)


__all__ = ["DISPLACEMENT", "MAX_LAYERS", "is_subgroup", "lower_symmetry", "random_symmetric", "subgroup_paths"]
