"""Dynamic mixing: build one training mixture from clips of a ``ClipStore``, in numpy.

A mixture holds S sources asked for by S prompts. A batch's prompt set comes from a task
drawn by ``MixConfig.task_weights`` (fixed sets such as dialog or denoise, in random order,
or ``random``: prompts drawn under the co-occurrence rule, ``musicbg`` never with a music
stem, only ``MixConfig.repeatable`` kinds repeating). Each source is a random chunk of a
random clip of its role (full-band speech drawn more often); drums/bass/other stems come from
one song, aligned, when the corpus allows; an ``sfxbg`` source may be babble (4-10 training
talkers). Then the recording channel (``augment``), every step linear and applied alike to
every source so the targets always sum exactly to the mixture:

1. per source: an optional low-pass; one synthetic room per mixture, shared by the sources
   in it (each with its own direct-to-reverberant ratio);
2. per mixture: EQ tilt, a band limit at the Nyquist frequency of the lowest native rate
   among the clips (removes the "band-limited means speech" cue), codec-like low-passes;
3. levels by loudness (``augment.loudness_db``): foreground at ``reference_db + gain``,
   backgrounds ``snr_db`` below the first speech source (or at a background gain);
4. occasional clipping: the mixture is hard-clipped and each target gets the same
   per-sample gain ``clip(m) / m``, so the targets split the clipped mixture (the model is
   not asked to undo clipping); the band limit is applied again afterwards;
5. a common scale so the mixture peaks at most at ``peak_limit``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fastuss_fx.data import augment
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.tasks import TASKS
from fastuss_fx.metrics import is_silent
from fastuss_fx.prompts import PROMPTS, allowed_together

ALIGNED_STEMS = ("drums", "bass", "other")
"""Kinds rendered per song from MIDI; their clips share a ``song`` id and are sample-aligned."""


def parse_task_weights(entries: Sequence[str]) -> list[tuple[tuple[str, ...] | None, float]]:
    """``"name=weight"`` entries as (prompts, weight); prompts ``None`` for ``random``.

    A name is ``random`` (prompts drawn as ``Mixer.random_prompts``), a task of ``tasks.TASKS``
    (``dialog``, ``denoise``, ...) or prompts joined by ``+`` (``speech+sfxbg+musicbg``).
    """
    parsed = []
    for entry in entries:
        name, sep, weight = entry.partition("=")
        try:
            value = float(weight) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not value >= 0:
            raise ValueError(f"task weight {entry!r} must be NAME=WEIGHT with WEIGHT >= 0")
        if name == "random":
            prompts = None
        elif name in TASKS:
            prompts = TASKS[name].prompts
        else:
            prompts = tuple(name.split("+"))
            unknown = [p for p in prompts if p not in PROMPTS]
            if unknown or not allowed_together(prompts):
                raise ValueError(
                    f"task weight {entry!r}: not a task ({', '.join(['random', *TASKS])}) "
                    "nor an allowed '+'-joined prompt list"
                )
        parsed.append((prompts, value))
    if not parsed or sum(w for _, w in parsed) <= 0:
        raise ValueError(f"task_weights need a positive weight, got {tuple(entries)}")
    return parsed


@dataclass(frozen=True)
class MixConfig:
    """How mixtures are drawn. Gains in dB (loudness), probabilities per source unless they say per mixture.

    ``task_weights``: ``NAME=WEIGHT`` entries (see ``parse_task_weights``), one task per batch;
    tasks that do not fit ``min_sources..max_sources`` or the clips at hand are skipped.
    ``reverb_probability``: a mixture is in a room (RT60 ``rt60_s``, high bands decaying
    faster by ``hf_damping``); each source is in it with ``room_source_probability`` at a
    direct-to-reverberant ratio ``drr_db``. ``bandwidth_probability``: per mixture, band-limit
    everything to the lowest native rate's Nyquist. ``mix_lowpass_probability``: per mixture,
    a codec-like low-pass at one of ``codec_hz``. ``lowpass_probability``: per source, a
    low-pass in ``lowpass_hz``. ``tilt_probability``: per mixture, EQ tilt in
    ``tilt_db_per_octave``. ``snr_db``: loudness of the first speech source over each
    background. ``clip_probability``: per mixture, clip ``clip_drive_db`` into the peak.
    ``babble_probability``: an ``sfxbg`` source is ``babble_talkers`` training talkers in a
    room. Speech clips of native rate >= ``fullband_rate`` are drawn ``fullband_speech_weight``
    times as often. ``valid_channel``: validation mixtures get this channel too (seeded).
    """

    sample_rate: int = 48000
    chunk_seconds: float = 6.0
    min_sources: int = 2
    max_sources: int = 4
    repeatable: tuple[str, ...] = ("speech",)
    task_weights: tuple[str, ...] = (
        "dialog=0.25",
        "denoise=0.2",
        "speech+sfx+sfxbg+musicbg=0.1",
        "speech+speech+sfxbg=0.05",
        "random=0.4",
    )
    gain_db: tuple[float, float] = (-10.0, 0.0)
    background_gain_db: tuple[float, float] = (-20.0, 0.0)
    snr_db: tuple[float, float] = (-5.0, 25.0)
    backgrounds: tuple[str, ...] = ("sfxbg", "musicbg")
    reference_db: float = -20.0
    peak_limit: float = 0.95
    song_probability: float = 0.75
    silent_probability: float = 0.02
    fullband_speech_weight: float = 3.0
    fullband_rate: int = 32000
    reverb_probability: float = 0.5
    room_source_probability: float = 0.8
    rt60_s: tuple[float, float] = (0.2, 1.2)
    hf_damping: tuple[float, float] = (0.1, 0.6)
    drr_db: tuple[float, float] = (-6.0, 12.0)
    babble_probability: float = 0.25
    babble_talkers: tuple[int, int] = (4, 10)
    tilt_probability: float = 0.5
    tilt_db_per_octave: tuple[float, float] = (-2.0, 2.0)
    bandwidth_probability: float = 0.5
    mix_lowpass_probability: float = 0.08
    codec_hz: tuple[float, ...] = (3400.0, 7000.0, 11000.0, 16000.0)
    lowpass_probability: float = 0.1
    lowpass_hz: tuple[float, float] = (3000.0, 16000.0)
    clip_probability: float = 0.03
    clip_drive_db: tuple[float, float] = (1.0, 12.0)
    valid_channel: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_sources <= self.max_sources:
            raise ValueError(f"need 1 <= min_sources <= max_sources, got {self.min_sources}, {self.max_sources}")
        if self.chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be positive, got {self.chunk_seconds}")
        ranges = (
            "gain_db",
            "background_gain_db",
            "snr_db",
            "rt60_s",
            "hf_damping",
            "drr_db",
            "babble_talkers",
            "tilt_db_per_octave",
            "lowpass_hz",
            "clip_drive_db",
        )
        for name in ranges:
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(low, high)}")
        for name in ("rt60_s", "babble_talkers", "codec_hz", "fullband_speech_weight"):
            value = getattr(self, name)
            if not value or min(value if isinstance(value, tuple) else (value,)) <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for kind in self.repeatable + self.backgrounds:
            if kind not in PROMPTS:
                raise ValueError(f"unknown prompt kind {kind!r} in MixConfig; choose from {', '.join(PROMPTS)}")
        parse_task_weights(self.task_weights)

    @property
    def chunk_samples(self) -> int:
        return round(self.chunk_seconds * self.sample_rate)


@dataclass
class Example:
    """One mixture: ``mixture`` [N] = ``targets`` [S, N] summed.

    Per source: ``gains_db`` drawn (loudness over ``reference_db``), ``silent`` flag, ``clips``
    (store indices; -1 for babble, whose talkers are in ``babble``) and ``offsets`` (sample
    offset of the window into the clip; negative = zeros in front), ``in_room`` (uses ``room``,
    the reverberant part of the shared impulse response) and ``snr_db`` (loudness of the
    first speech source over this background). Per mixture: ``cutoff_hz`` (band limit),
    ``tilt_db`` (dB per octave), ``clip_db`` (clipping drive) and ``scale`` (peak limiting).
    """

    mixture: np.ndarray
    targets: np.ndarray
    prompts: list[str]
    gains_db: list[float] = field(default_factory=list)
    silent: list[bool] = field(default_factory=list)
    clips: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    scale: float = 1.0
    in_room: list[bool] = field(default_factory=list)
    room: np.ndarray | None = None
    snr_db: list[float | None] = field(default_factory=list)
    babble: dict[int, list[int]] = field(default_factory=dict)
    cutoff_hz: float | None = None
    tilt_db: float = 0.0
    clip_db: float | None = None


def sample_prompts(
    rng: np.random.Generator,
    count: int,
    kinds: Sequence[str],
    repeatable: Sequence[str],
    counts: dict[str, int] | None = None,
) -> list[str]:
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
        self.weights = {
            c: config.fullband_speech_weight if store.rows[c].native_rate >= config.fullband_rate else 1.0
            for c in self.by_role.get("speech", [])
        }
        self.tasks = [
            (prompts, weight)
            for prompts, weight in parse_task_weights(config.task_weights)
            if weight > 0 and self._fits(prompts)
        ]
        if not self.tasks:
            self.tasks = [(None, 1.0)]

    def _fits(self, prompts: tuple[str, ...] | None) -> bool:
        if prompts is None:
            return True
        counts_ok = all(prompts.count(p) <= len(self.by_role.get(p, [])) for p in prompts)
        return counts_ok and self.config.min_sources <= len(prompts) <= self.config.max_sources

    def random_prompts(self, rng: np.random.Generator, count: int) -> list[str]:
        counts = {kind: len(clips) for kind, clips in self.by_role.items()}
        return sample_prompts(rng, count, self.kinds, self.config.repeatable, counts)

    def batch_prompts(self, rng: np.random.Generator, batch_size: int) -> list[list[str]]:
        """Prompts of one batch (one S): a task drawn by ``task_weights``, its prompts shuffled per example."""
        weights = np.array([w for _, w in self.tasks])
        task = self.tasks[int(rng.choice(len(self.tasks), p=weights / weights.sum()))][0]
        if task is None:
            count = int(rng.integers(self.config.min_sources, self.config.max_sources + 1))
            return [self.random_prompts(rng, count) for _ in range(batch_size)]
        return [[task[i] for i in rng.permutation(len(task))] for _ in range(batch_size)]

    def example(self, rng: np.random.Generator, prompts: Sequence[str]) -> Example:
        """One mixture of the sources named by ``prompts``."""
        cfg, n, rate = self.config, self.config.chunk_samples, self.config.sample_rate
        prompts = list(prompts)
        babble = self._babble_sources(rng, prompts)
        clips = self._pick_clips(rng, prompts, babble)
        talkers = self._pick_talkers(rng, clips, babble)
        room = self._room(rng) if rng.random() < cfg.reverb_probability else None
        in_room = [
            room is not None and (s in babble or bool(rng.random() < cfg.room_source_probability))
            for s in range(len(prompts))
        ]
        babble_room = room if room is not None or not babble else self._room(rng)
        longest = max((len(r) for r in (room, babble_room) if r is not None), default=0)
        pre = (
            augment.fast_size(longest + n) - n if longest else 0
        )  # history for the reverb tail; pre + n is a fast FFT size
        chunks, offsets = self._chunks(rng, clips, n, pre)
        silent = [bool(rng.random() < cfg.silent_probability) for _ in prompts]
        if all(silent):
            silent[int(rng.integers(len(silent)))] = False

        for s in range(len(prompts)):
            if s in babble:
                chunks[s] = self._babble(rng, talkers[s], pre + n)
            if rng.random() < cfg.lowpass_probability:
                chunks[s] = augment.lowpass(chunks[s], float(rng.uniform(*cfg.lowpass_hz)), rate)
        stack = np.stack(chunks)
        targets = stack[:, pre:].copy()
        for impulse, group in (
            (room, [s for s in range(len(prompts)) if in_room[s]]),
            (babble_room, [s for s in babble if not in_room[s]]),
        ):
            if group:  # direct path at its own level + the shared reverberant part, history included
                assert impulse is not None  # a source is in a room only when that room exists
                direct = 10.0 ** (rng.uniform(*cfg.drr_db, size=len(group)) / 20.0)
                targets[group] = direct[:, None].astype(np.float32) * targets[group] + augment.convolve(
                    stack[group], impulse, context=pre
                )

        tilt = float(rng.uniform(*cfg.tilt_db_per_octave)) if rng.random() < cfg.tilt_probability else 0.0
        cutoff = self._cutoff(rng, clips + [c for t in talkers.values() for c in t])
        if tilt or cutoff is not None:
            freqs = augment.frequencies(n, rate)
            response = augment.tilt_response(freqs, tilt)
            if cutoff is not None:
                response *= augment.band_response(freqs, cutoff)
            targets = augment.filter_fft(targets, response)

        gains, snrs = self._levels(rng, prompts, targets, silent)
        mixture = targets.sum(axis=0)
        clip_db = None
        if rng.random() < cfg.clip_probability and n and np.any(mixture):
            clip_db = float(rng.uniform(*cfg.clip_drive_db))
            magnitude = np.abs(mixture)
            threshold = float(np.max(magnitude)) / 10.0 ** (clip_db / 20.0)
            targets *= np.minimum(1.0, threshold / np.maximum(magnitude, 1e-12)).astype(np.float32)
            if cutoff is not None:
                targets = augment.lowpass(targets, cutoff, rate)
            mixture = targets.sum(axis=0)
        peak = float(np.max(np.abs(mixture))) if n else 0.0
        scale = cfg.peak_limit / peak if peak > cfg.peak_limit else 1.0
        targets = targets * np.float32(scale)
        return Example(
            targets.sum(axis=0),
            targets,
            prompts,
            gains,
            silent,
            clips,
            offsets,
            scale,
            in_room=in_room,
            room=room,
            snr_db=snrs,
            babble=talkers,
            cutoff_hz=cutoff,
            tilt_db=tilt,
            clip_db=clip_db,
        )

    def _room(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        return augment.room_impulse(
            rng, cfg.sample_rate, float(rng.uniform(*cfg.rt60_s)), float(rng.uniform(*cfg.hf_damping))
        )

    def _cutoff(self, rng: np.random.Generator, clips: list[int]) -> float | None:
        """The mixture's band limit: the lowest native Nyquist (often) and a codec low-pass (rarely), if below ours."""
        cfg, nyquist = self.config, self.config.sample_rate / 2
        cutoffs = []
        if rng.random() < cfg.bandwidth_probability:
            cutoffs.append(min(self.store.rows[c].native_rate for c in clips if c >= 0) / 2)
        if rng.random() < cfg.mix_lowpass_probability:
            cutoffs.append(cfg.codec_hz[int(rng.integers(len(cfg.codec_hz)))])
        cutoff = min(cutoffs, default=nyquist)
        return float(cutoff) if cutoff < nyquist else None

    def _levels(
        self, rng: np.random.Generator, prompts: list[str], targets: np.ndarray, silent: list[bool]
    ) -> tuple[list[float], list[float | None]]:
        """Scale ``targets`` in place to their loudness; silent ones to zero. Returns gains and SNRs."""
        cfg = self.config
        gains = [
            float(rng.uniform(*(cfg.background_gain_db if p in cfg.backgrounds else cfg.gain_db))) for p in prompts
        ]
        snrs: list[float | None] = [None] * len(prompts)
        for s, target in enumerate(targets):
            if silent[s] or is_silent(target.astype(np.float64)):
                silent[s] = True
                target[:] = 0.0
        speech = next((s for s, p in enumerate(prompts) if p == "speech" and not silent[s]), None)
        for s, prompt in enumerate(prompts):
            if speech is not None and prompt in cfg.backgrounds and not silent[s]:
                snr = float(rng.uniform(*cfg.snr_db))
                snrs[s] = snr
                gains[s] = gains[speech] - snr
            if not silent[s]:
                level = augment.loudness_db(targets[s], cfg.sample_rate)
                targets[s] *= np.float32(10.0 ** ((cfg.reference_db + gains[s] - level) / 20.0))
        return gains, snrs

    def _babble_sources(self, rng: np.random.Generator, prompts: list[str]) -> set[int]:
        """Which ``sfxbg`` sources are babble (while enough speech clips are left for the talkers)."""
        cfg = self.config
        spare = len(self.by_role.get("speech", [])) - prompts.count("speech")
        babble = set()
        for s, prompt in enumerate(prompts):
            if prompt == "sfxbg" and rng.random() < cfg.babble_probability and spare >= cfg.babble_talkers[0]:
                babble.add(s)
                spare -= cfg.babble_talkers[0]
        return babble

    def _pick_talkers(self, rng: np.random.Generator, clips: list[int], babble: set[int]) -> dict[int, list[int]]:
        cfg, used, talkers = self.config, set(clips), {}
        for s in sorted(babble):
            free = [c for c in self.by_role["speech"] if c not in used]
            count = min(int(rng.integers(cfg.babble_talkers[0], cfg.babble_talkers[1] + 1)), len(free))
            talkers[s] = [free[i] for i in sorted(rng.choice(len(free), count, replace=False))]
            used.update(talkers[s])
        return talkers

    def _babble(self, rng: np.random.Generator, talkers: list[int], n: int) -> np.ndarray:
        """Talkers at random windows, each at 0 dB loudness +- 3 dB, summed."""
        out = np.zeros(n, np.float32)
        for clip in talkers:
            audio = self.store.audio(clip)
            chunk = _window(audio, _offset(rng, len(audio), n), n)
            if np.any(chunk):
                gain_db = rng.uniform(-3.0, 3.0) - augment.loudness_db(chunk, self.config.sample_rate)
                out += chunk * np.float32(10.0 ** (gain_db / 20.0))
        return out

    def _pick_clips(self, rng: np.random.Generator, prompts: list[str], babble: set[int]) -> list[int]:
        clips: list[int | None] = [-1 if s in babble else None for s in range(len(prompts))]
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
                if prompt == "speech":
                    weights = np.array([self.weights[c] for c in free])
                    clips[s] = free[int(rng.choice(len(free), p=weights / weights.sum()))]
                else:
                    clips[s] = free[int(rng.integers(len(free)))]
        return [int(c) for c in clips]  # type: ignore[arg-type]

    def _chunks(
        self, rng: np.random.Generator, clips: list[int], n: int, pre: int = 0
    ) -> tuple[list[np.ndarray], list[int]]:
        """A random window of each clip (``pre`` samples more in front) and its offset.

        Clips of one song share the window.
        """
        offsets: dict[str | None, int] = {}
        chunks = []
        for clip in clips:
            if clip < 0:
                chunks.append(np.zeros(pre + n, np.float32))
                continue
            audio = self.store.audio(clip)
            song = self.store.rows[clip].song
            key = song if song is not None else f"clip{clip}"
            if key not in offsets:
                offsets[key] = _offset(rng, len(audio), n)
            chunks.append(_window(audio, offsets[key] - pre, pre + n))
        return chunks, [offsets[self.store.rows[c].song or f"clip{c}"] if c >= 0 else 0 for c in clips]


def _offset(rng: np.random.Generator, length: int, n: int) -> int:
    """A random window start: inside the clip when it is longer than ``n``, else anywhere it still overlaps fully."""
    return int(rng.integers(-max(n - length, 0), max(length - n, 0) + 1))


def _window(audio: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``audio[offset:offset + n]`` with zeros where the window leaves the clip (negative offset pads in front)."""
    out = np.zeros(n, np.float32)
    start, stop = max(offset, 0), min(offset + n, len(audio))
    if stop > start:
        out[start - offset : stop - offset] = audio[start:stop]
    return out
