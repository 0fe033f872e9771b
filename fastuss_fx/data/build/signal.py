"""Audio steps of the corpus recipes: resample to 48 kHz mono, gate silence, cut.

Decoding is ``fastuss_fx.io.decode_mono``.

Everything here is numpy over mono float32 arrays; the segment functions return sample
ranges ``(start, stop)`` so callers can keep stems aligned by cutting them the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pedalboard import Resample

from fastuss_fx.audio import resample

SAMPLE_RATE = 48000
CORPUS_RESAMPLE_QUALITY = Resample.Quality.WindowedSinc16
"""Half the taps of playback-quality resampling: ~2.5x faster on hours of audio, stop band still far below the
noise of the sources."""
FRAME_S = 0.05
"""RMS frame of the silence gate (50 ms)."""


def read_raw_u8(path: str | Path | bytes) -> np.ndarray:
    """Headerless 8-bit unsigned mono PCM (e.g. drascula's ``*.ALS``) as float32 in [-1, 1).

    ``path`` is a file, or (``bytes``) the file's content.
    """
    data = np.frombuffer(path if isinstance(path, bytes) else Path(path).read_bytes(), dtype=np.uint8)
    return ((data.astype(np.float32) - 128.0) / 128.0).astype(np.float32)


def to_48k(audio: np.ndarray, rate: float, highpass_hz: float = 20.0) -> np.ndarray:
    """Resample mono ``audio`` from ``rate`` to 48 kHz (the package's resampler) and remove DC / rumble."""
    from pedalboard import HighpassFilter

    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate!r}")
    audio = np.asarray(audio, dtype=np.float32)
    if rate != SAMPLE_RATE and len(audio):
        audio = resample(audio[None], rate, SAMPLE_RATE, quality=CORPUS_RESAMPLE_QUALITY)[0]
    if highpass_hz > 0 and len(audio):
        audio = HighpassFilter(highpass_hz)(audio[None], SAMPLE_RATE)[0]
    return np.ascontiguousarray(audio, dtype=np.float32)


def frame_db(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS level in dB of consecutive ``frame``-sample frames (a trailing partial frame is dropped)."""
    count = len(audio) // frame
    if count == 0:
        return np.zeros(0)
    frames = np.asarray(audio[: count * frame], dtype=np.float64).reshape(count, frame)
    return 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9)


def gate_segments(
    audio: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    rel_db: float = 50.0,
    floor_db: float = -90.0,
    max_silence_s: float = 1.0,
    pad_s: float = 0.1,
) -> list[tuple[int, int]]:
    """Sample ranges left after the energy gate.

    A frame is quiet when its 50 ms RMS is more than ``rel_db`` below the loudest frame (or
    below ``floor_db``). Quiet runs longer than ``max_silence_s``, and quiet at either end,
    are cut out, keeping ``pad_s`` of each edge; shorter pauses stay. An all-quiet signal
    gives ``[]``.
    """
    frame = int(FRAME_S * sample_rate)
    db = frame_db(audio, frame)
    if len(db) == 0 or db.max() < floor_db:
        return []
    quiet = db < max(db.max() - rel_db, floor_db)
    pad = int(pad_s * sample_rate)
    segments, start, i = [], 0, 0
    while i < len(db):
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < len(db) and quiet[j]:
            j += 1
        at_edge = i == 0 or j == len(db)
        if at_edge or (j - i) * FRAME_S > max_silence_s:
            stop = i * frame + (pad if i > 0 else 0)
            if stop > start:
                segments.append((start, min(stop, len(audio))))
            start = len(audio) if j == len(db) else max(j * frame - pad, 0)
        i = j
    if start < len(audio):
        segments.append((start, len(audio)))
    return segments


def cut_points(
    length: int,
    rng: np.random.Generator,
    *,
    sample_rate: int = SAMPLE_RATE,
    min_s: float = 4.0,
    max_s: float = 20.0,
    target_s: tuple[float, float] = (8.0, 16.0),
) -> list[tuple[int, int]]:
    """Cut ``length`` samples into consecutive pieces of ``min_s``..``max_s`` seconds.

    Pieces aim at a random length in ``target_s``; a remainder shorter than ``min_s`` is dropped.
    """
    if not 0 < min_s <= target_s[0] <= target_s[1] <= max_s:
        raise ValueError(f"need 0 < min_s <= target_s <= max_s, got min_s={min_s}, target_s={target_s}, max_s={max_s}")
    pieces, pos = [], 0
    while length - pos >= min_s * sample_rate:
        rest_s = (length - pos) / sample_rate
        if rest_s <= max_s:
            pieces.append((pos, length))
            break
        size_s = rng.uniform(*target_s)
        if rest_s - size_s < min_s:
            size_s = rest_s / 2
        step = int(size_s * sample_rate)
        pieces.append((pos, pos + step))
        pos += step
    return pieces


def trim(
    audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE, rel_db: float = 50.0, keep_s: float = 0.02
) -> np.ndarray:
    """Drop leading and trailing quiet (10 ms frames, ``rel_db`` below the peak frame)."""
    frame = sample_rate // 100
    db = frame_db(audio, frame)
    if len(db) == 0:
        return audio
    loud = np.nonzero(db >= db.max() - rel_db)[0]
    keep = int(keep_s * sample_rate)
    return audio[max(loud[0] * frame - keep, 0) : min((loud[-1] + 1) * frame + keep, len(audio))]


def peak_gain(audio: np.ndarray, rng: np.random.Generator | None = None, peak: float = 0.9) -> float:
    """Gain that brings the peak to ``peak`` (times a random 0.5..1 when ``rng`` is given)."""
    target = peak * (rng.uniform(0.5, 1.0) if rng is not None else 1.0)
    return target / (float(np.max(np.abs(audio))) + 1e-9) if len(audio) else 1.0
