"""Dynamic mixing: build one training mixture from clips of a ``ClipStore``, in numpy.

A mixture holds S sources asked for by S prompts. Prompts are drawn under the co-occurrence
rule (``musicbg`` never with a music stem) and only ``MixConfig.repeatable`` kinds may repeat
(two ``speech`` prompts = two talkers). Each source is a random chunk of a random clip of its
role; drums/bass/other stems come from one song, aligned, when the corpus allows. Sources are
augmented (band-limiting, reverb), normalised to ``reference_db`` RMS, then given a random
gain; the targets are exactly the sources that sum to the mixture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fastuss_fx.data import augment
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.prompts import PROMPTS, allowed_together

ALIGNED_STEMS = ("drums", "bass", "other")
"""Kinds rendered per song from MIDI; their clips share a ``song`` id and are sample-aligned."""


@dataclass(frozen=True)
class MixConfig:
    """How mixtures are drawn. Gains in dB, probabilities per source unless named ``mix_``."""

    sample_rate: int = 48000
    chunk_seconds: float = 6.0
    min_sources: int = 2
    max_sources: int = 4
    repeatable: tuple[str, ...] = ("speech",)
    gain_db: tuple[float, float] = (-10.0, 0.0)
    background_gain_db: tuple[float, float] = (-20.0, 0.0)
    backgrounds: tuple[str, ...] = ("sfxbg", "musicbg")
    reference_db: float = -20.0
    peak_limit: float = 0.95
    song_probability: float = 0.75
    silent_probability: float = 0.02
    reverb_probability: float = 0.15
    lowpass_probability: float = 0.1
    mix_lowpass_probability: float = 0.05
    lowpass_hz: tuple[float, float] = (3000.0, 16000.0)

    def __post_init__(self) -> None:
        if not 1 <= self.min_sources <= self.max_sources:
            raise ValueError(f"need 1 <= min_sources <= max_sources, got {self.min_sources}, {self.max_sources}")
        if self.chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be positive, got {self.chunk_seconds}")
        for name in ("gain_db", "background_gain_db", "lowpass_hz"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(low, high)}")
        for kind in self.repeatable + self.backgrounds:
            if kind not in PROMPTS:
                raise ValueError(f"unknown prompt kind {kind!r} in MixConfig; choose from {', '.join(PROMPTS)}")

    @property
    def chunk_samples(self) -> int:
        return round(self.chunk_seconds * self.sample_rate)


@dataclass
class Example:
    """One mixture: ``mixture`` [N] = ``targets`` [S, N] summed.

    Per source: ``gains_db`` drawn, ``silent`` flag, ``clips`` (store indices) and ``offsets``
    (sample offset of the window into the clip; negative = zeros in front). ``scale`` is the
    common factor of peak limiting.
    """

    mixture: np.ndarray
    targets: np.ndarray
    prompts: list[str]
    gains_db: list[float] = field(default_factory=list)
    silent: list[bool] = field(default_factory=list)
    clips: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    scale: float = 1.0


def sample_prompts(rng: np.random.Generator, count: int, kinds: Sequence[str], repeatable: Sequence[str], counts: dict[str, int] | None = None) -> list[str]:
    """Draw ``count`` prompts one by one, uniformly among the kinds still allowed.

    A kind is allowed if adding it keeps ``allowed_together`` true, and, when already drawn,
    if it is ``repeatable`` and ``counts`` (clips available per kind) has a clip left for it.
    """
    prompts: list[str] = []
    for _ in range(count):
        options = [
            kind
            for kind in kinds
            if allowed_together(prompts + [kind])
            and (kind not in prompts or kind in repeatable)
            and prompts.count(kind) < (counts or {}).get(kind, count)
        ]
        if not options:
            raise ValueError(f"cannot draw {count} prompts from the kinds {sorted(kinds)} (got as far as {prompts})")
        prompts.append(options[rng.integers(len(options))])
    return prompts


class Mixer:
    """Draws mixtures from the clips ``indices`` of ``store`` (e.g. one split)."""

    def __init__(self, store: ClipStore, indices: Sequence[int], config: MixConfig):
        self.store, self.config = store, config
        self.by_role: dict[str, list[int]] = defaultdict(list)
        self.songs: dict[str, dict[str, int]] = defaultdict(dict)
        for index in indices:
            row = store.rows[index]
            self.by_role[row.role].append(index)
            if row.song is not None and row.role in ALIGNED_STEMS:
                self.songs[row.song][row.role] = index
        if not self.by_role:
            raise ValueError("the mixer got no clips")
        self.kinds = [kind for kind in PROMPTS if kind in self.by_role]

    def random_prompts(self, rng: np.random.Generator, count: int) -> list[str]:
        counts = {kind: len(clips) for kind, clips in self.by_role.items()}
        return sample_prompts(rng, count, self.kinds, self.config.repeatable, counts)

    def example(self, rng: np.random.Generator, prompts: Sequence[str]) -> Example:
        """One mixture of the sources named by ``prompts``."""
        cfg, n = self.config, self.config.chunk_samples
        prompts = list(prompts)
        clips = self._pick_clips(rng, prompts)
        chunks, offsets = self._chunks(rng, clips, n)
        mix_cutoff = float(rng.uniform(*cfg.lowpass_hz)) if rng.random() < cfg.mix_lowpass_probability else None
        silent = [bool(rng.random() < cfg.silent_probability) for _ in prompts]
        if all(silent):
            silent[int(rng.integers(len(silent)))] = False
        targets, gains = np.zeros((len(prompts), n), np.float32), []
        for s, (prompt, chunk) in enumerate(zip(prompts, chunks)):
            low, high = cfg.background_gain_db if prompt in cfg.backgrounds else cfg.gain_db
            gains.append(float(rng.uniform(low, high)))
            chunk = self._augment(rng, chunk, mix_cutoff)
            rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64))))
            if silent[s] or rms < 1e-5:
                silent[s] = True
                continue
            targets[s] = chunk * (10.0 ** ((cfg.reference_db + gains[s]) / 20.0) / rms)
        mixture = targets.sum(axis=0)
        peak = float(np.max(np.abs(mixture))) if n else 0.0
        scale = cfg.peak_limit / peak if peak > cfg.peak_limit else 1.0
        return Example(mixture * scale, targets * scale, prompts, gains, silent, clips, offsets, scale)

    def _pick_clips(self, rng: np.random.Generator, prompts: list[str]) -> list[int]:
        clips: list[int | None] = [None] * len(prompts)
        stems = [s for s, p in enumerate(prompts) if p in ALIGNED_STEMS]
        if len(stems) >= 2 and rng.random() < self.config.song_probability:
            wanted = {prompts[s] for s in stems}
            songs = sorted(song for song, roles in self.songs.items() if wanted <= roles.keys())
            if songs:
                song = self.songs[songs[int(rng.integers(len(songs)))]]
                for s in stems:
                    clips[s] = song[prompts[s]]
        for s, prompt in enumerate(prompts):
            if clips[s] is None:
                free = [c for c in self.by_role[prompt] if c not in clips]
                if not free:
                    raise ValueError(f"not enough {prompt!r} clips for the prompts {prompts}")
                clips[s] = free[int(rng.integers(len(free)))]
        return [int(c) for c in clips]  # type: ignore[arg-type]

    def _chunks(self, rng: np.random.Generator, clips: list[int], n: int) -> tuple[list[np.ndarray], list[int]]:
        """A random window of each clip and its offset; clips of one song share the window (alignment)."""
        offsets: dict[str | None, int] = {}
        chunks = []
        for clip in clips:
            audio = self.store.audio(clip)
            song = self.store.rows[clip].song
            key = song if song is not None else f"clip{clip}"
            if key not in offsets:
                offsets[key] = int(rng.integers(-max(n - len(audio), 0), max(len(audio) - n, 0) + 1))
            chunks.append(_window(audio, offsets[key], n))
        return chunks, [offsets[self.store.rows[c].song or f"clip{c}"] for c in clips]

    def _augment(self, rng: np.random.Generator, chunk: np.ndarray, mix_cutoff: float | None) -> np.ndarray:
        cfg = self.config
        if rng.random() < cfg.lowpass_probability:
            chunk = augment.lowpass(chunk, float(rng.uniform(*cfg.lowpass_hz)), cfg.sample_rate)
        if rng.random() < cfg.reverb_probability:
            chunk = augment.random_reverb(chunk, cfg.sample_rate, rng)
        if mix_cutoff is not None:
            chunk = augment.lowpass(chunk, mix_cutoff, cfg.sample_rate)
        return chunk


def _window(audio: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``audio[offset:offset + n]`` with zeros where the window leaves the clip (negative offset pads in front)."""
    out = np.zeros(n, np.float32)
    start, stop = max(offset, 0), min(offset + n, len(audio))
    if stop > start:
        out[start - offset : stop - offset] = audio[start:stop]
    return out
