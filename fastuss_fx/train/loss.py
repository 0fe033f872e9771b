"""Training loss: negative SNR per source with a soft 30 dB cap, PIT among repeated prompt kinds.

For a target ``s`` and estimate ``ŝ`` (TUSS): ``-10 log10(|s|² / (|s - ŝ|² + τ|s|²))`` with
``τ = 10^(-3)``, so a perfect estimate scores -30 dB and no source can dominate the batch.
A silent target (``metrics.is_silent``: mean power at most -100 dBFS, the definition scoring uses
too) has no SNR; its estimate's energy is scored against the mixture's instead,
``10 log10(|ŝ|² / |x|² + τ)`` (also -30 dB at best), with weight 0.1.
Sources that share a prompt kind (two ``speech`` prompts) are interchangeable, so the loss
takes the best assignment among them (permutation-invariant training); other sources keep
their order.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch

from fastuss_fx.metrics import is_silent

TAU = 1e-3
"""Soft cap: ``-10 log10(TAU)`` = 30 dB is the best SNR the loss rewards."""
SILENT_WEIGHT = 0.1
"""Weight of a silent target's loss against that of an audible one."""
_EPS = 1e-12


def pairwise_loss(
    estimates: torch.Tensor,
    targets: torch.Tensor,
    mixture: torch.Tensor,
    *,
    tau: float = TAU,
    silent_weight: float = SILENT_WEIGHT,
) -> torch.Tensor:
    """Loss of every estimate against every target, in dB.

    Args:
        estimates: [B, S, N] model outputs.
        targets: [B, S, N] true sources.
        mixture: [B, N] the input mixture (reference level for silent targets).

    Returns:
        [B, S, S]: entry ``[b, i, j]`` scores estimate ``i`` against target ``j``.
    """
    estimates, targets, mixture = estimates.float(), targets.float(), mixture.float()
    target_energy = targets.pow(2).sum(-1)  # [B, S]
    estimate_energy = estimates.pow(2).sum(-1)  # [B, S]
    cross = torch.einsum("bin,bjn->bij", estimates, targets)  # [B, S, S]
    error = (estimate_energy[:, :, None] + target_energy[:, None, :] - 2 * cross).clamp_min(0.0)
    active = 10 * torch.log10(error + tau * target_energy[:, None, :] + _EPS) - 10 * torch.log10(
        target_energy[:, None, :] + _EPS
    )
    mix_energy = mixture.pow(2).sum(-1)[:, None, None] + _EPS  # [B, 1, 1]
    silent_loss = 10 * torch.log10(estimate_energy[:, :, None] / mix_energy + tau)
    silent = is_silent(targets)[:, None, :]  # [B, 1, S]
    return torch.where(silent, silent_weight * silent_loss, active)


@functools.lru_cache(maxsize=256)
def allowed_permutations(prompts: tuple[str, ...]) -> torch.Tensor:
    """Permutations ``p`` of the sources with ``prompts[p[i]] == prompts[i]``: [P, S] (identity first)."""
    perms = [
        p for p in itertools.permutations(range(len(prompts))) if all(prompts[j] == prompts[i] for i, j in enumerate(p))
    ]
    return torch.tensor(perms, dtype=torch.long)


def pit_loss(
    estimates: torch.Tensor,
    targets: torch.Tensor,
    mixture: torch.Tensor,
    prompts: Sequence[Sequence[str]],
    **kwargs: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss over the batch and its sources, best permutation among same-kind prompts.

    Args:
        estimates, targets: [B, S, N]; mixture: [B, N].
        prompts: one list of S prompt kinds per example.
        kwargs: ``tau``, ``silent_weight`` for ``pairwise_loss``.

    Returns:
        (scalar loss in dB, [B, S] chosen permutation: estimate ``i`` is matched to target ``perm[b, i]``).
    """
    if len(prompts) != estimates.shape[0] or any(len(p) != estimates.shape[1] for p in prompts):
        raise ValueError(f"prompts must be {estimates.shape[0]} lists of {estimates.shape[1]} kinds, got {prompts}")
    matrix = pairwise_loss(estimates, targets, mixture, **kwargs)  # [B, S, S]
    sources = torch.arange(matrix.shape[1], device=matrix.device)
    losses, chosen = [], []
    for b, kinds in enumerate(prompts):
        perms = allowed_permutations(tuple(kinds)).to(matrix.device)  # [P, S]
        totals = matrix[b, sources[None, :], perms].mean(-1)  # [P]
        best = int(torch.argmin(totals.detach()))
        losses.append(totals[best])
        chosen.append(perms[best])
    return torch.stack(losses).mean(), torch.stack(chosen)


def snr_db(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain SNR (dB) over the last axis, uncapped."""
    error = (target - estimate).pow(2).sum(-1)
    return 10 * torch.log10(target.pow(2).sum(-1) + _EPS) - 10 * torch.log10(error + _EPS)


def best_possible_loss(tau: float = TAU) -> float:
    """The loss of a perfect estimate: ``10 log10(tau)`` (-30 dB for the default)."""
    return 10 * math.log10(tau)
