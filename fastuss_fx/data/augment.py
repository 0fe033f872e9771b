"""Source augmentation with pedalboard effects: band-limiting and reverb.

Every effect here is linear in its input, so applying it to each source and summing gives
the same mixture as applying it to the mixture; the training targets are always the
augmented (e.g. reverberant) sources.
"""

from __future__ import annotations

import numpy as np
import pedalboard


def lowpass(audio: np.ndarray, cutoff_hz: float, sample_rate: int, order: int = 4) -> np.ndarray:
    """Band-limit ``audio`` [N] with ``order`` cascaded first-order low-passes (6 dB/octave each)."""
    board = pedalboard.Pedalboard([pedalboard.LowpassFilter(cutoff_frequency_hz=cutoff_hz) for _ in range(order)])
    return board(audio[None].astype(np.float32), sample_rate)[0]


def reverb(audio: np.ndarray, sample_rate: int, *, room_size: float, damping: float, wet_level: float, dry_level: float) -> np.ndarray:
    """Mono Freeverb (``pedalboard.Reverb``) of ``audio`` [N]; same length out."""
    effect = pedalboard.Reverb(room_size=room_size, damping=damping, wet_level=wet_level, dry_level=dry_level, width=0.0)
    return effect(audio[None].astype(np.float32), sample_rate)[0]


def random_reverb(audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``reverb`` with random room parameters (small to large rooms, mostly dry)."""
    return reverb(
        audio,
        sample_rate,
        room_size=float(rng.uniform(0.1, 0.9)),
        damping=float(rng.uniform(0.1, 0.9)),
        wet_level=float(rng.uniform(0.05, 0.4)),
        dry_level=float(rng.uniform(0.6, 1.0)),
    )
