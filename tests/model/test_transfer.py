"""Warm start: one variant's weights into another (a causal model into its non-causal twin)."""

import dataclasses

import fakes
import pytest
import torch

from fastuss_fx.config import config_from_dict, config_to_dict, load_variant
from fastuss_fx.model import TUSS
from fastuss_fx.model.reparam import RepConv1d
from fastuss_fx.model.transfer import transfer_weights


def non_causal_twin():
    return config_from_dict(fakes.non_causal_twin(), "twin")


@pytest.mark.parametrize("target_kernel", [2, 3, 5])
def test_a_causal_conv_placed_in_a_longer_centred_kernel_computes_the_same(target_kernel):
    torch.manual_seed(0)
    causal = RepConv1d(6, 5, 2, (1,), causal=True).eval()
    centred = RepConv1d(6, 5, target_kernel, (1,), causal=False).eval()
    source, target = TUSS(load_variant("tiny-causal")), TUSS(load_variant("tiny-causal"))
    source.tse[0].time.ffn_out.conv_in = causal  # any conv of the model will do
    target.tse[0].time.ffn_out.conv_in = centred
    target.config = dataclasses.replace(target.config, name="target")
    if target_kernel == 2:  # the non-causal kernel 2 looks ahead, not back: the past tap has nowhere to go
        with pytest.raises(ValueError, match=r"tse\.0\.time\.ffn_out\.conv_in\.main\.weight: a tap -1 frames away"):
            transfer_weights(source, target)
        return
    report = transfer_weights(source, target)
    assert "tse.0.time.ffn_out.conv_in.main.weight" in report.placed
    x = torch.randn(3, 20, 6)
    torch.testing.assert_close(centred(x)[0], causal(x)[0])


def test_causal_weights_start_the_non_causal_twin():
    torch.manual_seed(1)
    source, twin = TUSS(load_variant("tiny-causal")), TUSS(non_causal_twin())
    report = transfer_weights(source, twin)
    theirs = source.state_dict()
    assert len(report.copied) + len(report.placed) + len(report.folded) == len(theirs)
    assert report.placed, "tiny-causal has time convs of kernels 3 and 2, the twin centred ones of 5"
    assert report.folded, "a causal branch of kernel 2 looks back; the non-causal one looks ahead"
    for name, value in twin.state_dict().items():
        if name in report.copied:
            assert torch.equal(value, theirs[name]), name
        elif name in report.folded:
            assert not value.any(), name
    time_convs = [
        (n, m) for n, m in twin.named_modules() if isinstance(m, RepConv1d) and ".time." in n and m.kernel == 5
    ]
    assert time_convs
    for name, conv in time_convs:  # each time conv computes what the causal one did; the look-ahead starts at zero
        causal = dict(source.named_modules())[name]
        x = torch.randn(2, 30, conv.main.in_channels)
        torch.testing.assert_close(conv.eval()(x)[0], causal.eval()(x)[0])
        assert not conv.fused_weight()[..., 3:].any(), name
    with torch.no_grad():
        assert torch.isfinite(twin(torch.randn(2, 4000), ["speech", "sfx"])).all()


def test_shapes_that_do_not_fit_are_refused_by_name():
    wider = config_to_dict(non_causal_twin())
    wider["decoder_hidden"] += 8
    with pytest.raises(ValueError, match=r"decoder\..* has shape"):
        transfer_weights(TUSS(load_variant("tiny-causal")), TUSS(config_from_dict(wider, "wider")))
    with pytest.raises(ValueError, match="tensors only in the"):
        transfer_weights(TUSS(load_variant("tiny-causal")), TUSS(load_variant("tiny")))
