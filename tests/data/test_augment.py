import numpy as np
import pytest

from fastuss_fx.data import augment

RATE = 48000


def band_energy(audio, low, high):
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return spectrum[(freqs >= low) & (freqs < high)].sum()


def test_lowpass_leaves_nothing_above_the_cutoff_and_keeps_the_passband():
    noise = np.random.default_rng(0).standard_normal((2, 9600)).astype(np.float32)
    out = augment.lowpass(noise, 4000.0, RATE)
    assert out.shape == noise.shape and out.dtype == np.float32
    for x, y in zip(noise, out, strict=True):
        assert band_energy(y, 4000, RATE) < 1e-10 * band_energy(y, 0, RATE)
        assert band_energy(y, 0, 3600) == pytest.approx(band_energy(x, 0, 3600), rel=1e-4)


def test_tilt_is_in_db_per_octave():
    freqs = np.array([500.0, 1000.0, 2000.0, 4000.0, 20.0, 24000.0])
    gains = 20 * np.log10(augment.tilt_response(freqs, 3.0, max_db=10.0))
    np.testing.assert_allclose(gains[:4], [-3.0, 0.0, 3.0, 6.0], atol=1e-4)
    np.testing.assert_allclose(gains[4:], [-10.0, 10.0], atol=1e-4)  # clamped


def test_convolve_is_linear_convolution_with_history():
    rng = np.random.default_rng(1)
    audio, impulse = rng.standard_normal((3, 1000)), rng.standard_normal(301)
    np.testing.assert_allclose(augment.convolve(audio, impulse)[1], np.convolve(audio[1], impulse)[:1000], atol=1e-4)
    for context in (0, 100, 300, 500):
        got = augment.convolve(audio, impulse, context=context)
        assert got.shape == (3, 1000 - context)
        np.testing.assert_allclose(got[2], np.convolve(audio[2], impulse)[context:1000], atol=1e-4)


def test_fast_size_is_the_next_5_smooth_number():
    smooth = sorted(2**a * 3**b * 5**c for a in range(14) for b in range(9) for c in range(6))
    for n in [1, 2, 7, 97, 1000, 4097, 57601, 96001]:
        assert augment.fast_size(n) == next(s for s in smooth if s >= n)


def decay_rt60(impulse):
    """RT60 from the Schroeder backward integral, fitted from -5 to -25 dB (T20 x 3)."""
    energy = np.cumsum(impulse[::-1].astype(np.float64) ** 2)[::-1]
    db = 10 * np.log10(energy / energy[0])
    start, stop = np.argmax(db < -5), np.argmax(db < -25)
    return 3 * (stop - start) / RATE


@pytest.mark.parametrize("rt60", [0.3, 0.6, 1.0])
def test_room_decays_at_its_rt60_and_faster_in_the_highs(rt60):
    rng = np.random.default_rng(2)
    room = augment.room_impulse(rng, RATE, rt60, hf_damping=0.5)
    assert len(room) == int(rt60 * RATE) and room.dtype == np.float32
    assert np.sum(room.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert not room[: int(0.002 * RATE)].any()  # pre-delay: the direct path is the caller's
    below_1k = decay_rt60(augment.lowpass(room, 1000.0, RATE))
    assert 0.85 * rt60 < below_1k < 1.15 * rt60
    assert below_1k > 1.5 * decay_rt60(room - augment.lowpass(room, 6000.0, RATE))


def test_loudness_ignores_pauses_and_scales_exactly():
    t = np.arange(RATE) / RATE
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert augment.loudness_db(tone, RATE) == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.01)
    with_pause = np.concatenate([tone, np.zeros(RATE, np.float32), 1e-4 * tone])
    assert augment.loudness_db(with_pause, RATE) == pytest.approx(augment.loudness_db(tone, RATE), abs=0.01)
    assert augment.loudness_db(0.01 * with_pause, RATE) == pytest.approx(
        augment.loudness_db(with_pause, RATE) - 40.0, abs=1e-6
    )
    assert augment.loudness_db(np.zeros(100, np.float32), RATE) == -np.inf
