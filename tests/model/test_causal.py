"""Causal variants: no output depends on future input beyond the latency; streaming == whole clip."""

import random

import pytest
import torch

from fastuss_fx.model import TUSS

CAUSAL = ["tiny-causal", "fastuss-causal"]


@pytest.fixture(scope="module", params=CAUSAL)
def model(request):
    torch.manual_seed(0)
    return TUSS.from_variant(request.param).eval().fuse()


def test_latency_is_at_most_20_ms():
    model = TUSS.from_variant("fastuss-causal")
    assert model.config.latency_ms <= 20.0
    assert model.config.latency_samples == model.config.stft.n_fft - 1


@pytest.mark.parametrize("t_fraction", [0.3, 0.71])
def test_future_input_does_not_reach_the_past(model, t_fraction):
    n = 8 * model.config.stft.n_fft
    t = int(t_fraction * n)
    latency = model.config.latency_samples
    x = 0.3 * torch.randn(1, n)
    changed = x.clone()
    changed[:, t:] = 0.3 * torch.randn(1, n - t)
    with torch.no_grad():
        a, b = model(x, ["speech", "sfx"]), model(changed, ["speech", "sfx"])
    assert torch.allclose(a[..., : t - latency], b[..., : t - latency], atol=1e-6)
    assert (a[..., t:] - b[..., t:]).abs().max() > 1e-4  # the change is visible after t


def test_streaming_in_random_hop_counts_equals_whole_clip(model):
    hop = model.config.stft.hop
    rng = random.Random(1)
    n_hops = 3 * model.config.attention_window + 7  # long enough to roll the KV window over
    x = 0.3 * torch.randn(2, n_hops * hop)
    prompts = ["speech", "musicbg", "speech"]
    with torch.no_grad():
        whole = model(x, prompts)
        state, outputs, start = model.initial_state(2, prompts), [], 0
        while start < n_hops:
            step = min(rng.randint(1, 5), n_hops - start)
            out, state = model.stream(x[:, start * hop : (start + step) * hop], state)
            outputs.append(out)
            start += step
    streamed = torch.cat(outputs, dim=-1)
    delay = model.stream_delay_samples
    assert streamed.shape == whole.shape
    assert (streamed[..., delay:] - whole[..., : whole.shape[-1] - delay]).abs().max().item() <= 1e-5


def test_stream_rejects_partial_hops(model):
    state = model.initial_state(1, ["speech"])
    with pytest.raises(ValueError, match="whole hops"):
        model.stream(torch.zeros(1, model.config.stft.hop + 1), state)


def test_prompt_vectors_depend_only_on_the_prompt(model):
    a = model.initial_state(1, ["speech", "sfx"])[0]
    b = model.initial_state(1, ["drums", "speech"])[0]
    assert torch.allclose(a[:, 0], b[:, 1], atol=1e-6)
