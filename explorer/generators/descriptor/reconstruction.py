"""Structures from StructRepDiff vectors (paper 001, section 4.3 and appendix A.3.5): with the composition, atom
count and lattice read from the vector, the positions are found by Adam on the L1 distance between the EAD block
of the trial positions and the target's, inside basin hopping (paper: 6 trials x 7 hops of 300 iterations, a
random step in [-1, 1] Å per coordinate between hops; a hop is kept only when it lowers the loss). Every trial
of every structure runs in one batch; the best trial by loss is returned.

Beyond the paper (chosen on validation, README): trials start from random positions no closer than 0.7 x the
target's shortest distance (not uniform random), each entry of the loss is divided by its spread over
reference crystals (:func:`entry_scale`; the entries differ by orders of magnitude), a hop's learning rate
decays by cosine, and structures whose loss is below ``tolerance`` stop hopping. With ``rounds`` > 1, the
structures whose best loss is still above ``solved`` after a round get a new round of trials from fresh starts
(the compute goes to the hard ones; each keeps its best result over all rounds). With ``swap``, every odd hop
exchanges the positions of two atoms of different elements instead of the random step (a trial with one
element takes the step): the orderings of mixed sites — which anion sits on which face of a perovskite —
are separate basins that small steps do not connect. With ``permute`` (a count), a trial of a cell whose elements
can be arranged over its positions in at most that many distinct ways tries them all on those hops instead and
takes the arrangement of lowest loss as placed (a random swap when the one it has is already the best): a
perovskite that converged with its two cations exchanged is one arrangement away from the answer.

:meth:`Reconstructor.irun` is a generator that yields a :class:`HopReport` after every hop (progress, cancel);
:meth:`Reconstructor.run` runs it to the end.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from ...errors import ExplorerInputError
from .ead import EAD, EADParams, PairList, neighbour_weights
from .vector import SKIN

MAX_ATOMS = 60
DTYPE = torch.float32  # positions to ~1e-5 Å; twice as fast as float64


@dataclass
class HopReport:
    hop: int  # hops done (1..hops), over all rounds
    hops: int  # at most (rounds x hops per round; fewer when every structure is solved early)
    loss: np.ndarray  # best loss so far per structure


@dataclass
class Reconstruction:
    structure: Structure
    loss: float  # scaled L1 between the EAD blocks of the structure and the target


def entry_scale(blocks: np.ndarray, params: EADParams) -> np.ndarray:
    """(2F + 1,) scale of each EAD-block entry from reference blocks (rows): its standard deviation, at least
    1e-3 x the mean standard deviation of its angular-momentum block (entries that are zero by symmetry in most
    crystals must not dominate the loss)."""
    blocks = np.asarray(blocks, dtype=float)
    std = blocks.std(0)
    k, orders = params.n_centres, params.lmax + 1
    pooled = std[:-1].reshape(2, orders, k)
    floor = 1e-3 * pooled.mean(axis=(0, 2), keepdims=True) + 1e-12
    return np.concatenate([np.maximum(pooled, floor).ravel(), [max(std[-1], 0.05)]])


def _swap_unlike(cart: torch.Tensor, z: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each trial with atoms of two or more elements gets two unlike atoms' positions exchanged (the
    basin-hopping move for orderings — which anion sits where — that small random steps do not reach); returns
    the positions and which trials were swapped."""
    cart, swapped = cart.clone(), torch.zeros(len(cart), dtype=torch.bool)
    for t in range(len(cart)):
        sites = torch.nonzero(z[t] > 0).flatten().numpy()
        i = int(rng.choice(sites))
        others = [j for j in sites if z[t, j] != z[t, i]]
        if others:
            j = int(rng.choice(others))
            cart[t, [i, j]] = cart[t, [j, i]]
            swapped[t] = True
    return cart, swapped


def arrangement_count(numbers) -> int:
    """How many distinct arrangements of these atoms' elements over as many positions there are (the
    multinomial n! / (n_1! n_2! ...))."""
    count = math.factorial(len(numbers))
    for repeats in Counter(int(z) for z in numbers).values():
        count //= math.factorial(repeats)
    return count


