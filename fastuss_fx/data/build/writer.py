"""``CorpusWriter``: gate, cut and write 48 kHz FLAC clips, keep the quota and the manifest rows."""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastuss_fx.data.build.config import BuildConfig
from fastuss_fx.data.build.signal import SAMPLE_RATE, cut_points, gate_segments, peak_gain
from fastuss_fx.data.manifest import ManifestRow, split_for, write_manifest

logger = logging.getLogger(__name__)


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (at most 60 characters)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "x"


class CorpusWriter:
    """Writes ``<out>/<role>/<source>/<name>_NN.flac`` (int16) and collects ``ManifestRow`` s.

    Each (source, role) pair may hold ``config.max_minutes_per_source`` minutes, shared by the
    splits: ``valid`` gets ``valid_fraction`` of it but at least one clip, so even a small build
    has validation clips of every role. ``full(role, source)`` tells a recipe to stop;
    ``full(role, source, split)`` to skip an item of a split that has enough.
    """

    def __init__(self, config: BuildConfig):
        self.config = config
        self.out = Path(config.out)
        self.rows: list[ManifestRow] = []
        self.seconds: Counter[tuple[str, str]] = Counter()
        self._split_seconds: Counter[tuple[str, str, str]] = Counter()
        self._names: Counter[str] = Counter()

    def full(self, role: str, source: str, split: str | None = None) -> bool:
        """Whether ``split`` (both splits when ``None``) of (role, source) has its share of the quota."""
        if split is None:
            return self.full(role, source, "train") and self.full(role, source, "valid")
        quota_s, fraction = 60.0 * self.config.max_minutes_per_source, self.config.valid_fraction
        have = self._split_seconds[source, role, split]
        return have >= quota_s * (1 - fraction) if split == "train" else (have > 0 and have >= quota_s * fraction) or fraction == 0

    def split(self, orig: str) -> str:
        """``train``/``valid`` by a hash of the original file (or song / generator id)."""
        return split_for(orig, self.config.valid_fraction)

    def write(self, role: str, source: str, name: str, audio: np.ndarray, *, orig: str | Sequence[str], native_rate: int,
              licence: str, gain: float | None = None, song: str | None = None, split: str | None = None,
              rng: np.random.Generator | None = None, extra: dict[str, Any] | None = None) -> ManifestRow:
        """Write one clip as is (no gate, no cut); ``gain`` defaults to a random peak of 0.45..0.9."""
        from pedalboard.io import AudioFile

        origs = [orig] if isinstance(orig, str) else list(orig)
        gain = peak_gain(audio, rng) if gain is None else gain
        audio = np.clip(np.asarray(audio, dtype=np.float32) * gain, -0.9, 0.9)
        stem = f"{role}/{slug(source)}/{slug(name)}"
        self._names[stem] += 1
        path = f"{stem}_{self._names[stem]:02d}.flac"
        (self.out / path).parent.mkdir(parents=True, exist_ok=True)
        with AudioFile(str(self.out / path), "w", SAMPLE_RATE, 1, bit_depth=16) as f:
            f.write(audio[None])
        row = ManifestRow(path, role, split or self.split(origs[0]), licence, int(native_rate), round(len(audio) / SAMPLE_RATE, 3),
                          song, source, {"orig": origs, **(extra or {})})
        self.rows.append(row)
        self.seconds[source, role] += len(audio) / SAMPLE_RATE
        self._split_seconds[source, role, row.split] += len(audio) / SAMPLE_RATE
        return row

    def emit(self, role: str, source: str, name: str, audio: np.ndarray, rng: np.random.Generator, *, force: bool = False,
             **kwargs: Any) -> int:
        """Gate ``audio`` (48 kHz), cut it into clips and write them until the quota is full; returns the clip count."""
        cfg = self.config
        target = (max(cfg.clip_min_s, min(8.0, cfg.clip_max_s)), min(cfg.clip_max_s, max(16.0, cfg.clip_min_s)))
        written, orig = 0, kwargs["orig"]
        split = kwargs.setdefault("split", None) or self.split(orig if isinstance(orig, str) else orig[0])
        kwargs["split"] = split
        for start, stop in gate_segments(audio, rel_db=cfg.gate_db, max_silence_s=cfg.max_silence_s):
            for a, b in cut_points(stop - start, rng, min_s=cfg.clip_min_s, max_s=cfg.clip_max_s, target_s=target):
                if self.full(role, source, split) and not force:
                    return written
                self.write(role, source, name, audio[start + a:start + b], rng=rng, **kwargs)
                written += 1
        return written

    def summary(self) -> dict[str, dict[str, float]]:
        """Minutes per role and source: ``{role: {source: minutes}}``."""
        table: dict[str, dict[str, float]] = defaultdict(dict)
        for (source, role), seconds in sorted(self.seconds.items()):
            table[role][source] = seconds / 60
        return dict(table)

    def finish(self) -> Path:
        """Write ``manifest.jsonl`` (sorted by path) and return its path."""
        self.out.mkdir(parents=True, exist_ok=True)
        return write_manifest(sorted(self.rows, key=lambda r: r.path), self.out / "manifest.jsonl")
