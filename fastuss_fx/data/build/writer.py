"""``CorpusWriter``: gate, cut and write 48 kHz FLAC clips, keep the quota and the manifest rows."""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fastuss_fx.data.build.config import BuildConfig
from fastuss_fx.data.build.signal import SAMPLE_RATE, cut_points, gate_segments, peak_gain
from fastuss_fx.data.manifest import SPLITS, ManifestRow, split_for, write_manifest

logger = logging.getLogger(__name__)

K = TypeVar("K")


class Totals(dict[K, float]):
    """Running totals in seconds; a missing key reads as 0.0 and is not stored (a ``Counter`` of floats)."""

    def __missing__(self, key: K) -> float:
        return 0.0


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (at most 60 characters)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "x"


class CorpusWriter:
    """Writes ``<out>/<role>/<source>/<name>_NN.flac`` (int16) and collects ``ManifestRow`` s.

    Every clip belongs to a ``group`` (speaker, voice, song or original file; ``source:group``
    in the manifest) and its split is drawn by a hash of the group, so no group spans two
    splits; a ``config.holdout`` source goes wholly to ``holdout``. Each (source, role) pair may
    hold ``config.quota_minutes(source, role)`` minutes, shared by the splits: ``valid`` and
    ``test`` get their fractions of it but at least one clip each when one of their groups
    comes by; ``config.train_quota_minutes`` may give ``train`` more without changing them.
    ``full(role, source)`` tells a recipe to stop; ``full(role, source, split)`` to skip an item
    of a split that has enough.
    """

    def __init__(self, config: BuildConfig):
        self.config = config
        self.out = Path(config.out)
        self.rows: list[ManifestRow] = []
        self.seconds: Totals[tuple[str, str]] = Totals()
        self._split_seconds: Totals[tuple[str, str, str]] = Totals()
        self._names: Counter[str] = Counter()

    def fraction(self, source: str, split: str) -> float:
        """Share of the (source, role) quota that ``split`` may hold."""
        cfg = self.config
        if source in cfg.holdout:
            return 1.0 if split == "holdout" else 0.0
        return {
            "train": 1 - cfg.valid_fraction - cfg.test_fraction,
            "valid": cfg.valid_fraction,
            "test": cfg.test_fraction,
        }.get(split, 0.0)

    def full(self, role: str, source: str, split: str | None = None) -> bool:
        """Whether ``split`` (every split when ``None``) of (role, source) has its share of the quota."""
        if split is None:
            return all(self.full(role, source, s) for s in SPLITS)
        quota_s, fraction = 60.0 * self.config.quota_minutes(source, role), self.fraction(source, split)
        have = self._split_seconds[source, role, split]
        train_minutes = self.config.train_quota_minutes(source, role)
        if split == "train" and fraction > 0 and train_minutes is not None:
            return have >= 60.0 * train_minutes
        if split in ("train", "holdout"):
            return fraction == 0 or have >= quota_s * fraction
        return fraction == 0 or (have > 0 and have >= quota_s * fraction)

    @staticmethod
    def group_id(source: str, group: str) -> str:
        """The manifest's group: ``source:group`` (groups of different sources never collide)."""
        return f"{source}:{group}"

    def split(self, group: str, source: str) -> str:
        """``holdout`` for a held-out source, else ``train``/``valid``/``test`` by a hash of ``source:group``."""
        if source in self.config.holdout:
            return "holdout"
        return split_for(self.group_id(source, group), self.config.valid_fraction, self.config.test_fraction)

    def write(
        self,
        role: str,
        source: str,
        name: str,
        audio: np.ndarray,
        *,
        orig: str | Sequence[str],
        native_rate: int,
        licence: str,
        gain: float | None = None,
        song: str | None = None,
        split: str | None = None,
        group: str | None = None,
        rng: np.random.Generator | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ManifestRow:
        """Write one clip as is (no gate, no cut); ``gain`` defaults to a random peak of 0.45..0.9.

        ``group`` defaults to the first original file; ``split`` to the group's split.
        """
        from pedalboard.io import AudioFile

        origs = [orig] if isinstance(orig, str) else list(orig)
        group = origs[0] if group is None else group
        split = split or self.split(group, source)
        gain = peak_gain(audio, rng) if gain is None else gain
        audio = np.clip(np.asarray(audio, dtype=np.float32) * gain, -0.9, 0.9)
        stem = f"{role}/{slug(source)}/{slug(name)}"
        self._names[stem] += 1
        path = f"{stem}_{self._names[stem]:02d}.flac"
        (self.out / path).parent.mkdir(parents=True, exist_ok=True)
        with AudioFile(str(self.out / path), "w", SAMPLE_RATE, 1, bit_depth=16, quality=0) as f:  # fastest FLAC level
            f.write(audio[None])
        row = ManifestRow(
            path,
            role,
            split,
            licence,
            int(native_rate),
            round(len(audio) / SAMPLE_RATE, 3),
            song,
            source,
            {"orig": origs, **(extra or {})},
            self.group_id(source, group),
        )
        self.rows.append(row)
        self.seconds[source, role] += len(audio) / SAMPLE_RATE
        self._split_seconds[source, role, row.split] += len(audio) / SAMPLE_RATE
        return row

    def emit(
        self,
        role: str,
        source: str,
        name: str,
        audio: np.ndarray,
        rng: np.random.Generator,
        *,
        force: bool = False,
        **kwargs: Any,
    ) -> int:
        """Gate ``audio`` (48 kHz), cut it into clips and write them until the quota is full; returns the clip count."""
        cfg = self.config
        target = (max(cfg.clip_min_s, min(8.0, cfg.clip_max_s)), min(cfg.clip_max_s, max(16.0, cfg.clip_min_s)))
        written, orig = 0, kwargs["orig"]
        kwargs["group"] = kwargs.get("group") or (orig if isinstance(orig, str) else orig[0])
        split = kwargs["split"] = kwargs.get("split") or self.split(kwargs["group"], source)
        for start, stop in gate_segments(audio, rel_db=cfg.gate_db, max_silence_s=cfg.max_silence_s):
            for a, b in cut_points(stop - start, rng, min_s=cfg.clip_min_s, max_s=cfg.clip_max_s, target_s=target):
                if self.full(role, source, split) and not force:
                    return written
                self.write(role, source, name, audio[start + a : start + b], rng=rng, **kwargs)
                written += 1
        return written

    def absorb(self, other: CorpusWriter) -> None:
        """Take over the clips of ``other``, a writer of the same corpus that ran other sources."""
        if other.out != self.out:
            raise ValueError(f"cannot absorb clips of {other.out} into {self.out}: another corpus folder")
        shared = {source for source, _ in other.seconds} & {source for source, _ in self.seconds}
        if shared:
            raise ValueError(f"both writers hold clips of {', '.join(sorted(shared))}")
        self.rows += other.rows
        self.seconds.update(other.seconds)
        self._split_seconds.update(other._split_seconds)
        self._names.update(other._names)

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
