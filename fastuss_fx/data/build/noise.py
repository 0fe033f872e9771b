"""Generated background noise for ``sfxbg``: coloured noise, mains hum, slow level drift."""

from __future__ import annotations

from typing import cast

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "blue", "hum50", "hum60", "pink+hum50", "brown+hum60")
_SLOPE = {"white": 0.0, "pink": -0.5, "brown": -1.0, "blue": 0.5}
"""Amplitude slope exponent of each noise colour (power falls as f^(2 * slope))."""


def noise(kind: str, rng: np.random.Generator, seconds: float, sample_rate: int = 48000) -> np.ndarray:
    """``seconds`` of noise ``kind`` (one of ``NOISE_KINDS``), mono float32, unit-ish level.

    Hum is 50 or 60 Hz with 11 harmonics of random level and phase; every kind gets a slow
    random amplitude drift so the clip is not perfectly stationary.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    n = int(seconds * sample_rate)
    parts = kind.split("+")
    colour = next((p for p in parts if p in _SLOPE), None)
    hum = next((p for p in parts if p.startswith("hum")), None)
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    if colour:
        freqs = np.fft.rfftfreq(n, 1 / sample_rate)
        freqs[0] = freqs[1]
        x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * freqs ** _SLOPE[colour], n)
        x /= np.std(x) + 1e-12
    if hum:
        f0 = float(hum.removeprefix("hum"))
        tone = cast(
            np.ndarray,
            sum(
                rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
                for k in range(1, 12)
            ),
        )
        x = x * rng.uniform(0.05, 0.3) + tone if colour else tone
    drift = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t)
    return (x * drift).astype(np.float32)
