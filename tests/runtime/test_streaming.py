import numpy as np
import pytest
from fakes import CausalBackend, chunked
from hypothesis import given, settings
from hypothesis import strategies as st

from fastuss_fx.runtime.streaming import HopStream, separate_streaming, stream_latency

PROMPTS = ["speech", "sfx"]


def test_latency_is_delay_plus_hop_minus_one():
    assert stream_latency(CausalBackend(hop=4, delay=12)) == 15


def test_one_shot_equals_whole_clip_separation():
    """Known answer: the flushed stream is the backend's whole-clip output, aligned."""
    backend = CausalBackend()
    mix = np.random.default_rng(0).standard_normal((2, 333)).astype(np.float32)
    out = separate_streaming(backend, mix, PROMPTS)
    np.testing.assert_allclose(out, backend.separate(mix, PROMPTS), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 70), min_size=1, max_size=8), hop=st.sampled_from([1, 4, 16]))
def test_any_chunking_equals_one_shot_with_constant_latency(sizes, hop):
    backend = CausalBackend(hop=hop, delay=3 * hop)
    mix = np.random.default_rng(1).standard_normal((1, 300)).astype(np.float32)
    stream = HopStream(backend, PROMPTS, 1)
    outs, n_in = [], 0
    for part in chunked(mix.shape[1], sizes):
        outs.append(stream.push(mix[:, part]))
        n_in += part.stop - part.start
        assert sum(o.shape[-1] for o in outs) == max(0, n_in - stream.latency_samples)
    got = np.concatenate(outs, -1)
    np.testing.assert_allclose(got, separate_streaming(backend, mix, PROMPTS)[..., : got.shape[-1]], atol=1e-6)


def test_combine_and_reset():
    backend = CausalBackend()
    mix = np.ones((1, 100), np.float32)
    stream = HopStream(backend, PROMPTS, 1, combine=np.array([[1.0, 1.0]]))
    first = stream.push(mix)
    assert first.shape == (1, 1, 100 - stream.latency_samples)
    np.testing.assert_allclose(first[..., -1], 3.0, atol=1e-6)  # (1 + 2) * filter(ones) == 3
    stream.reset()
    np.testing.assert_allclose(stream.push(mix), first)


@pytest.mark.parametrize("length", [1, 15, 16, 17])
def test_short_clips(length):
    mix = np.ones((2, length), np.float32)
    assert separate_streaming(CausalBackend(), mix, PROMPTS).shape == (2, 2, length)
