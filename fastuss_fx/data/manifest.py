"""Manifests of training clips (JSONL, the train-pack format) and a store of decoded clips.

One row per clip: ``path`` (relative to the manifest's folder), ``role`` (a prompt kind),
``licence``, ``native_rate`` (lowest rate of the original material), ``duration_s``,
``split`` (one of ``SPLITS``), ``song`` (shared by the aligned stems of one song, else ``None``),
``source`` and ``group`` (the unit that must not leak across splits: speaker, character, voice,
song or file; rows written before groups existed get their source). Other keys (``orig``,
``text``, ...) are kept in ``extra``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastuss_fx.atomic import atomic_path
from fastuss_fx.audio import resample
from fastuss_fx.io import decode_mono
from fastuss_fx.prompts import PROMPTS

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test", "holdout")
"""``valid`` picks checkpoints, ``test`` is only reported, ``holdout`` is a source never trained on
(real-world check)."""
SAMPLE_RATE = 48000


@dataclass(frozen=True)
class ManifestRow:
    """One clip of a corpus."""

    path: str
    role: str
    split: str = "train"
    licence: str = "unknown"
    native_rate: int = SAMPLE_RATE
    duration_s: float = 0.0
    song: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    group: str = ""

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.source or self.path)
        if self.role not in PROMPTS:
            raise ValueError(f"clip {self.path!r}: unknown role {self.role!r}; choose from {', '.join(PROMPTS)}")
        if self.split not in SPLITS:
            raise ValueError(f"clip {self.path!r}: unknown split {self.split!r}; choose from {', '.join(SPLITS)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestRow:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        missing = [k for k in ("path", "role") if k not in data]
        if missing:
            raise ValueError(f"manifest row lacks {missing}: {data!r}")
        kwargs = {k: v for k, v in data.items() if k in known}
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})


def split_for(key: str, valid_fraction: float = 0.05, test_fraction: float = 0.0) -> str:
    """Deterministic ``train``/``valid``/``test`` split by a hash of ``key`` (a row's group).

    A hash value ``u`` in [0, 1) goes to ``valid`` below ``valid_fraction``, to ``test`` below
    ``valid_fraction + test_fraction``, else to ``train``: every clip of one key shares a split.
    """
    if not (0 <= valid_fraction and 0 <= test_fraction and valid_fraction + test_fraction < 1):
        raise ValueError(
            f"need valid_fraction, test_fraction >= 0 and a sum < 1, got {valid_fraction!r} and {test_fraction!r}"
        )
    u = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") / 2**32
    return "valid" if u < valid_fraction else "test" if u < valid_fraction + test_fraction else "train"


def leaked_groups(rows: Iterable[ManifestRow]) -> dict[str, set[str]]:
    """Groups found in more than one split (``{group: splits}``); empty for a clean corpus."""
    splits: dict[str, set[str]] = {}
    for row in rows:
        splits.setdefault(row.group, set()).add(row.split)
    return {group: found for group, found in splits.items() if len(found) > 1}


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read a JSONL manifest; a folder means ``folder/manifest.jsonl``.

    Raises:
        FileNotFoundError: no manifest at ``path``.
        ValueError: a line is not JSON or not a valid row (the line number is given).
    """
    path = manifest_path(path)
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(ManifestRow.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError) as err:
            raise ValueError(f"{path}:{number}: {err}") from None
    if not rows:
        raise ValueError(f"{path}: the manifest lists no clips")
    return rows


def write_manifest(rows: Iterable[ManifestRow], path: str | Path) -> Path:
    """Write rows as JSONL (atomically: temp file + rename); returns the path written."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in rows))
    return path


def manifest_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/manifest.jsonl`` when ``path`` is a folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest at {path}")
    return path


def load_clip(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sample_rate`` (channels averaged, resampled if needed)."""
    audio, rate = decode_mono(path)
    if rate != sample_rate:
        audio = resample(audio[None], rate, sample_rate)[0]
    return np.ascontiguousarray(audio, dtype=np.float32)


CACHE_MODES = ("int16", "float32", "mmap", "none")
"""How ``ClipStore`` keeps decoded clips: in memory (int16 or float32), memory-mapped int16 files, or not at all."""


def default_clip_cache(root: Path, sample_rate: int) -> Path:
    """Where ``cache="mmap"`` keeps decoded clips of the corpus in ``root``."""
    if os.access(root, os.W_OK):
        return root / f".clips-{sample_rate}"
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fastuss-fx" / "clips" / f"{digest}-{sample_rate}"


def clip_key(path: Path) -> str:
    """The name of a clip's decoded copy in the mmap cache: a hash of the audio file's bytes.

    Hashing the (compressed) file costs far less than decoding it (the 42 MB train pack: well
    under a second), and unlike the path, size or modification time it changes whenever the audio
    does, so a rebuilt corpus never reads the clips of the one before.
    """
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_stale_copies(current: Path, clip_name: str) -> None:
    """Delete the cached copies of a clip other than ``current`` (older audio at the same path;
    also the unhashed ``<clip>.npy`` of caches written before ``clip_key``)."""
    stale = re.compile(re.escape(clip_name) + r"(\.[0-9a-f]{16})?\.npy")
    for other in current.parent.iterdir():
        if other != current and stale.fullmatch(other.name):
            other.unlink(missing_ok=True)  # a process still mapping it keeps its pages until it closes


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


class ClipStore:
    """Rows of a manifest plus their decoded audio, cached in memory on first use.

    ``cache="int16"`` halves the memory of ``"float32"`` (the 114-minute train pack is about
    0.65 GB as int16); ``"none"`` decodes on every access. Call ``preload()`` before forking
    data-loader workers so they share the decoded clips. ``cache="mmap"`` decodes each clip
    once into an int16 ``.npy`` file under ``cache_dir`` and memory-maps it: the clips then live
    in the page cache, shared by every process that reads the corpus (runs side by side), and
    later runs skip decoding. A cached clip is named by a hash of its audio file's bytes
    (``clip_key``), so a rebuilt corpus with new audio at the same paths decodes it anew (and the
    stale copy is removed). ``cache_dir`` defaults to ``ROOT/.clips-<rate>`` when the corpus
    folder is writable, else ``$XDG_CACHE_HOME/fastuss-fx/clips/<hash of ROOT>``.
    """

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        root: str | Path,
        *,
        sample_rate: int = SAMPLE_RATE,
        cache: str = "int16",
        cache_dir: str | Path | None = None,
    ):
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {', '.join(map(repr, CACHE_MODES))}, got {cache!r}")
        self.rows = list(rows)
        self.root = Path(root)
        self.sample_rate = sample_rate
        self.cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_clip_cache(self.root, sample_rate)
        self._audio: dict[int, np.ndarray] = {}

    @classmethod
    def from_manifest(cls, path: str | Path, **kwargs: Any) -> ClipStore:
        path = manifest_path(path)
        return cls(read_manifest(path), path.parent, **kwargs)

    def __len__(self) -> int:
        return len(self.rows)

    def audio(self, index: int) -> np.ndarray:
        """Mono float32 audio of clip ``index``."""
        cached = self._audio.get(index)
        if cached is None:
            if self.cache == "mmap":
                cached = self._mapped(index)
            else:
                cached = load_clip(self.root / self.rows[index].path, self.sample_rate)
            if self.cache == "int16":
                cached = _to_int16(cached)
            if self.cache != "none":
                self._audio[index] = cached
        if cached.dtype == np.int16:
            return cached.astype(np.float32) / 32767.0
        return cached

    def _mapped(self, index: int) -> np.ndarray:
        """Clip ``index`` as a read-only int16 memory map, decoded into the cache folder on first use."""
        source = self.root / self.rows[index].path
        path = self.cache_dir / f"{self.rows[index].path}.{clip_key(source)}.npy"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = _to_int16(load_clip(source, self.sample_rate))
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, audio)
            _remove_stale_copies(path, source.name)
        return np.load(path, mmap_mode="r")

    def preload(self, indices: Iterable[int] | None = None, progress: bool = False) -> None:
        """Decode clips now (all by default)."""
        from tqdm import tqdm

        indices = list(range(len(self.rows)) if indices is None else indices)
        for index in tqdm(indices, desc="decoding clips", unit="clip", disable=not progress):
            self.audio(index)

    def subset(self, split: str) -> list[int]:
        """Indices of the rows in ``split``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        return [i for i, row in enumerate(self.rows) if row.split == split]
