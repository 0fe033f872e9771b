"""Manifests of training clips (JSONL, the train-pack format) and a store of decoded clips.

One row per clip: ``path`` (relative to the manifest's folder), ``role`` (a prompt kind),
``licence``, ``native_rate`` (lowest rate of the original material), ``duration_s``,
``split`` (``train``/``valid``) and ``song`` (shared by the aligned stems of one song, else
``None``). Keys the pack adds (``source``, ``orig``, ``text``, ...) are kept in ``extra``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastuss_fx.prompts import PROMPTS

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid")
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

    def __post_init__(self) -> None:
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


def split_for(path: str, valid_fraction: float = 0.05) -> str:
    """Deterministic train/valid split by a hash of the (original) file path."""
    digest = hashlib.sha1(path.encode()).digest()
    return "valid" if int.from_bytes(digest[:4], "big") / 2**32 < valid_fraction else "train"


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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in rows))
    tmp.replace(path)
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
    """Decode an audio file to mono float32 at ``sample_rate`` (channels averaged, resampled if needed).

    Uses ``soundfile`` (the ``train`` extra; it reads Ogg Opus) when installed, else
    ``pedalboard.io`` (WAV, FLAC, MP3, Ogg Vorbis, but no Opus).
    """
    try:
        import soundfile as sf
    except ImportError:
        from pedalboard.io import AudioFile

        with AudioFile(str(path)) as f:
            audio, rate = f.read(f.frames).mean(axis=0), int(f.samplerate)
    else:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
    if rate != sample_rate:
        audio = _resample(audio, rate, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _resample(audio: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    from pedalboard.io import StreamResampler

    resampler = StreamResampler(rate, sample_rate, 1)
    out = np.concatenate([resampler.process(audio[None]), resampler.process(None)], axis=1)[0]
    return out.astype(np.float32)


class ClipStore:
    """Rows of a manifest plus their decoded audio, cached in memory on first use.

    ``cache="int16"`` halves the memory of ``"float32"`` (the 114-minute train pack is about
    0.65 GB as int16); ``"none"`` decodes on every access. Call ``preload()`` before forking
    data-loader workers so they share the decoded clips.
    """

    def __init__(self, rows: Sequence[ManifestRow], root: str | Path, *, sample_rate: int = SAMPLE_RATE, cache: str = "int16"):
        if cache not in ("int16", "float32", "none"):
            raise ValueError(f"cache must be 'int16', 'float32' or 'none', got {cache!r}")
        self.rows = list(rows)
        self.root = Path(root)
        self.sample_rate = sample_rate
        self.cache = cache
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
            cached = load_clip(self.root / self.rows[index].path, self.sample_rate)
            if self.cache == "int16":
                cached = np.round(np.clip(cached, -1.0, 1.0) * 32767.0).astype(np.int16)
            if self.cache != "none":
                self._audio[index] = cached
        if cached.dtype == np.int16:
            return cached.astype(np.float32) / 32767.0
        return cached

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
