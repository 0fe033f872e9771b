"""``BuildConfig``: every knob of ``fastuss data build`` in one dataclass."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BuildConfig:
    """Settings of one corpus build; the CLI's defaults are these defaults.

    Attributes:
        out: corpus folder (clips under ``<role>/<source>/`` and ``manifest.jsonl``).
        sources: recipe names to run; empty means all registered recipes.
        max_minutes_per_source: stop a source once each of its roles has this many minutes.
        quotas: overrides of that quota in minutes, keyed ``"source:role"``, ``"source"`` or
            ``"role"`` (looked up in that order), e.g. ``{"speech": 600, "espeak-ng": 10}``.
        train_quotas: minutes of the ``train`` split alone, keyed like ``quotas``, in place of its
            share of the quota: more training clips of a (source, role) while its ``valid`` and
            ``test`` clips stay those of its ``quota_minutes`` (so scores on them stay comparable
            with corpora built before).
        seed: every random choice is a function of ``seed`` and a per-item key.
        pkgs: folder of unpacked Debian packages (``<pkgs>/<package>/``), filled on demand.
        fetch: allow ``apt-get download`` of missing packages (else use only what ``pkgs`` holds).
        groove_dir: the Groove MIDI Dataset folder (``info.csv`` + ``drummerN/``).
        valid_fraction, test_fraction: share of groups (speaker, voice, song or file; by a hash
            of the group) in the ``valid`` and ``test`` splits; the rest is ``train``.
        holdout: sources written entirely to the ``holdout`` split (never trained on).
        clip_min_s, clip_max_s: length limits of a written clip.
        gate_db: a 50 ms frame this far below the loudest frame counts as silence.
        max_silence_s: longer silences are cut out; shorter pauses stay.
        max_song_s: MIDI songs are rendered up to this many seconds.
        jobs: recipes run side by side in this many processes. Each recipe draws from its own
            random streams and writes its own files, so the corpus is the same for any ``jobs``.
    """

    out: Path
    sources: tuple[str, ...] = ()
    max_minutes_per_source: float = 10.0
    quotas: dict[str, float] = field(default_factory=dict)
    train_quotas: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    pkgs: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "fastuss-pkgs")
    fetch: bool = True
    groove_dir: Path = Path("../shared/data/groove-midi")
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    holdout: tuple[str, ...] = ("drascula",)
    clip_min_s: float = 4.0
    clip_max_s: float = 20.0
    gate_db: float = 50.0
    max_silence_s: float = 1.0
    max_song_s: float = 120.0
    jobs: int = 1

    def __post_init__(self) -> None:
        self.out, self.pkgs, self.groove_dir = Path(self.out), Path(self.pkgs), Path(self.groove_dir)
        self.sources, self.holdout = tuple(self.sources), tuple(self.holdout)
        self.quotas, self.train_quotas = dict(self.quotas), dict(self.train_quotas)
        if not self.max_minutes_per_source > 0:
            raise ValueError(f"max_minutes_per_source must be > 0, got {self.max_minutes_per_source!r}")
        if not (0 <= self.valid_fraction and 0 <= self.test_fraction and self.valid_fraction + self.test_fraction < 1):
            raise ValueError(
                "need valid_fraction, test_fraction >= 0 and a sum < 1, "
                f"got {self.valid_fraction!r} and {self.test_fraction!r}"
            )
        if not 0 < self.clip_min_s <= self.clip_max_s:
            raise ValueError(f"need 0 < clip_min_s <= clip_max_s, got {self.clip_min_s!r} and {self.clip_max_s!r}")
        if not (isinstance(self.jobs, int) and self.jobs >= 1):
            raise ValueError(f"jobs must be a whole number >= 1, got {self.jobs!r}")
        bad = {k: v for k, v in {**self.quotas, **self.train_quotas}.items() if not v > 0}
        if bad:
            raise ValueError(f"quotas must be > 0 minutes, got {bad}")

    def quota_minutes(self, source: str, role: str) -> float:
        """Minutes (source, role) may hold.

        The first of ``quotas[source:role]``, ``[source]``, ``[role]``, else the default.
        """
        found = _lookup(self.quotas, source, role)
        return self.max_minutes_per_source if found is None else found

    def train_quota_minutes(self, source: str, role: str) -> float | None:
        """Minutes the ``train`` split of (source, role) may hold, if ``train_quotas`` says (else None)."""
        return _lookup(self.train_quotas, source, role)


def _lookup(quotas: dict[str, float], source: str, role: str) -> float | None:
    """``quotas[source:role]``, ``[source]`` or ``[role]``, the first that is set."""
    for key in (f"{source}:{role}", source, role):
        if key in quotas:
            return float(quotas[key])
    return None
