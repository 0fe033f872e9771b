"""Training-form attention: float32 fused kernel under CPU bf16 autocast; explicit products when compiled."""

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

    def spy(q, k, v, attn_mask=None, scale=None):
        dtypes.append((q.dtype, k.dtype, v.dtype, None if attn_mask is None else attn_mask.dtype))
        return fused(q, k, v, attn_mask=attn_mask, scale=scale)

    monkeypatch.setattr(blocks.F, "scaled_dot_product_attention", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        estimates = model(x, ["speech", "sfx"])
    assert dtypes and all(d in ((torch.float32,) * 3 + (None,), (torch.float32,) * 4) for d in dtypes)
    estimates.float().square().mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad)
    error = (estimates.float() - reference).norm() / reference.norm()
    assert error < 0.05  # bf16 products elsewhere: close to the float32 forward, not equal


@pytest.mark.parametrize("with_bias", [False, True])
def test_explicit_attention_is_the_fused_kernel(with_bias):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 10, 8).unbind(0)
    bias = torch.where(torch.rand(10, 10) < 0.3, -1e9, 0.0).fill_diagonal_(0.0) if with_bias else None
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(blocks._explicit_attention(q, k, v, bias), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window", [None, 6])
def test_compiled_training_attention_matches_eager_training(window):
    """Compiled training takes explicit products instead of the fused kernel: same outputs, same gradients."""
    from fastuss_fx.config import PathConfig

    torch.manual_seed(0)
    path = PathConfig(ffn_hidden=16, kernel=2, attention_dim=16, heads=2, macaron=False, branch_kernels=[1])
    attention = blocks.SelfAttention(16, 2, path, window).train()
    x = torch.randn(3, 40, 16)

    def output_and_grads(forward):
        attention.zero_grad()
        y, _ = forward(x)
        y.square().mean().backward()
        return y.detach(), [p.grad.clone() for p in attention.parameters()]

    eager, eager_grads = output_and_grads(attention)
    compiled, compiled_grads = output_and_grads(torch.compile(attention, backend="inductor"))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    for got, expected in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-5)
