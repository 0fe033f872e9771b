"""Pack a corpus into a compact, self-contained training subset (Ogg Opus + manifest).

A GPU machine may have no network and little room for what travels with the code, so the
pack holds a slice of each split (``SPLIT_SHARES`` of the budget for ``valid``, ``test`` and
``holdout``, the rest for ``train``). Within a split, clips are taken in a seeded order that
keeps the kinds balanced (each role, and MIDI songs as one kind, gets time in proportion to
``KIND_WEIGHTS``; within a kind, the least-packed source goes next), and the stems of one
song stay together; generated sources count ``SYNTHETIC_WEIGHT`` against recorded ones. Splits
and groups are kept as they are, so nothing leaks.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from fastuss_fx.data.manifest import (
    SAMPLE_RATE,
    SPLITS,
    ManifestRow,
    load_clip,
    manifest_path,
    read_manifest,
    write_manifest,
)
from fastuss_fx.data.stats import is_synthetic

logger = logging.getLogger(__name__)

SPLIT_SHARES = {"valid": 0.1, "test": 0.1, "holdout": 0.03}
"""Share of the size budget for each held-out split; ``train`` gets the rest."""
KIND_WEIGHTS = {"speech": 3.0}
"""Packed time per kind is balanced in proportion to these weights (default 1): speech is in most tasks."""
SYNTHETIC_WEIGHT = 0.3
"""Weight of a generated source (TTS) against a recorded one (1) within a kind: keeps TTS a small share of speech."""


@dataclass
class _Unit:
    rows: list[ManifestRow]

    @property
    def kind(self) -> str:
        return "song" if self.rows[0].song else self.rows[0].role

    @property
    def source(self) -> str:
        return self.rows[0].source

    @property
    def weight(self) -> float:
        return SYNTHETIC_WEIGHT if is_synthetic(self.rows[0]) else 1.0

    @property
    def seconds(self) -> float:
        return max(r.duration_s for r in self.rows)


def _units(rows: list[ManifestRow]) -> dict[str, list[_Unit]]:
    """Packing units per split: one clip, or all stems of one song."""
    by_key: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        by_key[f"song:{row.song}" if row.song else f"clip:{row.path}"].append(row)
    units: dict[str, list[_Unit]] = defaultdict(list)
    for group in by_key.values():
        units[group[0].split].append(_Unit(group))
    return units


def balanced_order(units: list[_Unit], seed: int) -> list[_Unit]:
    """``units`` in the order they are packed: the kind with the least weighted time so far goes next,
    and within it the source with the least weighted time; each source's units in a seeded random order."""
    rng = random.Random(seed)
    queues: dict[str, dict[str, list[_Unit]]] = defaultdict(lambda: defaultdict(list))
    for unit in sorted(units, key=lambda u: u.rows[0].path):
        queues[unit.kind][unit.source].append(unit)
    for sources in queues.values():
        for queue in sources.values():
            rng.shuffle(queue)
    kind_s: dict[str, float] = defaultdict(float)
    source_s: dict[tuple[str, str], float] = defaultdict(float)
    order = []
    while queues:
        kind = min(queues, key=lambda k: (kind_s[k] / KIND_WEIGHTS.get(k, 1.0), k))
        source = min(queues[kind], key=lambda s: (source_s[kind, s] / queues[kind][s][0].weight, s))
        unit = queues[kind][source].pop()
        order.append(unit)
        kind_s[kind] += unit.seconds
        source_s[kind, source] += unit.seconds
        if not queues[kind][source]:
            del queues[kind][source]
            if not queues[kind]:
                del queues[kind]
    return order


def pack_corpus(
    source: str | Path,
    out: str | Path,
    *,
    max_mib: float = 50.0,
    compression_level: float = 0.8,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Write ``out/manifest.jsonl`` and Opus files for a subset of ``source``.

    At most ``max_mib`` (manifest included).

    ``compression_level`` is libsndfile's (0 = largest, 1 = smallest; 0.8 is about 56 kb/s).
    Returns the new manifest's path.

    Raises:
        ValueError: ``max_mib`` too small for a single clip of a split the corpus has.
    """
    import soundfile as sf

    source_manifest, out = manifest_path(source), Path(out)
    rows, budget, used = read_manifest(source_manifest), max_mib * 2**20, 0
    units = _units(rows)
    packed: list[ManifestRow] = []
    bar = tqdm(desc="packing", unit="clip", disable=not progress)
    for split in sorted(units, key=lambda s: (s == "train", SPLITS.index(s))):
        split_budget = budget - used if split == "train" else SPLIT_SHARES.get(split, 0.0) * budget
        split_used, count = 0, 0
        for unit in balanced_order(units[split], seed):
            written = []
            for row in unit.rows:
                audio = load_clip(source_manifest.parent / row.path, SAMPLE_RATE)
                target = out / Path(row.path).with_suffix(".opus")
                target.parent.mkdir(parents=True, exist_ok=True)
                sf.write(target, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=compression_level)
                written.append(
                    (
                        replace(
                            row, path=target.relative_to(out).as_posix(), duration_s=round(len(audio) / SAMPLE_RATE, 3)
                        ),
                        target,
                    )
                )
            size = sum(
                path.stat().st_size + len(json.dumps(row.to_dict(), ensure_ascii=False)) + 1 for row, path in written
            )
            if split_used + size > split_budget:
                for _, path in written:
                    path.unlink()
                break
            split_used, count = split_used + size, count + 1
            packed += [row for row, _ in written]
            bar.update(len(written))
        if count == 0:
            raise ValueError(f"max_mib={max_mib} is too small: no room for a single {split} clip")
        used += split_used
        logger.info("pack: %s %d units, %.1f MiB", split, count, split_used / 2**20)
    bar.close()
    logger.info("packed %d of %d clips, %.1f MiB", len(packed), len(rows), used / 2**20)
    return write_manifest(sorted(packed, key=lambda r: r.path), out / "manifest.jsonl")
