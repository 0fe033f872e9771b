"""A small synthetic corpus in the manifest format: for tests, smoke runs and demos.

Every role gets a simple signal with its own character (voiced "syllables" for speech,
sustained vibrato tones for vocals, noise bursts for sfx, steady coloured noise for sfxbg,
hits / low notes / chords for the drums / bass / other stems of one ``song``, their sum
for musicbg), so a tiny model can learn to tell them apart in a few dozen steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from fastuss_fx.data.manifest import ManifestRow, write_manifest
from fastuss_fx.prompts import PROMPTS


def _harmonic(
    rng: np.random.Generator, t: np.ndarray, f0: float, harmonics: int, vibrato_hz: float, sample_rate: int
) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * vibrato_hz * t))) / sample_rate
    return cast(np.ndarray, sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, harmonics + 1)))


def _envelope(rng: np.random.Generator, n: int, rate: float, sample_rate: int, decay_s: float) -> np.ndarray:
    """Random onsets at ``rate`` per second, each decaying exponentially."""
    env = np.zeros(n)
    onsets = np.sort(rng.integers(0, n, size=max(1, int(rate * n / sample_rate))))
    tail = np.exp(-np.arange(int(decay_s * sample_rate) * 4) / (decay_s * sample_rate))
    for onset in onsets:
        stop = min(n, onset + len(tail))
        env[onset:stop] = np.maximum(env[onset:stop], tail[: stop - onset])
    return env


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.maximum(np.arange(len(spectrum)), 1) ** (exponent / 2)
    return np.fft.irfft(spectrum, n)


def synth(role: str, rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """One clip of ``role``: mono float32, peak 0.5."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    if role == "speech":
        x = _harmonic(rng, t, rng.uniform(100, 250), 8, 5.0, sample_rate) * _envelope(rng, n, 4.0, sample_rate, 0.08)
    elif role == "vocals":
        x = _harmonic(rng, t, rng.uniform(220, 500), 4, 6.0, sample_rate) * (
            0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t) ** 2
        )
    elif role == "sfx":
        x = rng.standard_normal(n) * _envelope(rng, n, 1.5, sample_rate, 0.05)
    elif role == "sfxbg":
        x = _coloured_noise(rng, n, rng.uniform(1.0, 2.0))
    elif role == "drums":
        x = rng.standard_normal(n) * _envelope(rng, n, 6.0, sample_rate, 0.02)
    elif role == "bass":
        x = np.sin(2 * np.pi * rng.uniform(40, 100) * t) * _envelope(rng, n, 2.0, sample_rate, 0.4)
    elif role == "other":
        x = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in rng.uniform(300, 1000, size=3)) * _envelope(
            rng, n, 2.0, sample_rate, 0.3
        )
    elif role == "musicbg":
        x = sum(synth(r, rng, seconds, sample_rate) for r in ("drums", "bass", "other"))
    else:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(PROMPTS)}")
    x = np.asarray(x, dtype=np.float64)
    return (0.5 * x / max(float(np.max(np.abs(x))), 1e-9)).astype(np.float32)


def write_synthetic_corpus(
    folder: str | Path,
    *,
    clips_per_role: int = 4,
    valid_per_role: int = 2,
    seconds: float = 2.0,
    sample_rate: int = 48000,
    seed: int = 0,
) -> Path:
    """Write ``clips_per_role`` train + ``valid_per_role`` valid clips of every role (FLAC) and ``manifest.jsonl``.

    Drums, bass and other clip ``k`` of a split are the stems of song ``<split>-song-k``.
    Returns the manifest path.
    """
    from pedalboard.io import AudioFile

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    rows = []
    for split, count in (("train", clips_per_role), ("valid", valid_per_role)):
        for role in PROMPTS:
            (folder / role).mkdir(parents=True, exist_ok=True)
            for k in range(count):
                path = f"{role}/{split}_{k:02d}.flac"
                with AudioFile(str(folder / path), "w", sample_rate, 1) as f:
                    f.write(synth(role, rng, seconds, sample_rate)[None])
                song = f"{split}-song-{k}" if role in ("drums", "bass", "other") else None
                rows.append(ManifestRow(path, role, split, "CC0-1.0", sample_rate, seconds, song, "synthetic"))
    return write_manifest(rows, folder / "manifest.jsonl")
