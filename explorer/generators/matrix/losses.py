"""Losses on the 64×3 matrix: masked MSE and the paper's PBC-aware loss (Appendix A.4)."""

from __future__ import annotations

import itertools

import torch

from ...representation import MATRIX_ROWS, MAX_SITES

_CHOICES = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)))  # (8, 3) corner choices


def masked_mse(pred: torch.Tensor, target: torch.Tensor, row_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the rows that carry data, averaged per structure, then over the batch."""
    mask = row_mask.unsqueeze(-1).float()
    per_structure = ((pred - target) ** 2 * mask).sum((1, 2)) / (3 * mask.sum((1, 2))).clamp(min=1)
    return per_structure.mean()


def pbc_loss(pred: torch.Tensor, target: torch.Tensor, site_mask: torch.Tensor, k: float = -8.0,
             boundary_tol: float = 1e-3) -> torch.Tensor:
    """PBC-aware coordinate loss (paper A.4), averaged over the batch.

    For every target site, each fractional component that lies on a cell face (0 or 1) may be matched by
    either face; vertex atoms thus have 8 equivalent targets, edge atoms 4, face atoms 2, interior atoms 1.
    The distance to the nearest equivalent target is taken with the differentiable soft minimum
    ``(Σ d_i^k)^(1/k)`` (k < 0) over the distinct candidates. Each structure's sum is divided by its number of
    sites.
    """
    pred = pred[:, :MAX_SITES]
    target = target[:, :MAX_SITES]
    mask = site_mask[:, :MAX_SITES]
    on_face = (target < boundary_tol) | (target > 1 - boundary_tol)  # (B, N, 3)
    choices = _CHOICES.to(pred.device)
    candidates = torch.where(on_face.unsqueeze(2), choices.view(1, 1, 8, 3), target.unsqueeze(2))
    # a candidate is distinct only if it flips no interior component
    distinct = ~((choices.view(1, 1, 8, 3) > 0) & ~on_face.unsqueeze(2)).any(-1)  # (B, N, 8)
    distances = (pred.unsqueeze(2) - candidates).pow(2).sum(-1).add(1e-12).sqrt()
    log_terms = (k * distances.log()).masked_fill(~distinct, float("-inf"))
    soft_min = torch.exp(torch.logsumexp(log_terms, dim=-1) / k)  # (Σ d^k)^(1/k), computed stably
    per_structure = (soft_min * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_structure.mean()


def lattice_rows(x: torch.Tensor) -> torch.Tensor:
    return x[:, MATRIX_ROWS - 3 :]
