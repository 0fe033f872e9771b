import subprocess
import sys
import warnings

import numpy as np
import pedalboard
import pytest
from fakes import CausalBackend, IdentityBackend, chunked
from hypothesis import given, settings
from hypothesis import strategies as st

from fastuss_fx import FasTUSS, load_preset
from fastuss_fx.presets import list_presets
from fastuss_fx.runtime import UntrainedWeightsWarning

RNG = np.random.default_rng(0)


def identity_fx(**kw):
    """Offline processor whose output is the input: sfx source is 2x mix, mixed at -6.02 dB."""
    return FasTUSS(["speech", "sfx"], {"sfx": -20 * np.log10(2)}, model=IdentityBackend(), **kw)


def causal_fx(**kw):
    return FasTUSS(["speech", "sfx"], {"speech": 0.0, "sfx": -6.0}, mode="realtime", model=CausalBackend(), **kw)


SHAPES = [(1000,), (1, 1000), (2, 1000), (1000, 2), (6, 500), (500, 6), (1, 1), (2, 3), (3, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [8000, 44100, 48000, 192000])
def test_call_contract_matches_pedalboard(shape, dtype, rate):
    x = (0.1 * RNG.standard_normal(shape)).astype(dtype)
    ref = pedalboard.Gain(0.0)(x, rate)
    out = identity_fx()(x, rate)
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.float32
    if rate == 48000:
        np.testing.assert_allclose(out, x, atol=1e-6)  # known answer: no resampling, identity model


@pytest.mark.parametrize("rate", [22050, 44100, 96000])
def test_resampled_identity_is_close_to_the_input(rate):
    def sines(shift):
        t = (np.arange(rate // 5) - shift) / rate
        return np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 500 * t)]).astype(np.float32)

    out = identity_fx()(sines(0), rate)
    # aligned to within a sample: pedalboard rounds each resampler's latency to whole samples
    assert min(np.abs(out - sines(s))[:, 200:-200].max() for s in np.linspace(-1, 1, 41)) < 1e-2


@pytest.mark.parametrize("shape", [(48000,), (2, 48000), (48000, 2)])
def test_streaming_keeps_layout_and_constant_latency(shape):
    fx, x = causal_fx(), RNG.standard_normal(shape).astype(np.float32)
    axis = -1 if len(shape) == 1 or shape[0] < shape[1] else 0
    got, n_in = [], 0
    for part in chunked(x.shape[axis], [65, 1, 8193, 300]):  # the first chunk sets the layout
        chunk = x[..., part] if axis == -1 else x[part]
        got.append(fx(chunk, 48000, reset=False))
        n_in += part.stop - part.start
        assert sum(g.shape[axis] for g in got) == max(0, n_in - fx.latency_samples)
        assert got[-1].ndim == x.ndim
    assert fx.latency_samples == 15


def stream(fx, x, rate, sizes):
    """Stream ``(C, N)`` in chunks cycling through ``sizes``, after a first chunk of 3 samples
    (a first chunk with fewer samples than channels would read as channels-last, as in pedalboard)."""
    parts = [slice(0, 3)] + [slice(p.start + 3, p.stop + 3) for p in chunked(x.shape[1] - 3, sizes)]
    return np.concatenate([fx(x[:, part], rate, reset=False) for part in parts], -1)


