import numpy as np
import pytest

from fastuss_fx.audio import check_sample_rate, detect_layout, resample, to_channels_first


@pytest.mark.parametrize(
    "shape, channels, last",
    [((100,), 1, False), ((2, 100), 2, False), ((100, 2), 2, True), ((1, 1), 1, False), ((8, 9), 8, False)],
)
def test_layouts_round_trip(shape, channels, last):
    x = np.random.default_rng(0).standard_normal(shape)
    cf, layout = to_channels_first(x)
    assert cf.dtype == np.float32 and cf.shape[0] == channels and layout.channels_last == last
    back = layout.restore(cf)
    assert back.shape == shape and back.dtype == np.float32


def test_square_needs_a_hint():
    with pytest.raises(ValueError, match=r"square array of shape \(2, 2\)"):
        detect_layout((2, 2))
    assert detect_layout((2, 1), channels_hint=2).channels_last is False
    assert detect_layout((2, 1)).channels_last is True


@pytest.mark.parametrize(
    "array, error, match",
    [
        (np.ones((2, 10), np.int16), TypeError, "dtype int16"),
        (np.ones((2, 2, 2), np.float32), ValueError, "3-D"),
        (np.ones((2, 0), np.float32), ValueError, "empty"),
        (np.ones((9, 100), np.float32), ValueError, "9 channels"),
        (np.array([0.0, np.nan, np.inf]), ValueError, "2 NaN/inf"),
        ([0.0, 1.0], TypeError, "numpy array"),
    ],
)
def test_bad_arrays(array, error, match):
    with pytest.raises(error, match=match):
        to_channels_first(array)


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf"), 1e9])
def test_bad_rates(rate):
    with pytest.raises(ValueError, match="sample_rate"):
        check_sample_rate(rate)
    with pytest.raises(TypeError):
        check_sample_rate("44100")


@pytest.mark.parametrize("source, target", [(44100, 48000), (48000, 8000), (22050, 192000)])
def test_resample_keeps_a_sine(source, target):
    t = np.arange(source // 10) / source
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)[None]
    y = resample(x, source, target)
    assert y.shape == (1, round(x.shape[1] * target / source))
    # pedalboard compensates its resampler's latency to within half an output sample
    errors = [
        np.abs(y[0, 200:-200] - np.sin(2 * np.pi * 440 * (np.arange(y.shape[1]) - shift) / target)[200:-200]).max()
        for shift in np.linspace(-0.5, 0.5, 21)
    ]
    assert min(errors) < 1e-2


def test_fit_headroom_turns_a_loud_clip_down_to_the_ceiling_only():
    from fastuss_fx.audio import fit_headroom

    quiet = np.full((2, 10), 0.5, np.float32)
    assert fit_headroom(quiet) == (quiet, 0.0)
    loud = np.linspace(-1.4, 1.4, 20, dtype=np.float32)[None]
    out, gain_db = fit_headroom(loud, ceiling_db=-1.0)
    assert np.isclose(np.abs(out).max(), 10 ** (-1 / 20)) and np.isclose(gain_db, 20 * np.log10(10 ** (-1 / 20) / 1.4))
    assert np.allclose(out / loud, out[0, 0] / loud[0, 0])  # one gain, no distortion
