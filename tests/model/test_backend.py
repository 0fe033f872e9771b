import numpy as np
import pytest

from fastuss_fx.engines import load_torch_backend
from fastuss_fx.runtime import is_backend, is_streaming_backend
from fastuss_fx.runtime.streaming import separate_streaming, stream_latency


def test_tiny_backends_match_the_protocol():
    offline, causal = load_torch_backend("tiny"), load_torch_backend("tiny-causal")
    assert is_backend(offline) and not is_streaming_backend(offline)
    assert is_streaming_backend(causal) and causal.trained is False
    assert stream_latency(causal) == causal.latency_samples


def test_numpy_in_numpy_out_and_stream_equals_whole_clip():
    backend = load_torch_backend("tiny-causal")
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, 3000))).astype(np.float32)
    whole = backend.separate(mix, ["speech", "sfx"])
    assert isinstance(whole, np.ndarray) and whole.dtype == np.float32 and whole.shape == (2, 2, 3000)
    np.testing.assert_allclose(separate_streaming(backend, mix, ["speech", "sfx"]), whole, atol=1e-4)


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown model variant"):
        load_torch_backend("huge")
