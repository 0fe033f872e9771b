import warnings

import numpy as np
import pedalboard
import pytest
from fakes import CausalBackend, IdentityBackend
from hypothesis import given, settings
from hypothesis import strategies as st

from fastuss_fx import Chain, FasTUSS
from fastuss_fx.runtime import UntrainedWeightsWarning

RNG = np.random.default_rng(0)


def causal_fx(model=None):
    return FasTUSS(
        ["speech", "sfx"],
        {"speech": 0.0, "sfx": -6.0},
        mode="realtime",
        model=model or CausalBackend(),
        allow_untrained=True,
    )


def make_chain(model=None):
    return Chain(
        [
            pedalboard.Gain(3.0),
            pedalboard.LowpassFilter(6000),
            causal_fx(model),
            pedalboard.Reverb(room_size=0.3),
            pedalboard.Compressor(),
            Chain([pedalboard.Delay(0.005, 0.2, 0.3), causal_fx(model)]),
        ]
    )


def stream(chain, x, rate, sizes, buffer_size):
    outs, pos, i = [], 0, 0
    while pos < x.shape[1]:
        n = 3 if i == 0 else sizes[(i - 1) % len(sizes)]  # a first chunk of 3 settles the layout
        outs.append(chain(x[:, pos : pos + n], rate, buffer_size=buffer_size, reset=False))
        pos, i = pos + n, i + 1
    return np.concatenate(outs, -1)


