import numpy as np
import pytest
from fakes import CausalBackend, chunked

from fastuss_fx.audio import resample
from fastuss_fx.runtime.pipeline import ResampledStream
from fastuss_fx.runtime.streaming import HopStream, separate_streaming

PROMPTS = ["speech", "sfx"]


def one_shot(backend, mix, rate):
    model_in = resample(mix, rate, 48000)
    model_out = separate_streaming(backend, model_in, PROMPTS)
    flat = model_out.reshape(-1, model_out.shape[-1])
    return resample(flat, 48000, rate, mix.shape[-1]).reshape(mix.shape[0], len(PROMPTS), -1)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000, 192000])
@pytest.mark.parametrize("sizes", [[1, 65], [8193], [17, 300, 2]])
def test_resampled_stream_constant_latency_equals_one_shot(rate, sizes):
    backend = CausalBackend(hop=16, delay=48)
    mix = np.random.default_rng(rate).standard_normal((2, rate // 20)).astype(np.float32)
    stream = ResampledStream(HopStream(backend, PROMPTS, 2), rate, 48000, 2, len(PROMPTS))
    outs, n_in = [], 0
    for part in chunked(mix.shape[1], sizes):
        outs.append(stream.push(mix[:, part]))
        n_in += part.stop - part.start
        assert sum(o.shape[-1] for o in outs) == max(0, n_in - stream.latency_samples)
    got = np.concatenate(outs, -1)
    assert got.shape[-1] > 0
    np.testing.assert_allclose(got, one_shot(backend, mix, rate)[..., : got.shape[-1]], atol=1e-5)


def test_latency_at_model_rate_is_the_core_latency():
    core = HopStream(CausalBackend(hop=16, delay=48), PROMPTS, 1)
    assert ResampledStream(core, 48000, 48000, 1, 2).latency_samples == core.latency_samples
