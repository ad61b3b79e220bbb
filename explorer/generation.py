"""``explorer.generate``: conditional generation of candidate crystals from a formula, a space group and
a target formation energy, with any registered generator (:mod:`explorer.generators`)."""

from __future__ import annotations

import math
import re
import warnings

from pymatgen.core import Composition

from .candidates import Candidate, make_candidate
from .elements import atomic_number
from .errors import ExplorerInputError
from .generators import GenerationRequest, default_model, get_generator
from .representation import check_site_count
from .spacegroups import check_spacegroup

_COUNT = re.compile(r"([A-Z][a-z]?)\s*(-?\d*\.?\d*)")


def parse_formula(formula: str) -> list[int]:
    """Cell contents of a formula such as 'TaWB6' or 'Ta2 W2 B12' -> sorted atomic numbers."""
    if not isinstance(formula, str) or not formula.strip():
        raise ExplorerInputError("formula is empty")
    for symbol, count in _COUNT.findall(formula):
        if count and float(count) <= 0:  # pymatgen drops "Cl0" silently
            raise ExplorerInputError(f"formula {formula!r}: {symbol} count must be a positive integer, got {count}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            composition = Composition(formula)
    except Exception:
        raise ExplorerInputError(f"cannot parse formula {formula!r} (unknown element?)") from None
    numbers = []
    for element, amount in composition.items():
        symbol = getattr(element, "symbol", str(element))
        z = atomic_number(symbol)
        if abs(amount - round(amount)) > 1e-6 or amount <= 0:
            raise ExplorerInputError(f"formula {formula!r}: {symbol} count must be a positive integer")
        numbers += [z] * int(round(amount))
    check_site_count(len(numbers))
    return sorted(numbers)


def check_energy(energy) -> float:
    try:
        value = float(energy)
    except (TypeError, ValueError):
        raise ExplorerInputError(f"energy must be a number (eV/atom), got {energy!r}") from None
    if not math.isfinite(value):
        raise ExplorerInputError(f"energy must be finite, got {energy!r}")
    if not -10.0 <= value <= 10.0:
        raise ExplorerInputError(f"energy {value} eV/atom is outside the supported range -10..10")
    return value


def generation_request(formula: str, spacegroup=None, energy=None, wyckoff=None) -> GenerationRequest:
    """A checked :class:`~explorer.generators.GenerationRequest` from user input (one-line errors); ``None``
    leaves a condition unset."""
    return GenerationRequest(species=tuple(parse_formula(formula)),
                             spacegroup=None if spacegroup is None else check_spacegroup(spacegroup),
                             energy=None if energy is None else check_energy(energy), wyckoff=wyckoff or None)


def generate(formula: str, spacegroup: int | None = None, energy: float | None = None, n: int = 16,
             model: str | None = None, steps: int | None = None, seed: int = 0, device: str = "auto",
             snap: bool = False, draws: int | None = None, callback=None, wyckoff: dict | None = None,
             check_sites: bool = True, prototypes="auto", keep_off_group: bool = False,
             network_only: bool = False, relax_prototypes="auto", relax_callback=None) -> list[Candidate]:
    """``n`` candidate structures of ``formula`` (cell contents) in ``spacegroup`` (1..230) with a target
    formation energy ``energy`` (eV/atom): known prototypes of the group first, then network samples of a
    registered model (default: the manifest's best for the conditions given — langevin for a formula and a space
    group, cfm-normal when a target energy is set too; :func:`~explorer.generators.default_model`), every one
    in the requested group — see :mod:`explorer.search` (``candidate.model`` says which source each came
    from). ``prototypes``: "auto" (up to half of ``n`` when the data directory holds the structure files), a
    number, or 0; ``keep_off_group``: keep network samples without the group (marked) instead of replacing
    them. ``network_only=True``: network samples only, as sampled (``snap=True`` refines each onto the group
    where a spglib tolerance ≤ 0.4 Å allows it). ``relax_prototypes``: relax the prototypes with M3GNet
    (and, where the group has fewer known templates than prototype slots, the network samples, then ordered
    by energy; "auto": when its weights are there; False: as substituted, as sampled);
    ``relax_callback(done, total)`` follows that relaxation in FIRE steps and may raise to cancel it.

    A condition the model does not take, or one it needs and is not given, is a one-line
    :class:`~explorer.errors.ExplorerInputError`. ``steps``: sampler steps (None: the model's default, 100).
    ``draws``: network samples per candidate, the one that best meets the conditions kept (valid, requested
    space group; None: the model's ``pipeline_draws`` in the pipeline, 1 network-only). ``callback(done,
    total)`` is called after every sampler step (total: all steps of the call); an exception raised in it
    cancels the sampling. A space group whose Wyckoff positions cannot hold the formula's atoms is a one-line
    error (``check_sites=False``: sample it anyway, network-only; no sample can then have it)."""
    from .search import search

    request = generation_request(formula, spacegroup, energy, wyckoff)
    if steps is not None and int(steps) < 1:
        raise ExplorerInputError(f"steps must be >= 1, got {steps}")
    generator = get_generator(model or default_model("generation", given=request.given()), task="generation")
    if network_only or not check_sites:
        return generator.sample(request, n=n, seed=seed, device=device, callback=callback, steps=steps,
                                draws=1 if draws is None else draws, snap=snap, check_sites=check_sites)
    generator.check(request)
    return search(generator, [request], n, prototypes=prototypes, steps=steps, seed=seed, device=device,
                  draws=draws, callback=callback, keep_off_group=keep_off_group,
                  relax_prototypes=relax_prototypes, relax_callback=relax_callback)[0]


__all__ = ["Candidate", "check_energy", "generate", "generation_request", "make_candidate", "parse_formula"]
