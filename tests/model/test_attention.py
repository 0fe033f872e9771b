"""Training-form attention under CPU bf16 autocast: the fused kernel runs in float32."""

import pytest
import torch
import torch.nn.functional as F

from fastuss_fx.config import load_variant
from fastuss_fx.model import TUSS, blocks


@pytest.mark.parametrize("name", ["tiny", "tiny-causal"])
def test_bf16_autocast_keeps_fused_attention_in_float32(name, monkeypatch):
    torch.manual_seed(0)
    model = TUSS(load_variant(name)).train()
    x = 0.3 * torch.randn(2, 4000)
    reference = model(x, ["speech", "sfx"])
    dtypes = []
    fused = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None):
        dtypes.append((q.dtype, k.dtype, v.dtype, None if attn_mask is None else attn_mask.dtype))
        return fused(q, k, v, attn_mask=attn_mask)

    monkeypatch.setattr(blocks.F, "scaled_dot_product_attention", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        estimates = model(x, ["speech", "sfx"])
    assert dtypes and all(d in ((torch.float32,) * 3 + (None,), (torch.float32,) * 4) for d in dtypes)
    estimates.float().square().mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad)
    error = (estimates.float() - reference).norm() / reference.norm()
    assert error < 0.05  # bf16 products elsewhere: close to the float32 forward, not equal