@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6), rate=st.sampled_from([16000, 44100, 48000]))
def test_realtime_streaming_equals_one_shot_fake(sizes, rate):
    x = RNG.standard_normal((2, rate // 4)).astype(np.float32)
    got = stream(causal_fx(), x, rate, sizes)
    assert got.shape[1] == x.shape[1] - causal_fx().latency_at(rate)
    np.testing.assert_allclose(got, causal_fx()(x, rate)[:, : got.shape[1]], atol=1e-5)


@pytest.fixture(scope="module")
def tiny_causal():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWeightsWarning)
        fx = FasTUSS(
            ["speech", "sfx"], {"speech": 0.0, "sfx": -3.0}, mode="realtime", model="tiny-causal", allow_untrained=True
        )
        _ = fx.backend  # build it now
    return fx


@settings(max_examples=6, deadline=None)
@given(sizes=st.lists(st.integers(1, 2500), min_size=1, max_size=5), rate=st.sampled_from([44100, 48000]))
def test_realtime_streaming_equals_one_shot_tiny_model(tiny_causal, sizes, rate):
    x = (0.1 * np.random.default_rng(1).standard_normal((2, rate // 5))).astype(np.float32)
    tiny_causal.reset()
    got = stream(tiny_causal, x, rate, sizes + [1])
    assert got.shape[1] == x.shape[1] - tiny_causal.latency_samples
    np.testing.assert_allclose(got, tiny_causal(x, rate)[:, : got.shape[1]], atol=1e-4)


@pytest.mark.parametrize("rate", [16000, 44100, 48000, 96000])
def test_flushing_with_zeros_returns_the_tail(tiny_causal, rate):
    """Streamed and flushed with ``latency_at(rate)`` zeros = one-shot, to the last sample, at any rate."""
    x = (0.1 * RNG.standard_normal((1, rate // 10))).astype(np.float32)
    tiny_causal.reset()
    head = tiny_causal(x, rate, reset=False)
    tail = tiny_causal(np.zeros((1, tiny_causal.latency_at(rate)), np.float32), rate, reset=False)
    streamed = np.concatenate([head, tail], -1)
    assert streamed.shape == x.shape
    np.testing.assert_allclose(streamed, tiny_causal(x, rate), atol=1e-4)


def test_latency_is_n_fft_minus_one_for_tiny_causal(tiny_causal):
    from fastuss_fx.config import load_variant

    assert tiny_causal.latency_at(48000) == load_variant("tiny-causal").latency_samples


BAD_INPUTS = [
    (np.full((2, 100), np.nan, np.float32), 48000, ValueError, "NaN"),
    (np.array([1.0, np.inf], np.float32), 48000, ValueError, "NaN/inf"),
    (np.zeros((2, 0), np.float32), 48000, ValueError, "empty"),
    (np.zeros((2, 2, 100), np.float32), 48000, ValueError, "3-D"),
    (np.zeros((9, 100), np.float32), 48000, ValueError, "9 channels"),
    (np.zeros((2, 100), np.int16), 48000, TypeError, "int16"),
    (np.zeros((2, 100), np.float32), 0, ValueError, "sample_rate"),
    (np.zeros((2, 100), np.float32), -44100, ValueError, "-44100"),
]


@pytest.mark.parametrize("array, rate, error, match", BAD_INPUTS)
def test_bad_input_raises_and_keeps_the_stream_intact(array, rate, error, match):
    x = RNG.standard_normal((2, 4000)).astype(np.float32)
    clean = causal_fx()
    expected = np.concatenate([clean(x[:, :1000], 48000, reset=False), clean(x[:, 1000:], 48000, reset=False)], -1)
    fx = causal_fx()
    first = fx(x[:, :1000], 48000, reset=False)
    with pytest.raises(error, match=match):
        fx(array, rate, reset=False)
    np.testing.assert_array_equal(np.concatenate([first, fx(x[:, 1000:], 48000, reset=False)], -1), expected)


def test_stream_rate_or_channel_change_needs_reset():
    fx = causal_fx()
    fx(np.zeros((2, 100), np.float32), 48000, reset=False)
    with pytest.raises(ValueError, match="runs at 48000 Hz with 2 channel"):
        fx(np.zeros((2, 100), np.float32), 44100, reset=False)
    fx.reset()
    assert fx(np.zeros((1, 100), np.float32), 44100, reset=False).shape[0] == 1


def test_parameters_are_validated_attributes():
    fx = causal_fx()
    with pytest.raises(ValueError, match="unknown prompt 'guitar'; choose from speech"):
        fx.prompts = ["guitar"]
    with pytest.raises(ValueError, match="mix.music: unknown stem 'music'"):
        fx.mix = {"music": 0.0}
    with pytest.raises(ValueError, match="gain must be a finite number in dB, got 'x'"):
        fx.mix = {"speech": "x"}
    with pytest.raises(ValueError, match="unknown mode 'live'"):
        fx.mode = "live"
    with pytest.raises(ValueError, match="mode 'realtime' needs a causal model"):
        FasTUSS(["speech"], mode="realtime", model="tiny", allow_untrained=True)
    with pytest.raises(ValueError, match="unknown model variant 'huge'"):
        FasTUSS(["speech"], model="huge")
    with pytest.raises(ValueError, match="segment_seconds"):
        FasTUSS(["speech"], segment_seconds=0)
    assert fx.prompts == ["speech", "sfx"] and fx.mode == "realtime"  # unchanged after errors
    assert "FasTUSS prompts=['speech', 'sfx']" in repr(fx) and "mode='realtime'" in repr(fx)
    assert fx.is_effect and not fx.is_instrument


def test_changing_the_mix_applies_on_the_next_call():
    x = np.ones((1, 2000), np.float32)
    fx = FasTUSS(["speech", "sfx"], {"speech": 0.0}, model=IdentityBackend())
    np.testing.assert_allclose(fx(x, 48000), x, atol=1e-6)
    fx.mix = {"sfx": 0.0}
    np.testing.assert_allclose(fx(x, 48000), 2 * x, atol=1e-6)
    fx.prompts = ["speech", "sfx", "musicbg"]  # stems follow the prompts; the mix still fits
    assert fx.stems == ["speech", "sfx", "musicbg"]


def test_separate_names_layout_and_repeated_prompts():
    fx = FasTUSS(["speech", "speech", "sfx"], model=IdentityBackend())
    x = RNG.standard_normal((3000, 2)).astype(np.float32)
    out = fx.separate(x, 48000)
    assert list(out) == ["speech_1", "speech_2", "sfx"]
    np.testing.assert_allclose(out["speech_2"], 2 * x, atol=1e-6)
    assert all(v.shape == x.shape and v.dtype == np.float32 for v in out.values())


def test_offline_long_input_goes_in_windows_with_progress():
    backend, seen = IdentityBackend(), []
    fx = FasTUSS(["speech"], model=backend, segment_seconds=0.1)
    x = RNG.standard_normal((2, 48000)).astype(np.float32)
    np.testing.assert_allclose(fx.process(x, 48000, progress=lambda d, t: seen.append(d)), x, atol=1e-5)
    assert max(shape[1] for shape in backend.calls) == 4800 and seen[-1] == 48000


def test_offline_streaming_lags_one_segment():
    fx = FasTUSS(["speech"], model=IdentityBackend(), segment_seconds=0.1)
    x = RNG.standard_normal((1, 20000)).astype(np.float32)
    got = stream(fx, x, 48000, [333])
    assert fx.latency_samples == 4799 and got.shape[1] == 20000 - 4799
    np.testing.assert_allclose(got, x[:, : got.shape[1]], atol=1e-5)


@pytest.mark.parametrize("name", list_presets())
def test_every_shipped_preset_runs_on_a_tiny_model(name):
    mode = load_preset(name).mode
    with pytest.warns(UntrainedWeightsWarning, match="untrained"):
        fx = FasTUSS.from_preset(name, model="tiny-causal" if mode == "realtime" else "tiny", allow_untrained=True)
        x = (0.1 * RNG.standard_normal((2, 2400))).astype(np.float32)
        out = fx(x, 44100)
    assert out.shape == x.shape and np.isfinite(out).all()


def test_default_models_run_trained_weights_and_say_which():
    offline, live = FasTUSS(["speech"]), FasTUSS(["speech"], mode="realtime")
    assert (offline.model, offline.model_name, offline.weights) == ("fastuss-4.6g", "fastuss-4.6g", "trained")
    assert "model='fastuss-4.6g' (trained weights)" in repr(offline)
    assert (live.model, live.weights) == ("fastuss-causal", "trained") and "(trained weights)" in repr(live)
    asked = FasTUSS(["speech"], allow_untrained=True)  # the mode's own variant: it has weights
    assert (asked.model, asked.weights) == ("fastuss-4.6g", "trained")


def test_without_offline_weights_the_causal_ones_run_offline_and_say_so(monkeypatch, tmp_path):
    import fastuss_fx.pretrained as pretrained

    real = pretrained.shipped_weights_path
    monkeypatch.setattr(pretrained, "shipped_weights_path", lambda v: real(v) if v == "fastuss-causal" else None)
    offline = FasTUSS(["speech"])
    assert (offline.model, offline.model_name, offline.weights) == ("fastuss-causal", "fastuss-causal", "trained")
    assert "model='fastuss-causal' (trained weights; fastuss-4.6g has none yet)" in repr(offline)
    asked = FasTUSS(["speech"], allow_untrained=True)  # the mode's own variant, random weights
    assert (asked.model, asked.weights) == ("fastuss-4.6g", "untrained") and "UNTRAINED" in repr(asked)
    asked.allow_untrained = False
    assert asked.model == "fastuss-causal"


@pytest.mark.parametrize("model", ["fastuss-8.3g", "tiny", "fastuss_fx/variants/fastuss-causal.yaml"])
def test_a_named_model_without_trained_weights_needs_allow_untrained(model):
    with pytest.raises(ValueError, match=rf"model '{model}' has no trained weights.*allow_untrained=True"):
        FasTUSS(["speech"], model=model)
    fx = FasTUSS(["speech"], model="fastuss-causal")
    with pytest.raises(ValueError, match="allow_untrained=True"):
        fx.model = model
    assert fx.model == "fastuss-causal" and fx.weights == "trained"  # unchanged after the error
    assert FasTUSS(["speech"], model=model, allow_untrained=True).weights == "untrained"
    with pytest.raises(TypeError, match="allow_untrained must be True or False"):
        FasTUSS(["speech"], allow_untrained="yes")


def test_a_backend_with_untrained_weights_needs_allow_untrained():
    backend = IdentityBackend()
    backend.trained = False
    with pytest.raises(ValueError, match="no trained weights"):
        FasTUSS(["speech"], model=backend)
    assert FasTUSS(["speech"], model=backend, allow_untrained=True).weights == "untrained"
    assert FasTUSS(["speech"], model=IdentityBackend()).weights == "trained"


def test_the_default_follows_the_shipped_weights(monkeypatch, tmp_path):
    import fastuss_fx.pretrained as pretrained

    def ships(*names):
        monkeypatch.setattr(
            pretrained, "shipped_weights_path", lambda v: tmp_path / f"{v}.safetensors" if v in names else None
        )

    ships("fastuss-4.6g", "fastuss-causal")
    assert FasTUSS(["speech"]).model == "fastuss-4.6g" and "has none" not in repr(FasTUSS(["speech"]))
    ships("fastuss-11.7g", "fastuss-causal")  # a non-causal model with weights beats the causal one offline
    assert FasTUSS(["speech"]).model == "fastuss-11.7g"
    assert FasTUSS(["speech"], mode="realtime").model == "fastuss-causal"
    ships()
    for mode in ("offline", "realtime"):
        with pytest.raises(ValueError, match=f"no trained weights ship for any {mode} model"):
            FasTUSS(["speech"], mode=mode)
    assert FasTUSS(["speech"], mode="realtime", allow_untrained=True).weights == "untrained"


@pytest.mark.filterwarnings("ignore::fastuss_fx.runtime.UntrainedWeightsWarning")
@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_a_causal_model_runs_offline_in_windows(engine):
    """Offline mode with a causal model (what the default runs while only causal weights ship):
    windowed whole-clip separation, through both engines (tiny-causal: no export of the real model)."""
    fx = FasTUSS(["speech", "sfx"], model="tiny-causal", engine=engine, segment_seconds=0.5, allow_untrained=True)
    assert fx.mode == "offline" and fx._info.causal and fx.latency_samples == 24000 - 1
    x = (0.1 * RNG.standard_normal((1, 60000))).astype(np.float32)
    out = fx.separate(x, 48000)
    assert set(out) == {"speech", "sfx"} and all(v.shape == x.shape and np.isfinite(v).all() for v in out.values())
    np.testing.assert_allclose(
        out["speech"][:, :100], fx.backend.separate(x[:, :24000], ["speech", "sfx"])[:, 0, :100], atol=1e-4
    )


def test_importing_the_processor_does_not_import_torch():
    code = (
        "import sys, fastuss_fx, fastuss_fx.processor, fastuss_fx.chain\n"
        "fx = fastuss_fx.FasTUSS(['speech'], mode='realtime')\n"
        "print(fx.latency_samples)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_wrong_argument_types_raise_type_error_as_pedalboard_does():
    fx = FasTUSS(["speech"], model=IdentityBackend())
    x = np.zeros((1, 100), np.float32)
    for kwargs in ({"buffer_size": "512"}, {"buffer_size": 512.0}, {"buffer_size": True}, {"reset": "yes"}):
        with pytest.raises(TypeError, match=f"{next(iter(kwargs))} must be"):
            fx(x, 48000, **kwargs)
    with pytest.raises(TypeError, match="sample_rate must be a number"):
        fx(x, "48000")
    with pytest.raises(ValueError, match="buffer_size must be a positive integer, got 0"):
        fx(x, 48000, buffer_size=0)
    for kwargs in ({"overlap": "0.1"}, {"segment_seconds": "6"}, {"threads": 2.0}, {"allow_untrained": "yes"}):
        with pytest.raises(TypeError, match=f"{next(iter(kwargs))} must be"):
            FasTUSS(["speech"], model=IdentityBackend(), **kwargs)
    with pytest.raises(ValueError, match="overlap must be a fraction"):
        FasTUSS(["speech"], model=IdentityBackend(), overlap=0.9)
    for size in (1, 512, np.int64(4096)):  # documented: buffer_size does not change the output
        np.testing.assert_array_equal(fx(x + 0.1, 48000, buffer_size=size), fx(x + 0.1, 48000))
