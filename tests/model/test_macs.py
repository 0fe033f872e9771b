"""The analytic MAC counter against torch's FlopCounterMode, and variant names against the count."""

import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from fastuss_fx.complexity import complexity
from fastuss_fx.config import list_variants, load_variant
from fastuss_fx.model import TUSS
from fastuss_fx.model.macs import count_macs


def _measured_macs(name, n_prompts, seconds, fused=True):
    config = load_variant(name)
    with torch.device("meta"):  # shapes only: counts without computing
        model = TUSS(config).eval()  # the inference form (training runs FFTs and fused attention)
        if fused:
            model.fuse()
        mix = torch.zeros(1, round(seconds * config.stft.sample_rate))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(mix, ["speech", "sfx", "drums", "speech"][:n_prompts])
    return counter.get_total_flops() / 2


@pytest.mark.parametrize("name", list_variants())
@pytest.mark.parametrize("n_prompts", [1, 2, 4])
def test_counter_agrees_with_flop_counter(name, n_prompts):
    seconds = load_variant(name).reference_seconds
    measured = _measured_macs(name, n_prompts, seconds)
    counted = count_macs(load_variant(name), n_prompts).total
    assert abs(counted - measured) <= 0.03 * measured


@pytest.mark.parametrize("name", ["fastuss-8.3g", "tiny-causal"])
def test_counter_agrees_unfused_and_at_odd_lengths(name):
    config = load_variant(name)
    for seconds in (0.37, 1.0):
        measured = _measured_macs(name, 3, seconds, fused=False)
        counted = count_macs(config, 3, round(seconds * config.stft.sample_rate)).total  # one fused conv either way
        assert abs(counted - measured) <= 0.03 * measured


def test_variant_names_are_true_to_their_complexity():
    rows = {r.name: r for r in map(complexity, map(load_variant, list_variants()))}
    assert (
        abs(rows["tuss-medium"].gmacs_per_s - 47.2) <= 0.05 * 47.2
    )  # the official medium (tests/model/test_reference)
    assert 9e6 <= rows["tuss-medium"].params <= 13e6
    for name in ("fastuss-11.7g", "fastuss-8.3g", "fastuss-4.7g", "fastuss-4.6g"):
        budget = float(re.search(r"(\d+\.\d+)g", name).group(1))
        assert 0.9 * budget <= rows[name].gmacs_per_s <= budget
    causal = rows["fastuss-causal"]
    assert causal.causal and causal.gmacs_per_s <= 8.3 and causal.latency_ms <= 20.0
    assert causal.gmacs_per_s_by_prompts[2] == causal.gmacs_per_s


def test_gmacs_grow_with_prompts():
    row = complexity(load_variant("fastuss-8.3g"))
    values = [row.gmacs_per_s_by_prompts[s] for s in (1, 2, 3, 4)]
    assert values == sorted(values) and values[0] < values[-1]
    assert abs(sum(row.breakdown_gmacs_per_s.values()) - row.gmacs_per_s) < 1e-6


@pytest.mark.parametrize("name", ["fastuss-causal", "tiny-causal"])
def test_stream_step_count_agrees_with_flop_counter(name):
    from fastuss_fx.model.macs import count_stream_step_macs

    config = load_variant(name)
    with torch.device("meta"):
        model = TUSS(config).eval().fuse()
        state = model.initial_state(1, ["speech", "sfx"])
        chunk = torch.zeros(1, config.stft.hop)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.stream(chunk, state)
    measured = counter.get_total_flops() / 2
    assert abs(count_stream_step_macs(config, 2).total - measured) <= 0.03 * measured
