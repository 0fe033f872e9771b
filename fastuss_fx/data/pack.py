"""Pack a corpus into a compact, self-contained training subset (Ogg Opus + manifest).

A GPU machine may have no network and little room for what travels with the code, so the
pack holds every ``valid`` clip and as many ``train`` clips (in a seeded random order,
the stems of one song together) as fit in ``max_mib``.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from fastuss_fx.data.manifest import SAMPLE_RATE, ManifestRow, load_clip, manifest_path, read_manifest, write_manifest

logger = logging.getLogger(__name__)


def _groups(rows: list[ManifestRow], seed: int) -> list[list[ManifestRow]]:
    """Valid clips first, then train clips shuffled; the stems of one song stay one group."""
    by_key: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        by_key[f"song:{row.song}" if row.song else f"clip:{row.path}"].append(row)
    groups = list(by_key.values())
    valid = [g for g in groups if g[0].split == "valid"]
    train = [g for g in groups if g[0].split == "train"]
    random.Random(seed).shuffle(train)
    return valid + train


def pack_corpus(source: str | Path, out: str | Path, *, max_mib: float = 50.0, compression_level: float = 0.8, seed: int = 0, progress: bool = False) -> Path:
    """Write ``out/manifest.jsonl`` and Opus files for a subset of ``source`` of at most ``max_mib``.

    ``compression_level`` is libsndfile's (0 = largest, 1 = smallest; 0.8 is about 48-64 kb/s).
    Returns the new manifest's path.

    Raises:
        ValueError: ``max_mib`` too small even for the valid clips.
    """
    import soundfile as sf

    source_manifest, out = manifest_path(source), Path(out)
    rows, budget, used = read_manifest(source_manifest), max_mib * 2**20, 0
    packed: list[ManifestRow] = []
    groups = _groups(rows, seed)
    for group in tqdm(groups, desc="packing", unit="clip", disable=not progress):
        written = []
        for row in group:
            audio = load_clip(source_manifest.parent / row.path, SAMPLE_RATE)
            target = out / Path(row.path).with_suffix(".opus")
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=compression_level)
            written.append((replace(row, path=target.relative_to(out).as_posix(), duration_s=round(len(audio) / SAMPLE_RATE, 3)), target))
        size = sum(path.stat().st_size for _, path in written)
        if used + size > budget:
            for _, path in written:
                path.unlink()
            if group[0].split == "valid":
                raise ValueError(f"max_mib={max_mib} is too small: the valid clips alone need more")
            break
        used += size
        packed += [row for row, _ in written]
    logger.info("packed %d of %d clips, %.1f MiB", len(packed), len(rows), used / 2**20)
    return write_manifest(packed, out / "manifest.jsonl")