def arrangements(numbers) -> np.ndarray:
    """(A, n) slot orders, one per distinct arrangement of the elements of ``numbers`` over n positions, the
    current one (the identity) first: in row ``r``, the atom in slot ``i`` moves to position ``r[i]``."""
    numbers = [int(z) for z in numbers]
    left = Counter(numbers)
    elements = sorted(left)
    orders = []

    def extend(at_position: list) -> None:  # the element at each position, filled left to right
        if len(at_position) == len(numbers):
            queues = {z: [k for k, e in enumerate(at_position) if e == z] for z in elements}
            orders.append([queues[z].pop(0) for z in numbers])
            return
        for z in elements:
            if left[z]:
                left[z] -= 1
                extend(at_position + [z])
                left[z] += 1

    extend([])
    identity = list(range(len(numbers)))
    orders.remove(identity)
    return np.array([identity] + orders, dtype=np.int64)


def _spread_start(n: int, lattice: np.ndarray, min_distance: float, rng: np.random.Generator) -> np.ndarray:
    """Fractional positions of ``n`` atoms drawn one by one uniformly, each redrawn (up to 50 times) while it is
    closer than ``min_distance`` to an earlier one (minimum image)."""
    out = np.zeros((n, 3))
    for a in range(n):
        for _ in range(50):
            trial = rng.random(3)
            if a == 0:
                break
            delta = out[:a] - trial
            delta -= np.round(delta)
            if np.linalg.norm(delta @ lattice, axis=1).min() >= min_distance:
                break
        out[a] = trial
    return out


