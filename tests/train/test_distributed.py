"""What DDP may assume about the models it wraps."""

import pytest
import torch

from fastuss_fx.config import load_variant
from fastuss_fx.model import TUSS


@pytest.mark.parametrize("variant", ["tiny", "tiny-causal", "tiny-causal-ta"])
@pytest.mark.parametrize("prompts", [["speech"], ["speech", "sfx", "musicbg"], ["drums", "bass", "vocals", "other"]])
def test_every_parameter_gets_a_gradient_from_one_step(variant, prompts):
    """No parameter sits out a step, whatever the prompts: DDP need not look for unused ones
    (``find_unused_parameters=True`` costs a walk of the autograd graph every step, and torch
    warns that it found none)."""
    torch.manual_seed(0)
    model = TUSS(load_variant(variant)).train()
    mix, targets = 0.1 * torch.randn(2, 4800), 0.05 * torch.randn(2, len(prompts), 4800)
    ((model(mix, [prompts] * 2) - targets) ** 2).mean().backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused
