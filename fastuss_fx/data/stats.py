"""Hours of a corpus per role, source and split, and the real-vs-synthetic share of its speech.

``corpus_stats(read_manifest(path)).table()`` is what ``fastuss data stats`` prints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from fastuss_fx.data.manifest import SPLITS, ManifestRow, leaked_groups

SYNTHETIC_SOURCES = frozenset(
    {
        "espeak-ng",
        "flite",
        "festival",
        "festival-singing",
        "generated-noise",
        "synthetic",
        "tts-espeak-ng",
        "tts-flite",
        "tts-festival",
        "sing-festival",
    }
)
"""Generated sources (the corpus builder's and the starter pack's names)."""


def is_synthetic(row: ManifestRow) -> bool:
    """Whether a clip was generated (TTS, singing synthesis, noise) rather than recorded."""
    return row.source in SYNTHETIC_SOURCES or "generator" in row.extra


@dataclass
class CorpusStats:
    """Hours per (role, split), per (role, source, split); groups per source; leaked groups."""

    hours: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    source_hours: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    groups: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    licences: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    rates: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    synthetic: set[str] = field(default_factory=set)
    clips: int = 0
    leaked: dict[str, set[str]] = field(default_factory=dict)

    def role_hours(self, role: str, split: str | None = None) -> float:
        return sum(h for (r, s), h in self.hours.items() if r == role and split in (None, s))

    def speech_hours(self, *, synthetic: bool, splits: Iterable[str] = SPLITS) -> float:
        """Speech hours from generated (``synthetic=True``) or recorded sources within ``splits``."""
        splits = set(splits)
        return sum(
            h
            for (role, source, split), h in self.source_hours.items()
            if role == "speech" and split in splits and (source in self.synthetic) == synthetic
        )

    def real_speech_sources(self, splits: Iterable[str] = SPLITS) -> list[str]:
        splits = set(splits)
        return sorted(
            {
                source
                for (role, source, split), h in self.source_hours.items()
                if role == "speech" and split in splits and h > 0 and source not in self.synthetic
            }
        )

    def table(self) -> str:
        """The printout: role × split hours, then per source, then the speech summary."""
        roles = sorted({r for r, _ in self.hours})
        head = f"{'role':<10}" + "".join(f"{s:>9}" for s in SPLITS) + f"{'total h':>9}"
        lines = [head]
        for role in roles:
            lines.append(
                f"{role:<10}"
                + "".join(f"{self.hours.get((role, s), 0.0):9.2f}" for s in SPLITS)
                + f"{self.role_hours(role):9.2f}"
            )
        lines.append(
            f"{'total':<10}"
            + "".join(f"{sum(h for (_, s2), h in self.hours.items() if s2 == s):9.2f}" for s in SPLITS)
            + f"{sum(self.hours.values()):9.2f}  {self.clips} clips"
        )
        lines += [
            "",
            f"{'role':<8} {'source':<30}" + "".join(f"{s:>8}" for s in SPLITS) + f"{'groups':>7}  rate  licence",
        ]
        for role, source in sorted({(r, src) for r, src, _ in self.source_hours}):
            hours = "".join(f"{self.source_hours.get((role, source, s), 0.0):8.2f}" for s in SPLITS)
            rates = sorted(self.rates[role, source])
            rate = f"{rates[0]}" if len(rates) == 1 else f"{rates[0]}-{rates[-1]}"
            kind = " (synthetic)" if source in self.synthetic else ""
            lines.append(
                f"{role:<8} {source + kind:<30}{hours}{len(self.groups[role, source]):7d}  {rate}  "
                f"{'; '.join(sorted(self.licences[role, source]))}"
            )
        real, synth = self.speech_hours(synthetic=False), self.speech_hours(synthetic=True)
        trainable = [s for s in SPLITS if s != "holdout"]
        real_tv = self.speech_hours(synthetic=False, splits=trainable)
        share = 100 * synth / (real + synth) if real + synth else 0.0
        lines += [
            "",
            f"speech: real {real:.2f} h from {len(self.real_speech_sources())} sources "
            f"({real_tv:.2f} h from {len(self.real_speech_sources(trainable))} sources outside holdout), "
            f"synthetic {synth:.2f} h = {share:.1f} % of speech time",
        ]
        holdout = sorted({src for (_, src, s), h in self.source_hours.items() if s == "holdout" and h > 0})
        lines.append(f"holdout sources: {', '.join(holdout) or 'none'}")
        lines.append(
            f"groups in more than one split: {len(self.leaked)}"
            + (f" (e.g. {sorted(self.leaked)[:3]})" if self.leaked else "")
        )
        return "\n".join(lines)


def corpus_stats(rows: Iterable[ManifestRow]) -> CorpusStats:
    """Collect ``CorpusStats`` over manifest rows."""
    stats, rows = CorpusStats(), list(rows)
    for row in rows:
        hours = row.duration_s / 3600
        stats.hours[row.role, row.split] += hours
        stats.source_hours[row.role, row.source or "?", row.split] += hours
        stats.groups[row.role, row.source or "?"].add(row.group)
        stats.licences[row.role, row.source or "?"].add(row.licence)
        stats.rates[row.role, row.source or "?"].add(row.native_rate)
        if is_synthetic(row):
            stats.synthetic.add(row.source or "?")
        stats.clips += 1
    stats.leaked = leaked_groups(rows)
    return stats