class Reconstructor:
    """Basin-hopping reconstruction of positions from EAD blocks (see the module docstring)."""

    def __init__(self, params: EADParams | None = None, trials: int = 6, hops: int = 7, iterations: int = 300,
                 lr: float = 0.05, step: float = 1.0, refresh: int = 10, tolerance: float = 1e-4,
                 spread: float = 0.7, starts: int = 1, screen: int = 60, threads: int | None = None,
                 rounds: int = 1, solved: float = 0.01, templates: int = 0, template_starts=None,
                 swap: bool = False, permute: int = 0):
        if min(trials, hops, iterations, rounds) < 1:
            raise ExplorerInputError("trials, hops, iterations and rounds must be >= 1")
        self.params = params or EADParams()
        self.ead = EAD(self.params)
        self.trials, self.hops, self.iterations = int(trials), int(hops), int(iterations)
        self.lr, self.step, self.refresh = float(lr), float(step), int(refresh)
        self.tolerance, self.spread, self.threads = float(tolerance), float(spread), threads
        self.starts, self.screen = max(1, int(starts)), int(screen)
        self.rounds, self.solved = int(rounds), float(solved)
        self.swap = bool(swap)
        if int(permute) < 0:
            raise ExplorerInputError(f"permute must be >= 0 (0: off), got {permute}")
        self.permute = int(permute)
        if templates and template_starts is None:
            raise ExplorerInputError("starts from known structures (templates > 0) need a template source")
        if not 0 <= int(templates) <= self.trials:
            raise ExplorerInputError(f"templates must be in [0, trials = {self.trials}], got {templates}")
        self.templates, self.template_starts = int(templates), template_starts

    def _loss(self, cart, inverse, lattice, weights, mask, target, scale, pairs) -> torch.Tensor:
        frac = torch.einsum("cnk,ckl->cnl", cart, inverse)
        pooled = self.ead.pooled(frac, lattice, weights, mask, pairs)
        return ((pooled - target).abs() * scale).sum(1)

    def _placed_loss(self, cart, lattice, inverse, weights, mask, target, scale):
        """(positions wrapped into the cell, loss) of Cartesian positions as they are, without optimising."""
        with torch.no_grad():
            frac = torch.einsum("cnk,ckl->cnl", cart, inverse) % 1.0
            cart = torch.einsum("cnk,ckl->cnl", frac, lattice)
            pairs = PairList.build(frac, lattice, mask, self.params.cutoff)
            return cart, self._loss(cart, inverse, lattice, weights, mask, target, scale, pairs)

    def _optimise(self, cart, lattice, inverse, weights, mask, target, scale, iterations=None):
        """Adam from Cartesian positions ``cart`` (B, N, 3) for ``iterations`` (default: the hop's); (positions,
        loss) at the end."""
        iterations = iterations or self.iterations
        cart = cart.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([cart], lr=self.lr)
        pairs = None
        for it in range(iterations):
            if it % self.refresh == 0:
                with torch.no_grad():  # wrap into the cell, then list the neighbours anew
                    frac = torch.einsum("cnk,ckl->cnl", cart, inverse) % 1.0
                    cart.copy_(torch.einsum("cnk,ckl->cnl", frac, lattice))
                pairs = PairList.build(frac, lattice, mask, self.params.cutoff + SKIN)
            for group in optimiser.param_groups:
                group["lr"] = self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * it / iterations)))
            loss = self._loss(cart, inverse, lattice, weights, mask, target, scale, pairs)
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            with torch.no_grad():
                cart.grad.masked_fill_(~mask[..., None], 0.0)
            optimiser.step()
        return self._placed_loss(cart.detach(), lattice, inverse, weights, mask, target, scale)

    def irun(self, targets, numbers: list, lattices: list, scale, seed: int = 0):
        """Reconstruct C structures: ``targets`` (C, 2F + 1) EAD blocks, ``numbers`` atomic numbers per structure,
        ``lattices`` (3 x 3 matrices or pymatgen Lattices), ``scale`` (2F + 1,) the entries' scales
        (:func:`entry_scale` of reference blocks; the loss is the mean of |difference| / scale). Yields a
        :class:`HopReport` after each hop and returns (``StopIteration.value``) a list of :class:`Reconstruction`."""
        targets = torch.as_tensor(np.asarray(targets), dtype=DTYPE)
        count = len(numbers)
        if targets.shape != (count, 2 * self.params.size + 1) or len(lattices) != count:
            raise ExplorerInputError(f"expected {count} EAD blocks of {2 * self.params.size + 1} entries and "
                                     f"{count} lattices, got {tuple(targets.shape)} and {len(lattices)}")
        sizes = [len(z) for z in numbers]
        if min(sizes) < 1 or max(sizes) > MAX_ATOMS:
            raise ExplorerInputError(f"a structure to reconstruct has 1..{MAX_ATOMS} atoms, got {min(sizes)}.."
                                     f"{max(sizes)}")
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            scale = torch.as_tensor(np.asarray(scale), dtype=DTYPE)
            if scale.shape != (targets.shape[1],) or not bool((scale > 0).all()):
                raise ExplorerInputError(f"the loss scale needs {targets.shape[1]} positive entries")
            return (yield from self._run(targets, numbers, lattices, 1.0 / scale / len(scale), seed))
        finally:
            torch.set_num_threads(previous)

    def _starts(self, numbers, matrices, targets, lattice, inverse, weights, mask, target, scale, rng):
        """Cartesian starting positions (C x trials, N, 3): ``starts`` spread-out random draws per trial, each
        optimised for ``screen`` iterations when there is more than one, the best by loss kept."""
        count, trials, n, k = len(numbers), self.trials, mask.shape[1], self.starts
        frac = np.zeros((count * trials * k, n, 3))
        for c, zs in enumerate(numbers):
            shortest = float(targets[c, -1]) * self.spread
            for t in range(trials * k):
                frac[(c * trials * k) + t, : len(zs)] = _spread_start(len(zs), matrices[c], shortest, rng)
        frac = torch.tensor(frac, dtype=DTYPE)
        if k == 1:
            return torch.einsum("cnk,ckl->cnl", frac, lattice)

        def expand(x):
            return x.repeat_interleave(k, 0)

        big_lattice = expand(lattice)
        cart = torch.einsum("cnk,ckl->cnl", frac, big_lattice)
        cart, loss = self._optimise(cart, big_lattice, expand(inverse), expand(weights), expand(mask), expand(target),
                                    expand(scale), iterations=self.screen)
        pick = loss.reshape(count * trials, k).argmin(1) + torch.arange(count * trials) * k
        return cart[pick]

    def _template_trials(self, best, numbers, matrices, weights, mask, targets, weights_per_entry, templates):
        """Replace the first ``templates`` trials of each structure in ``best`` (Cartesian, C x trials) by the
        known-structure starts with the lowest descriptor loss (as placed, before any optimisation)."""
        trials, n = self.trials, mask.shape[1]
        owners, frac = [], []
        for c, zs in enumerate(numbers):
            for start in self.template_starts.starts(zs, matrices[c]):
                padded = np.zeros((n, 3))
                padded[: len(zs)] = start
                owners.append(c)
                frac.append(padded)
        if not owners:
            return
        owners_t = torch.tensor(owners)
        rows = owners_t * trials  # any trial of the owner: same atoms, lattice and target
        lattice = torch.tensor(matrices[owners], dtype=DTYPE)
        cart = torch.einsum("cnk,ckl->cnl", torch.tensor(np.array(frac), dtype=DTYPE), lattice)
        loss = self._placed_loss(cart, lattice, torch.linalg.inv(lattice), weights[rows], mask[rows],
                                 targets[owners_t], weights_per_entry.expand(len(owners), -1))[1]
        for c in range(len(numbers)):
            mine = torch.nonzero(owners_t == c).flatten()
            if len(mine):
                chosen = mine[torch.argsort(loss[mine])[:templates]]
                best[c * trials : c * trials + len(chosen)] = cart[chosen]

    def _run(self, targets, numbers, lattices, weights_per_entry, seed):
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        count = len(numbers)
        matrices = np.stack([np.asarray(getattr(m, "matrix", m), dtype=float) for m in lattices])
        final = [None] * count  # per structure: (fractional positions, loss) of its best trial so far
        final_loss = np.full(count, np.inf)
        todo = list(range(count))
        total = self.rounds * self.hops
        for round_ in range(self.rounds):
            if not todo:
                break
            runner = self._round([numbers[c] for c in todo], matrices[todo], targets[todo], weights_per_entry, rng,
                                 templates=self.templates if round_ == 0 else 0)
            while True:
                try:
                    hop, losses = next(runner)
                except StopIteration as stop:
                    results = stop.value
                    break
                current = final_loss.copy()
                current[todo] = np.minimum(current[todo], losses)
                yield HopReport(round_ * self.hops + hop, total, current.astype(np.float32))
            for c, (frac, loss) in zip(todo, results):
                if loss < final_loss[c]:
                    final[c], final_loss[c] = frac, loss
            todo = [c for c in todo if final_loss[c] > self.solved]
        return [Reconstruction(Structure(Lattice(matrices[c]), [int(v) for v in zs], final[c]), float(final_loss[c]))
                for c, zs in enumerate(numbers)]

    def _round(self, numbers, matrices, targets, weights_per_entry, rng, templates: int = 0):
        """One round of ``trials`` basin-hopping trials (fresh starts; the first ``templates`` of a structure
        from known structures where there are any) per structure: yields (hop, best loss per structure) after
        each hop; returns [(fractional positions, loss)] of each structure's best trial."""
        count, trials, n = len(numbers), self.trials, max(len(z) for z in numbers)
        lattice = torch.tensor(np.repeat(matrices, trials, 0), dtype=DTYPE)
        inverse = torch.linalg.inv(lattice)
        z = torch.zeros(count * trials, n, dtype=torch.long)
        for c, zs in enumerate(numbers):
            z[c * trials : (c + 1) * trials, : len(zs)] = torch.tensor(list(zs))
        mask = z > 0
        weights = neighbour_weights(z).to(DTYPE)
        target = targets.repeat_interleave(trials, 0)
        scale = weights_per_entry.expand_as(target)
        best = self._starts(numbers, matrices, targets, lattice, inverse, weights, mask, target, scale, rng)
        if templates:
            self._template_trials(best, numbers, matrices, weights, mask, targets, weights_per_entry, templates)
        best_loss = torch.full((count * trials,), float("inf"), dtype=DTYPE)
        active = torch.arange(count * trials)
        orders = [torch.from_numpy(arrangements(zs)) if 1 < arrangement_count(zs) <= self.permute else None
                  for zs in numbers]
        for hop in range(self.hops):
            if len(active):
                cart = best[active].clone()
                if hop > 0:
                    swapped = torch.zeros(len(cart), dtype=torch.bool)
                    if self.permute and hop % 2 == 1:  # the best arrangement of the elements, where it is new
                        cart, swapped = self._rearrange(cart, active, orders, lattice, inverse, weights, mask,
                                                        target, scale)
                    if self.swap and hop % 2 == 1:  # odd hops exchange two unlike atoms where there are any
                        rest = torch.nonzero(~swapped).flatten()
                        cart[rest], swapped[rest] = _swap_unlike(cart[rest], z[active[rest]], rng)
                    kick = torch.empty_like(cart).uniform_(-self.step, self.step)
                    cart = cart + kick * (mask[active] & ~swapped[:, None])[..., None]
                moved, loss = self._optimise(cart, lattice[active], inverse[active], weights[active], mask[active],
                                             target[active], scale[active])
                better = loss < best_loss[active]
                best[active[better]] = moved[better]
                best_loss[active[better]] = loss[better]
            per_structure = best_loss.reshape(count, trials).min(1).values
            yield hop + 1, per_structure.numpy().astype(float)
            done = (per_structure < self.tolerance).repeat_interleave(trials)
            active = torch.nonzero(~done).flatten()
        out = []
        losses = best_loss.reshape(count, trials)
        for c, zs in enumerate(numbers):
            t = int(losses[c].argmin())
            frac = (best[c * trials + t, : len(zs)] @ inverse[c * trials + t]).double().numpy() % 1.0
            out.append((frac, float(losses[c, t])))
        return out

    def _rearrange(self, cart, active, orders, lattice, inverse, weights, mask, target, scale, batch: int = 4096):
        """Each trial (rows of ``cart``, trials ``active``) whose structure has ``orders`` takes the arrangement of
        its elements over its current positions with the lowest loss as placed, where that is not the one it
        has; returns the positions and which trials were rearranged."""
        cart, changed = cart.clone(), torch.zeros(len(cart), dtype=torch.bool)
        owners, rows = [], []
        for t, g in enumerate(active.tolist()):
            order = orders[g // self.trials]
            if order is not None:
                placed = cart[t].expand(len(order), -1, -1).clone()
                placed[:, : order.shape[1]] = cart[t, order]
                owners += [t] * len(order)
                rows.append(placed)
        if not rows:
            return cart, changed
        placed, owners = torch.cat(rows), torch.tensor(owners)
        trial = active[owners]
        loss = torch.empty(len(placed), dtype=DTYPE)
        for start in range(0, len(placed), batch):
            part, of = slice(start, start + batch), trial[start : start + batch]
            loss[part] = self._placed_loss(placed[part], lattice[of], inverse[of], weights[of], mask[of], target[of],
                                           scale[of])[1]
        for t in torch.unique(owners).tolist():
            mine = torch.nonzero(owners == t).flatten()
            pick = mine[int(loss[mine].argmin())]
            if pick != mine[0]:  # the first of each trial's arrangements is the one it has
                cart[t], changed[t] = placed[pick], True
        return cart, changed

    def run(self, targets, numbers: list, lattices: list, scale, seed: int = 0,
            callback=None) -> list[Reconstruction]:
        """:meth:`irun` to the end; ``callback(report)`` after each hop (an exception raised by it cancels)."""
        runner = self.irun(targets, numbers, lattices, scale, seed)
        while True:
            try:
                report = next(runner)
            except StopIteration as stop:
                return stop.value
            if callback is not None:
                callback(report)


__all__ = ["HopReport", "Reconstruction", "Reconstructor"]
