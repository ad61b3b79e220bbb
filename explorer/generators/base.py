"""The one interface every generator family implements.

A :class:`GenerationRequest` holds the conditions a user set (formula, space group, target formation energy or
its change, Wyckoff site counts, an initial structure); a :class:`Generator` says which of them it takes
(:attr:`Generator.conditions`) and samples structures for a batch of requests. :meth:`Generator.sample` turns
samples into checked :class:`~explorer.candidates.Candidate` objects; a condition the model cannot take is a
one-line :class:`~explorer.errors.ExplorerInputError`, never silently ignored.

A family is a sub-package of :mod:`explorer.generators` with a ``generator_class(task)`` function; the
registry (:mod:`explorer.generators.registry`) builds its generators from ``pretrained/manifest.json``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..candidates import best_draw, make_candidate
from ..errors import ExplorerInputError
from ..spacegroups import check_sites

# condition name -> how it is described to the user (CLI option in brackets)
CONDITIONS = {
    "formula": "the cell contents (--formula)",
    "spacegroup": "a space group (--spacegroup)",
    "energy": "a target formation energy (--energy)",
    "energy_delta": "a target formation-energy change (--energy-delta)",
    "wyckoff": "Wyckoff site counts (--wyckoff)",
    "initial_structure": "an initial structure (--structure)",
}
TASKS = ("generation", "modification")


@dataclass
class GenerationRequest:
    """The conditions of one sample. ``species``: atomic numbers of the cell contents (sorted; implied by
    ``initial`` when that is given); ``spacegroup`` 1..230; ``energy`` target formation energy and
    ``energy_delta`` target change (eV/atom); ``wyckoff``: {Wyckoff letter or element: count}; ``initial``:
    a pymatgen Structure to modify."""

    species: tuple[int, ...] = ()
    spacegroup: int | None = None
    energy: float | None = None
    energy_delta: float | None = None
    wyckoff: dict | None = None
    initial: Any = field(default=None, repr=False)

    def given(self) -> set[str]:
        """Names (keys of :data:`CONDITIONS`) of the conditions this request sets."""
        values = {"formula": self.species if self.initial is None else (), "spacegroup": self.spacegroup,
                  "energy": self.energy, "energy_delta": self.energy_delta, "wyckoff": self.wyckoff,
                  "initial_structure": self.initial}
        return {name for name, value in values.items() if value not in (None, (), {})}

    @property
    def target(self) -> float | None:
        """The energy condition a candidate records: the target formation energy, else its change."""
        return self.energy if self.energy is not None else self.energy_delta

    @property
    def atomic_numbers(self) -> list[int]:
        if self.initial is not None:
            return sorted(site.specie.Z for site in self.initial)
        return list(self.species)


def _describe(names) -> str:
    return ", ".join(CONDITIONS[name] for name in sorted(names))


class Generator(ABC):
    """A shipped model of one family, built from its manifest entry (:class:`~explorer.generators.registry.
    ModelInfo`). Subclasses set :attr:`family`, :attr:`task`, :attr:`conditions` (the conditions the model
    takes) and :attr:`required` (those it cannot do without) and implement :meth:`sample_structures`;
    :attr:`pipeline_draws` is how many samples :func:`explorer.generate` draws per network slot unless told."""

    family: ClassVar[str] = ""
    task: ClassVar[str] = "generation"
    conditions: ClassVar[frozenset] = frozenset()
    required: ClassVar[frozenset] = frozenset()
    pipeline_draws: ClassVar[int] = 2  # the best of two by validity and space group (chosen on val, matrix family)

    def __init__(self, info):
        self.info = info
        self._built: dict[str, Any] = {}
        self._build_lock = threading.RLock()

    def _once(self, key: str, build):
        """``build()`` the first time ``key`` is asked for, then that same object, loaded once for every thread:
        the app's sessions share one generator (:func:`~explorer.generators.registry.get_generator`) and may
        sample at the same time. Only immutable parts (weights, priors) belong here; whatever a call changes
        (a sampler's timesteps) is made per call."""
        with self._build_lock:
            if key not in self._built:
                self._built[key] = build()
            return self._built[key]

    @property
    def name(self) -> str:
        return self.info.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def check(self, request: GenerationRequest, sites: bool = True) -> None:
        """One-line error when ``request`` sets a condition this model does not take, lacks one it needs, or
        (``sites``) asks for a space group whose Wyckoff positions cannot hold the formula's atoms."""
        extra = request.given() - self.conditions
        if extra:
            raise ExplorerInputError(f"model {self.name!r} ({self.family} family) does not take {_describe(extra)}; "
                                     f"it takes {_describe(self.conditions)}")
        missing = self.required - request.given()
        if missing:
            raise ExplorerInputError(f"model {self.name!r} needs {_describe(missing)}")
        if sites and request.spacegroup is not None and request.initial is None:  # cell contents = formula
            check_sites(request.species, request.spacegroup)

    @abstractmethod
    def sample_structures(self, requests: list[GenerationRequest], steps: int | None = None, seed: int = 0,
                          device: str = "auto", callback=None, batch_size: int = 64) -> list:
        """One pymatgen Structure per request (in order), sampled with ``steps`` sampler steps (None: the
        model's default) from the random stream ``seed``. ``callback(done, total)`` reports progress in
        sampler steps over the whole call; an exception raised by it stops the sampling (cancel)."""

    def sample_best(self, requests: list[GenerationRequest], draws: int = 1, **options) -> list:
        """One structure per request, each the best of ``draws`` samples by
        :func:`~explorer.candidates.condition_score` (valid, requested space group detected; the first draw on
        ties). Costs ``draws`` times :meth:`sample_structures`."""
        draws = int(draws)
        if draws < 1:
            raise ExplorerInputError(f"draws must be >= 1, got {draws}")
        repeated = self.sample_structures([r for r in requests for _ in range(draws)], **options)
        if draws == 1:
            return repeated
        return [best_draw(repeated[i * draws : (i + 1) * draws], request.spacegroup)
                for i, request in enumerate(requests)]

    def sample(self, request: GenerationRequest, n: int = 1, seed: int = 0, device: str = "auto",
               callback=None, steps: int | None = None, draws: int = 1, snap: bool = False,
               check_sites: bool = True) -> list:
        """``n`` checked :class:`~explorer.candidates.Candidate` objects for ``request`` (see
        :meth:`sample_structures` and :meth:`sample_best`; ``snap`` refines each onto the requested space
        group where a spglib tolerance ≤ 0.4 Å allows it; ``check_sites=False`` samples even a space group the
        formula cannot have)."""
        self.check(request, sites=check_sites)
        if int(n) < 1:
            raise ExplorerInputError(f"n must be >= 1, got {n}")
        structures = self.sample_best([request] * int(n), draws, steps=steps, seed=int(seed), device=device,
                                      callback=callback)
        return [make_candidate(s, request.spacegroup, request.target, snap=snap, model=self.name,
                               steps=self.steps_used(steps), seed=int(seed), index=i)
                for i, s in enumerate(structures)]

    @property
    def default_steps(self) -> int:
        return int(self.info.info.get("default_steps", 100))

    def steps_used(self, steps: int | None) -> int:
        """The sampler steps a call with ``steps`` runs (None: :attr:`default_steps`)."""
        return int(steps or self.default_steps)


def class_lookup(family: str, classes: dict):
    """A family's ``generator_class(task)``: the :class:`Generator` subclass of ``classes`` for ``task`` (one-line
    error for a task the family has no models of)."""

    def generator_class(task: str):
        """The :class:`~explorer.generators.base.Generator` subclass of this family for ``task``."""
        if task not in classes:
            raise ExplorerInputError(f"the {family} family has no {task} models")
        return classes[task]

    return generator_class

