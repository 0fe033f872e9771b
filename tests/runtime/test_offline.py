import itertools

import numpy as np
import pytest
from fakes import IdentityBackend

from fastuss_fx.runtime.offline import WindowedStream, check_windows, crossfade_weights, separate_offline


@pytest.mark.parametrize("segment, overlap", [(1, 0), (10, 0), (10, 5), (64, 16), (7, 3)])
def test_crossfade_weights_positive_with_fades(segment, overlap):
    w = crossfade_weights(segment, overlap)
    assert w.shape == (segment,) and (w > 0).all() and w.max() <= 1.0
    if overlap:
        assert np.all(np.diff(w[:overlap]) > 0)


@pytest.mark.parametrize("segment, overlap", [(0, 0), (10, 6), (10, -1)])
def test_bad_windows_raise(segment, overlap):
    with pytest.raises(ValueError, match=f"segment_samples={segment}"):
        check_windows(segment, overlap)


@pytest.mark.parametrize("length", [1, 65, 100, 101, 1000, 8193])
@pytest.mark.parametrize("segment, overlap", [(100, 25), (64, 32), (50, 0)])
def test_identity_network_gives_input_back(length, segment, overlap):
    """Known answer (asteroid's overlap-add test): identity windows cross-faded == the input."""
    rng = np.random.default_rng(length)
    mix = rng.standard_normal((2, length)).astype(np.float32)
    out = separate_offline(IdentityBackend(), mix, ["speech", "sfx"], segment_samples=segment, overlap_samples=overlap)
    assert out.shape == (2, 2, length) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], mix, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], 2 * mix, atol=1e-6)


def test_windows_bound_the_backend_input_and_report_progress():
    backend, seen = IdentityBackend(), []
    mix = np.ones((1, 1000), np.float32)
    combine = np.array([[1.0, -0.5]])
    out = separate_offline(
        backend,
        mix,
        ["speech", "sfx"],
        segment_samples=100,
        overlap_samples=20,
        combine=combine,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert out.shape == (1, 1, 1000)
    np.testing.assert_allclose(out, 0.0, atol=1e-6)  # 1 * mix - 0.5 * (2 * mix)
    assert {shape for shape in backend.calls} == {(1, 100)}
    assert seen[-1] == (1000, 1000) and all(a <= b for (a, _), (b, _) in itertools.pairwise(seen))


def test_short_clip_is_one_call():
    backend = IdentityBackend()
    separate_offline(backend, np.ones((2, 50), np.float32), ["speech"], segment_samples=100, overlap_samples=25)
    assert backend.calls == [(2, 50)]


@pytest.mark.parametrize("sizes", [[1], [65, 3, 200], [8193]])
def test_windowed_stream_has_constant_latency_and_equals_one_shot(sizes):
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((2, 3000)).astype(np.float32)
    stream = WindowedStream(IdentityBackend(), ["speech"], 2, segment_samples=256, overlap_samples=64)
    outs, n_in = [], 0
    pos, i = 0, 0
    while pos < mix.shape[1]:
        chunk = mix[:, pos : pos + sizes[i % len(sizes)]]
        pos, i, n_in = pos + chunk.shape[1], i + 1, n_in + chunk.shape[1]
        outs.append(stream.push(chunk))
        assert sum(o.shape[-1] for o in outs) == max(0, n_in - stream.latency_samples)
    got = np.concatenate(outs, -1)
    np.testing.assert_allclose(got[:, 0], mix[:, : got.shape[-1]], atol=1e-6)
