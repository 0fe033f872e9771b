"""The recording channel in numpy: band limits, EQ tilt, synthetic rooms, loudness.

Every effect here is linear, so applying it to each source and summing gives the same
mixture as applying it to the mixture; the training targets are always the processed
(e.g. reverberant, band-limited) sources. Filters (band limits, tilt) work in the frequency
domain on the whole window (zero phase, circular), so a band limit leaves exactly no energy
above its cutoff in the DFT of the window; rooms are linear convolutions that also hear the
window's history. Replaces the pedalboard low-pass and Freeverb of earlier versions.
"""

from __future__ import annotations

import itertools

import numpy as np

ROOM_BANDS_HZ = (1000.0, 4000.0)
"""Band edges of the synthetic room's frequency-dependent decay (below, between, above)."""


def band_response(freqs: np.ndarray, cutoff_hz: float, transition: float = 0.1) -> np.ndarray:
    """Low-pass gain per frequency.

    1 below ``cutoff_hz * (1 - transition)``, a raised cosine down to 0 at ``cutoff_hz``.
    """
    start = cutoff_hz * (1.0 - transition)
    x = np.clip((freqs - start) / max(cutoff_hz - start, 1e-9), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * x)).astype(np.float32)


def tilt_response(
    freqs: np.ndarray, db_per_octave: float, pivot_hz: float = 1000.0, max_db: float = 12.0
) -> np.ndarray:
    """A spectral tilt of ``db_per_octave`` around ``pivot_hz``, clamped to +-``max_db``."""
    octaves = np.log2(np.maximum(freqs, 20.0) / pivot_hz)
    return (10.0 ** (np.clip(db_per_octave * octaves, -max_db, max_db) / 20.0)).astype(np.float32)


def filter_fft(audio: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Apply a real gain ``response`` [N // 2 + 1] to ``audio`` [..., N] (zero phase, circular over the window)."""
    n = audio.shape[-1]
    return np.fft.irfft(np.fft.rfft(audio, axis=-1) * response, n, axis=-1).astype(np.float32)


def frequencies(n: int, sample_rate: int) -> np.ndarray:
    """Bin frequencies of an ``n``-point real FFT."""
    return np.fft.rfftfreq(n, 1.0 / sample_rate)


def lowpass(audio: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Band-limit ``audio`` [..., N] to below ``cutoff_hz`` (nothing at or above it)."""
    return filter_fft(audio, band_response(frequencies(audio.shape[-1], sample_rate), cutoff_hz))


def room_impulse(rng: np.random.Generator, sample_rate: int, rt60: float, hf_damping: float = 0.4) -> np.ndarray:
    """The reverberant part of a synthetic room impulse response, unit energy.

    ``rt60`` seconds long (the decay below 1 kHz).

    Exponentially decaying Gaussian noise per band (``ROOM_BANDS_HZ``); bands above 1 kHz decay
    faster (RT60 times ``(1000 / f) ** hf_damping`` at their centre f). It starts after a
    pre-delay of 2-20 ms with a few sparse early reflections; the direct path is not included:
    a source in the room is ``direct_gain * x + convolve(x, room)``.
    """
    length = max(int(rt60 * sample_rate), 16)
    size = fast_size(length)
    t = np.arange(length, dtype=np.float32) / sample_rate
    spectrum = np.fft.rfft(rng.standard_normal(size).astype(np.float32))
    freqs = frequencies(size, sample_rate)
    edges = (0.0, *ROOM_BANDS_HZ, sample_rate)
    tail = np.zeros(length, np.float32)
    for low, high in itertools.pairwise(edges):
        centre = np.sqrt(max(low, 250.0) * min(high, sample_rate / 2))
        band_rt60 = rt60 * min(1.0, (1000.0 / centre) ** hf_damping)
        band = np.fft.irfft(np.where((freqs >= low) & (freqs < high), spectrum, 0), size)[:length]
        tail += band * np.exp(-6.9078 / band_rt60 * t)  # -60 dB at band_rt60
    predelay = int(rng.uniform(0.002, 0.02) * sample_rate)
    tail *= np.clip((np.arange(length) - predelay) / (0.01 * sample_rate), 0.0, 1.0).astype(np.float32)
    level = np.sqrt(np.mean(tail[predelay : predelay + int(0.02 * sample_rate)] ** 2) + 1e-12)
    for _ in range(int(rng.integers(3, 9))):  # early reflections, stronger than the diffuse tail
        at = int(rng.uniform(predelay, predelay + 0.05 * sample_rate))
        if at < length:
            tail[at] += rng.choice((-1.0, 1.0)) * rng.uniform(2.0, 6.0) * level * np.exp(-6.9078 * t[at] / rt60)
    return tail / np.sqrt(np.sum(np.square(tail, dtype=np.float64))).astype(np.float32)


def convolve(audio: np.ndarray, impulse: np.ndarray, context: int = 0) -> np.ndarray:
    """Causal convolution of ``audio`` [..., context + N] with ``impulse`` [L]; returns the last N samples.

    The first ``context`` samples are history: they feed the output (e.g. the reverb tail of
    what came before a window) but are not returned. With ``context >= L - 1`` the FFT needs
    no zero padding (overlap-save). One FFT of ``impulse`` serves all signals of the stack.
    """
    total = audio.shape[-1]
    size = fast_size(total + max(len(impulse) - 1 - context, 0))
    spectrum = np.fft.rfft(audio, size, axis=-1) * np.fft.rfft(impulse, size)
    return np.fft.irfft(spectrum, size, axis=-1)[..., context:total].astype(np.float32)


def fast_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= ``n``: a length numpy's FFT handles fast."""
    best, power5 = 1 << max(int(n) - 1, 0).bit_length(), 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35 << max(0, (int(n) - 1) // power35).bit_length()  # power35 * 2^k >= n
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def loudness_db(audio: np.ndarray, sample_rate: int, frame_s: float = 0.05, relative_gate_db: float = -10.0) -> float:
    """Loudness in dB FS: mean power over active frames (gated like ITU-R BS.1770, without K-weighting).

    Frames of ``frame_s``; frames 70 dB below the loudest are dropped, then frames more than
    ``relative_gate_db`` below the mean of the rest, so pauses do not count. Scaling the
    audio by g adds exactly 20 log10(g).
    """
    frame = max(int(frame_s * sample_rate), 1)
    audio = np.asarray(audio, dtype=np.float64)
    count = len(audio) // frame
    powers = (
        np.mean(np.square(audio[: count * frame]).reshape(count, frame), axis=1)
        if count
        else np.array([np.mean(np.square(audio))])
    )
    peak = float(np.max(powers)) if len(powers) else 0.0
    if peak <= 0.0:
        return -np.inf
    active = powers[powers >= peak * 1e-7]
    active = active[active >= np.mean(active) * 10.0 ** (relative_gate_db / 10.0)]
    return float(10.0 * np.log10(np.mean(active)))
