import math

import pytest
import torch

from fastuss_fx.train.loss import allowed_permutations, best_possible_loss, pairwise_loss, pit_loss


def sources(batch=1, count=2, n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randn(batch, count, n, generator=g)
    return targets, targets.sum(1)


def test_perfect_estimate_hits_the_30_db_cap():
    targets, mixture = sources(2, 3)
    loss, perm = pit_loss(targets.clone(), targets, mixture, [["speech", "sfx", "musicbg"]] * 2)
    assert best_possible_loss() == pytest.approx(-30.0)
    assert float(loss) == pytest.approx(-30.0, abs=1e-3)
    assert perm.tolist() == [[0, 1, 2]] * 2


def test_known_snr():
    targets, mixture = sources(1, 1)
    noise = torch.randn(targets.shape, generator=torch.Generator().manual_seed(9))
    noise = noise * torch.sqrt(0.1 * targets.pow(2).sum() / noise.pow(2).sum())  # 10 dB SNR exactly
    loss, _ = pit_loss(targets + noise, targets, mixture, [["speech"]])
    assert float(loss) == pytest.approx(10 * math.log10(0.1 + 1e-3), abs=1e-3)


def test_silent_target_scores_estimate_energy_with_small_weight():
    targets, mixture = sources(1, 2)
    targets[0, 1] = 0.0
    estimates = targets.clone()
    matrix = pairwise_loss(estimates, targets, mixture)
    assert float(matrix[0, 1, 1]) == pytest.approx(0.1 * -30.0, abs=1e-3)  # zero estimate: best, weight 0.1
    estimates[0, 1] = mixture[0]  # the whole mixture leaked into the silent source
    matrix = pairwise_loss(estimates, targets, mixture)
    assert float(matrix[0, 1, 1]) == pytest.approx(0.1 * 10 * math.log10(1 + 1e-3), abs=1e-3)


def test_pit_swaps_repeated_kinds_only():
    targets, mixture = sources(2, 3)
    swapped = targets[:, [1, 0, 2]]
    loss, perm = pit_loss(swapped, targets, mixture, [["speech", "speech", "sfx"], ["speech", "sfx", "bass"]])
    assert perm.tolist() == [[1, 0, 2], [0, 1, 2]]
    same_kind, _ = pit_loss(swapped[:1], targets[:1], mixture[:1], [["speech", "speech", "sfx"]])
    assert float(same_kind) == pytest.approx(-30.0, abs=1e-3)
    other_kinds, _ = pit_loss(swapped[1:], targets[1:], mixture[1:], [["speech", "sfx", "bass"]])
    no_swap = pairwise_loss(swapped[1:], targets[1:], mixture[1:])[0].diagonal().mean()
    assert float(other_kinds) == pytest.approx(float(no_swap)) and float(other_kinds) > -10.0


def test_allowed_permutations():
    assert allowed_permutations(("speech", "sfx", "bass", "other")).tolist() == [[0, 1, 2, 3]]
    assert len(allowed_permutations(("speech", "speech", "sfx"))) == 2
    perms = allowed_permutations(("speech", "sfx", "speech", "speech"))
    assert len(perms) == 6 and perms[0].tolist() == [0, 1, 2, 3] and all(p[1] == 1 for p in perms.tolist())


def test_gradient_and_prompt_check():
    targets, mixture = sources(1, 2)
    estimates = torch.zeros_like(targets, requires_grad=True)
    loss, _ = pit_loss(estimates + 0.5 * targets, targets, mixture, [["speech", "sfx"]])
    loss.backward()
    assert torch.isfinite(estimates.grad).all() and estimates.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="prompts must be 1 lists of 2"):
        pit_loss(targets, targets, mixture, [["speech"]])
