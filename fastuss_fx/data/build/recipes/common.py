"""What every recipe shares: the ``Recipe`` record, the ``BuildContext`` handed to it, and the
two ways of turning files into clips (windows of long files; sequences of short ones)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastuss_fx.data.build.config import BuildConfig
from fastuss_fx.data.build.packages import PackageStore
from fastuss_fx.data.build.signal import SAMPLE_RATE, to_48k, trim
from fastuss_fx.data.build.writer import CorpusWriter
from fastuss_fx.io import audio_duration, decode_mono

logger = logging.getLogger(__name__)


class SourceUnavailable(RuntimeError):
    """A recipe cannot run here (a package, tool, voice or folder is missing); the build skips it."""


@dataclass
class BuildContext:
    """What a recipe may use: the settings, the clip writer and the package store."""

    config: BuildConfig
    writer: CorpusWriter
    packages: PackageStore
    tmp: Path

    def rng(self, *key: object) -> np.random.Generator:
        """A generator seeded by ``config.seed`` and ``key``: the same item gets the same draws in any build order."""
        digest = hashlib.sha1("|".join(map(str, (self.config.seed, *key))).encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Recipe:
    """One source of the corpus.

    Attributes:
        name: the source name (``--sources``, manifest ``source``).
        roles: prompt kinds it writes.
        licence: licence of the material, for the manifest and the model card.
        run: writes the clips through ``ctx.writer``.
        packages: Debian packages it reads, fetched into ``--pkgs``; all are needed.
        tools: executables it runs; they must be on ``PATH`` (``apt-get install`` them).
    """

    name: str
    roles: tuple[str, ...]
    licence: str
    run: Callable[[BuildContext], None]
    packages: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    note: str = ""


@dataclass
class _Sequence:
    parts: list[np.ndarray] = field(default_factory=list)
    origs: list[str] = field(default_factory=list)
    rates: list[int] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(len(p) for p in self.parts)


def long_windows(
    ctx: BuildContext,
    role: str,
    source: str,
    files: Sequence[tuple[Path, str]],
    licence: str,
    *,
    window_s: tuple[float, float] = (11.0, 15.0),
    per_file: int = 3,
    skip_start_s: float = 3.0,
    min_s: float = 4.0,
    max_s: float = float("inf"),
) -> None:
    """Random windows of long files (music, ambience): up to ``per_file`` rounds over the files in random order."""
    writer, seen = ctx.writer, set()
    order = list(ctx.rng(source, role, "order").permutation(len(files)))
    for round_ in range(per_file):
        for index in order:
            if writer.full(role, source):
                return
            path, orig = files[index]
            if writer.full(role, source, writer.split(orig, source)):
                continue
            if round_ == 0:
                digest = hashlib.md5(path.read_bytes()).hexdigest()  # some packages ship a track twice
                if digest in seen:
                    continue
                seen.add(digest)
            try:
                duration = audio_duration(path)
            except Exception as err:  # an unreadable file is skipped, not fatal
                logger.info("%s: skip %s (%s)", source, orig, err)
                continue
            rng = ctx.rng(source, orig, round_)
            window = rng.uniform(*window_s)
            if not min_s <= duration <= max_s or (round_ > 0 and duration < 3 * window):
                continue
            low = min(skip_start_s, max(duration - window, 0.0))
            audio, rate = decode_mono(path, rng.uniform(low, max(duration - window, low)), window)
            writer.emit(role, source, path.stem, to_48k(audio, rate), rng, orig=orig, native_rate=rate, licence=licence)


def _content_key(item: Path | bytes) -> str:
    return hashlib.md5(item if isinstance(item, (bytes, bytearray)) else item.read_bytes()).hexdigest()


def sequences(
    ctx: BuildContext,
    role: str,
    source: str,
    files: Sequence[tuple[Path | bytes, str]],
    licence: str | Callable[[str], str],
    *,
    group: Callable[[str], str] = lambda orig: "all",
    split_by: str = "group",
    gap_s: tuple[float, float] = (0.12, 0.6),
    target_s: tuple[float, float] = (5.0, 12.0),
    min_rate: int = 0,
    min_s: float = 0.05,
    gain_range: tuple[float, float] = (1.0, 1.0),
    reader: Callable[[Path | bytes], tuple[np.ndarray, int]] = decode_mono,
) -> None:
    """Short files (utterances, one-shots) trimmed and strung together with gaps shorter than the gate's.

    ``files`` holds ``(item, orig)``: a path or the bytes of a file, which ``reader`` decodes.
    Files of one ``group`` (speaker, language, kit) and one split share a clip; a file longer
    than ``target_s[0]`` becomes clips on its own. The split is drawn by the group
    (``split_by="group"``: speakers never leak across splits) or by each original file
    (``"file"``: effects, where the file is the unit). Identical files are used once; files
    shorter than ``min_s`` after trimming are skipped.
    """
    if split_by not in ("group", "file"):
        raise ValueError(f"split_by must be 'group' or 'file', got {split_by!r}")
    writer, rng = ctx.writer, ctx.rng(source, role, "sequences")
    licence_of = licence if callable(licence) else (lambda orig: licence)
    open_: dict[tuple[str, str], _Sequence] = {}
    targets: dict[tuple[str, str], float] = {}
    seen: set[str] = set()

    def unit(orig: str) -> str:
        return group(orig) if split_by == "group" else orig

    def flush(key: tuple[str, str], force: bool = False) -> None:
        seq = open_.pop(key)
        writer.emit(
            role,
            source,
            key[0],
            np.concatenate(seq.parts),
            rng,
            orig=seq.origs,
            native_rate=min(seq.rates),
            licence=licence_of(seq.origs[0]),
            split=key[1],
            group=unit(seq.origs[0]),
            force=force,
        )

    for index in rng.permutation(len(files)):
        if writer.full(role, source):
            break
        item, orig = files[index]
        split = writer.split(unit(orig), source)
        if writer.full(role, source, split):
            continue
        try:
            content = _content_key(item)
            if content in seen:
                continue
            seen.add(content)
            audio, rate = reader(item)
        except Exception as err:
            logger.info("%s: skip %s (%s)", source, orig, err)
            continue
        if rate < min_rate or len(audio) < 0.05 * rate:
            continue
        audio = trim(to_48k(audio, rate)) * rng.uniform(*gain_range)
        if len(audio) < max(min_s, 0.05) * SAMPLE_RATE:
            continue
        if len(audio) >= target_s[0] * SAMPLE_RATE:
            writer.emit(
                role,
                source,
                Path(orig).stem,
                audio,
                rng,
                orig=orig,
                native_rate=rate,
                licence=licence_of(orig),
                split=split,
                group=unit(orig),
            )
            continue
        key = (group(orig), split)
        seq = open_.setdefault(key, _Sequence())
        if seq.parts and seq.samples + len(audio) > writer.config.clip_max_s * SAMPLE_RATE:
            flush(key)
            seq = open_.setdefault(key, _Sequence())
        if seq.parts:
            seq.parts.append(np.zeros(int(rng.uniform(*gap_s) * SAMPLE_RATE), np.float32))
        seq.parts.append(audio.astype(np.float32))
        seq.origs.append(orig)
        seq.rates.append(rate)
        if seq.samples >= targets.setdefault(key, rng.uniform(*target_s)) * SAMPLE_RATE:
            flush(key)
            targets.pop(key)
    for key in sorted(open_):  # the small splits fill slowly: keep their leftovers even past the quota
        if open_[key].samples < writer.config.clip_min_s * SAMPLE_RATE:
            continue
        if key[1] != "train":
            flush(key, force=True)
        elif not writer.full(role, source, "train"):
            flush(key)