@settings(max_examples=10, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=6),
    rate=st.sampled_from([44100, 48000]),
    buffer_size=st.sampled_from([256, 1024]),
)
def test_streaming_chain_equals_one_shot(sizes, rate, buffer_size):
    x = (0.1 * RNG.standard_normal((2, rate // 4))).astype(np.float32)
    got = stream(make_chain(), x, rate, sizes, buffer_size)
    ref = make_chain()(x, rate, buffer_size=buffer_size)
    assert ref.shape == x.shape and 0 < got.shape[1] <= x.shape[1] - make_chain().latency_samples + 1
    np.testing.assert_allclose(got, ref[:, : got.shape[1]], atol=1e-4)


def test_streaming_chain_with_the_tiny_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWeightsWarning)
        x = (0.1 * RNG.standard_normal((2, 9600))).astype(np.float32)
        got = stream(make_chain("tiny-causal"), x, 48000, [1, 65, 1000, 7], 512)
        ref = make_chain("tiny-causal")(x, 48000, buffer_size=512)
    np.testing.assert_allclose(got, ref[:, : got.shape[1]], atol=1e-4)


def test_latency_is_the_sum_and_output_catches_up():
    chain = make_chain()
    assert chain.latency_samples == 2 * 15
    x = RNG.standard_normal((1, 5000)).astype(np.float32)
    total = sum(chain(x[:, i : i + 500], 48000, buffer_size=256, reset=False).shape[-1] for i in range(0, 5000, 500))
    assert total == 5000 - chain.latency_samples


@pytest.mark.parametrize("shape", [(3000,), (2, 3000), (3000, 2), (1, 1)])
def test_one_shot_layout_like_pedalboard(shape):
    x = RNG.standard_normal(shape).astype(np.float64)
    chain = Chain([pedalboard.Gain(0.0), FasTUSS(["speech"], model=IdentityBackend())])
    out = chain(x, 48000)
    assert out.shape == pedalboard.Gain(0.0)(x, 48000).shape and out.dtype == np.float32
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_list_interface():
    gain, fx = pedalboard.Gain(1.0), FasTUSS(["speech"], model=IdentityBackend())
    chain = Chain([gain])
    chain.append(fx)
    chain.insert(0, pedalboard.Invert())
    assert len(chain) == 3 and chain.index(fx) == 2 and chain[1] is gain
    assert isinstance(chain[1:], Chain) and list(chain[1:]) == [gain, fx]
    chain.remove(gain)
    assert list(chain) == [chain[0], fx]
    chain.append(Chain([pedalboard.Gain(-1.0)]))
    del chain[0]
    assert len(chain) == 2 and "fastuss_fx.Chain with 2 stage(s)" in repr(chain)
    with pytest.raises(TypeError, match="a Chain holds pedalboard plugins.*got int"):
        chain.append(3)
    with pytest.raises(ValueError, match="same plugin instance appears twice"):
        chain.append(fx)
    assert len(chain) == 2
    x = np.ones((1, 100), np.float32)
    np.testing.assert_allclose(chain(x, 48000), x * 10 ** (-1 / 20), atol=1e-5)


def _board_ops(board, plugins):
    """The list operations of ``pedalboard.Pedalboard``, applied to ``board``; returns what they return."""
    a, b, c, d = plugins
    board.append(a)
    board.append(b)
    board.insert(0, c)
    seen = [b in board, d in board, len(board), board[-1] is b, [p is c for p in board]]
    board[1] = d
    board.remove(c)
    del board[0]
    board.insert(1, a)
    return seen + [list(board)]


def test_list_api_matches_pedalboard():
    plugins = [pedalboard.Gain(1.0), pedalboard.Gain(2.0), pedalboard.Invert(), pedalboard.Clipping()]
    native = _board_ops(pedalboard.Pedalboard(), plugins)
    assert _board_ops(Chain(), plugins) == native
    assert list(Chain(pedalboard.Pedalboard(plugins))) == plugins  # a board's plugins make a Chain


def test_a_fastuss_in_a_native_board_is_refused_and_chain_takes_it():
    fx = FasTUSS(["speech"], model=IdentityBackend())
    with pytest.raises(TypeError, match="incompatible constructor arguments"):
        pedalboard.Pedalboard([pedalboard.HighpassFilter(80), fx, pedalboard.Compressor()])
    chain = Chain([pedalboard.HighpassFilter(80), fx, pedalboard.Compressor()])
    assert chain(np.zeros((1, 256), np.float32), 48000).shape == (1, 256)


def test_list_extras_and_failed_changes_leave_the_chain_as_it_was():
    a, b, c = pedalboard.Gain(1.0), pedalboard.Gain(2.0), pedalboard.Gain(3.0)
    chain = Chain([a, b, c])
    chain.reverse()
    assert list(chain) == [c, b, a]
    with pytest.raises(ValueError, match="same plugin instance appears twice"):
        chain.extend([pedalboard.Invert(), a])
    with pytest.raises(TypeError, match="got int"):
        chain.extend([pedalboard.Invert(), 3])
    assert list(chain) == [c, b, a]
    chain += [pedalboard.Invert()]
    assert len(chain) == 4 and chain.index(b) == 1 and chain.pop() is not a and chain.count(a) == 1
    chain.clear()
    assert len(chain) == 0 and list(Chain(None)) == []


def test_a_stage_once_across_nested_chains_and_no_cycles():
    fx = FasTUSS(["speech"], model=IdentityBackend())
    inner = Chain([fx])
    outer = Chain([pedalboard.Gain(1.0), inner])
    with pytest.raises(ValueError, match="same plugin instance appears twice"):
        outer.append(fx)
    with pytest.raises(ValueError, match="cannot contain itself"):
        outer.append(outer)
    with pytest.raises(ValueError, match="cannot contain itself"):
        inner.append(outer)
    assert len(outer) == 2 and list(inner) == [fx]


def test_buffer_size_must_stay_fixed_while_streaming():
    chain = make_chain()
    chain(np.zeros((2, 300), np.float32), 48000, buffer_size=256, reset=False)
    with pytest.raises(ValueError, match="buffer_size=256; got 48000 Hz, 2 channel\\(s\\), buffer_size=512"):
        chain(np.zeros((2, 300), np.float32), 48000, buffer_size=512, reset=False)
    chain.reset()
    chain(np.zeros((2, 300), np.float32), 48000, buffer_size=512, reset=False)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_streaming_chain_flushed_equals_one_shot_to_the_last_sample(rate):
    """A stream flushed with ``latency_samples`` zeros gives the one-shot output, all of it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWeightsWarning)
        x = (0.1 * RNG.standard_normal((2, rate // 8))).astype(np.float32)
        chain = make_chain("tiny-causal")
        head = stream(chain, x, rate, [700, 1, 2048], 512)
        tail = chain(np.zeros((2, chain.latency_samples), np.float32), rate, buffer_size=512, reset=False)
        ref = make_chain("tiny-causal")(x, rate, buffer_size=512)
    streamed = np.concatenate([head, tail], -1)
    assert streamed.shape == x.shape
    np.testing.assert_allclose(streamed, ref, atol=1e-4)
