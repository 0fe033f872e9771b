"""Structural reparameterization: the fused inference form equals the training form."""

import pytest
import torch

from fastuss_fx.config import list_variants, load_variant
from fastuss_fx.model import TUSS
from fastuss_fx.model.reparam import RepConv1d


def _uses_reparam(name):
    config = load_variant(name)
    return any(p.branch_kernels for s in (config.cross_prompt, config.tse) for p in (s.freq, s.time))


REPARAM_VARIANTS = [v for v in list_variants() if _uses_reparam(v)]


def test_the_fastuss_variants_use_reparameterization():
    assert {"fastuss-11.7g", "fastuss-8.3g", "fastuss-causal"} <= set(REPARAM_VARIANTS)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel, branches", [(3, (1, 2)), (4, (1, 3)), (2, (1,))])
def test_rep_conv_fuses_exactly(causal, kernel, branches):
    conv = RepConv1d(6, 5, kernel, branches, causal)
    x = torch.randn(3, 20, 6)  # [N, L, C]
    before, _ = conv(x)
    conv.fuse()
    after, _ = conv(x)
    assert len(conv.branches) == 0
    assert torch.allclose(before, after, atol=1e-6)


@pytest.mark.parametrize("kernel, branches", [(3, (1, 2)), (2, (1,))])
def test_cached_causal_conv_is_a_causal_convolution_in_pieces(kernel, branches):
    conv = RepConv1d(6, 5, kernel, branches, causal=True)
    x = torch.randn(3, 20, 6)
    with torch.no_grad():
        weight = conv.main.weight.clone()
        for k, branch in zip(branches, conv.branches, strict=True):
            weight[..., kernel - k :] += branch.weight
        expected = torch.nn.functional.conv1d(
            torch.nn.functional.pad(x.transpose(1, 2), (kernel - 1, 0)), weight, conv.main.bias
        )
        whole, _ = conv(x)
        state, pieces = conv.initial_state(3, x), []
        for piece in x.split([1, 7, 2, 10], dim=1):
            y, state = conv(piece, state)
            pieces.append(y)
    assert torch.allclose(whole, expected.transpose(1, 2), atol=1e-6)
    assert torch.allclose(torch.cat(pieces, dim=1), whole, atol=1e-6)


@pytest.mark.parametrize("name", REPARAM_VARIANTS + ["tuss-medium"])
def test_fused_model_equals_training_form(name):
    model = TUSS(load_variant(name)).eval()
    with torch.no_grad():  # non-trivial norm gains, so folding them is really tested
        for module_name, p in model.named_parameters():
            if module_name.endswith("gain") or ".gains." in module_name:
                p.uniform_(0.5, 1.5)
    x = 0.3 * torch.randn(1, 9600)
    n_params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        before = model(x, ["speech", "sfx"])
        after = model.fuse()(x, ["speech", "sfx"])
    assert sum(p.numel() for p in model.parameters()) < n_params  # branches and gains are gone
    assert (before - after).abs().max().item() <= 1e-5


def _branchwise(conv, x, gain):
    """The training form as separate convolutions, one per branch (the pre-fusion definition)."""
    from torch.nn.functional import conv1d, pad

    from fastuss_fx.model.reparam import conv_padding

    xc = (x * gain).transpose(1, 2)
    y = conv1d(pad(xc, conv_padding(conv.kernel, conv.causal)), conv.main.weight, conv.main.bias)
    for k, branch in zip(conv.branch_kernels, conv.branches, strict=True):
        y = y + conv1d(pad(xc, conv_padding(k, conv.causal)), branch.weight)
    return y.transpose(1, 2)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel, branches", [(3, (1, 2)), (4, (1, 3)), (2, (1,)), (1, ())])
def test_training_form_runs_the_fused_kernel_with_the_branches_gradients(causal, kernel, branches):
    conv = RepConv1d(6, 5, kernel, branches, causal).train()
    gain = torch.nn.Parameter(torch.empty(6).uniform_(0.5, 1.5))
    x = torch.randn(3, 20, 6, requires_grad=True)
    grad_out = torch.randn(3, 20, 5)
    params = [x, gain, *conv.parameters()]
    y, _ = conv(x, None, gain)
    fused_grads = torch.autograd.grad(y, params, grad_out)
    expected = _branchwise(conv, x, gain)
    branch_grads = torch.autograd.grad(expected, params, grad_out)
    assert (y - expected).abs().max().item() <= 1e-5
    for a, b in zip(fused_grads, branch_grads, strict=True):
        assert (a - b).abs().max().item() <= 1e-5
    conv.eval()  # the inference form gives the same output
    with torch.no_grad():
        assert (conv(x, None, gain)[0] - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ["tiny", "tiny-causal"])
def test_training_mode_equals_eval_mode(name):
    """Training runs FFTs, fused attention and fused kernels; the function is the same."""
    torch.manual_seed(0)
    model = TUSS(load_variant(name))
    with torch.no_grad():
        for module_name, p in model.named_parameters():
            if module_name.endswith("gain") or ".gains." in module_name:
                p.uniform_(0.5, 1.5)
    x = 0.3 * torch.randn(2, 4000)
    with torch.no_grad():
        trained_form = model.train()(x, ["speech", "sfx"])
        eval_form = model.eval()(x, ["speech", "sfx"])
    assert (trained_form - eval_form).abs().max().item() <= 1e-5 * max(1.0, eval_form.abs().max().item())
