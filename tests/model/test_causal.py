"""Causal variants: no output depends on future input beyond the latency; streaming == whole clip."""

import random

import pytest
import torch

from fastuss_fx.model import TUSS

CAUSAL = ["tiny-causal", "fastuss-causal", "tiny-causal-ta"]


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


def test_prompt_vectors_depend_on_the_prompt_list_only_when_task_aware(model):
    a = model.initial_state(1, ["speech", "sfx"])[0]
    b = model.initial_state(1, ["drums", "speech"])[0]
    c = model.initial_state(1, ["sfx", "speech"])[0]
    assert torch.allclose(a[:, 0], c[:, 1], atol=1e-6)  # a set: the order does not matter
    assert torch.allclose(a[:, 0], b[:, 1], atol=1e-6) != model.config.prompt_attention


def test_the_task_aware_model_hears_which_sources_were_asked_for():
    torch.manual_seed(0)
    outputs = {}
    for name in ("tiny-causal", "tiny-causal-ta"):
        model = TUSS.from_variant(name).eval()
        x = 0.3 * torch.randn(1, 40 * model.config.stft.hop)
        with torch.no_grad():
            sfxbg, musicbg = model(x, ["speech", "sfxbg"]), model(x, ["speech", "musicbg"])
        outputs[name] = (sfxbg[:, 0] - musicbg[:, 0]).abs().max().item()
    assert outputs["tiny-causal"] == 0.0  # each prompt alone: speech is the same whatever else is asked
    assert outputs["tiny-causal-ta"] > 1e-3


def test_task_aware_state_carries_the_prompt_keys(model):
    names, state = model.state_names(), model.initial_state(2, ["speech", "sfx", "musicbg"])
    assert len(names) == len(state)
    keys = [t for n, t in zip(names, state, strict=True) if n.endswith("prompt_keys")]
    assert len(keys) == (len(model.cross_prompt) if model.config.prompt_attention else 0)
    for key in keys:  # [batch * bands, heads, prompts, head dim], outside any window
        assert key.shape[0] == 2 * model.n_bands and key.shape[2] == 3


def test_lookahead_hears_that_many_hops_ahead_and_adds_that_latency():
    torch.manual_seed(0)
    model = TUSS.from_variant("tiny-causal-ta").eval()
    config = model.config
    assert config.lookahead == 1
    assert config.latency_samples == config.stft.n_fft - 1 + config.stft.hop
    assert model.stream_delay_samples == config.stft.n_fft - config.stft.hop + config.stft.hop
    x = 0.3 * torch.randn(1, 30 * config.stft.hop)
    t = 16 * config.stft.hop + 80  # inside a hop: without look-ahead no output before t - (n_fft - 1) changes
    changed = x.clone()
    changed[:, t:] = 0.3 * torch.randn(1, x.shape[-1] - t)
    with torch.no_grad():
        diff = (model(x, ["speech"]) - model(changed, ["speech"])).abs().amax(dim=(0, 1))
    first = int((diff > 1e-7).nonzero()[0])
    assert t - config.latency_samples <= first < t - (config.stft.n_fft - 1)  # earlier than without look-ahead
