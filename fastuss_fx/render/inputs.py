"""Expand ``fastuss render`` inputs into files and the relative paths their outputs mirror."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from fastuss_fx.io import READ_SUFFIXES

MAGIC = ("*", "?", "[")


def _is_audio(path: Path, exclude: Path | None) -> bool:
    if not path.is_file() or path.suffix.lower() not in READ_SUFFIXES or path.name.startswith("."):
        return False  # hidden files include our own half-written temporaries
    return exclude is None or not path.resolve().is_relative_to(exclude)


def _glob_base(pattern: str) -> Path:
    """The folder a glob pattern is rooted at: its components before the first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if any(c in part for c in MAGIC):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def expand_inputs(paths: list[str | Path], exclude: str | Path | None = None) -> list[tuple[Path, Path]]:
    """``(source, relative path)`` for every input file, in a stable order.

    - a folder: its audio files, recursively, relative to the folder;
    - a glob (``*``, ``?``, ``[``; ``**`` recurses): the audio files it matches, relative to the
      pattern's fixed prefix;
    - a file: taken as is (even if it is not audio: the worker records why it fails); several
      named files are relative to their common folder, a single one to its own folder.

    Files under ``exclude`` (the output folder) and hidden files are skipped.

    Raises:
        FileNotFoundError: a named file or folder does not exist.
        ValueError: a folder or glob holds no audio files, or two inputs share a relative path.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[Path, Path]] = []
    named: list[Path] = []
    for text in map(str, paths):
        path = Path(text)
        if any(c in text for c in MAGIC) and not path.exists():
            base = _glob_base(text)
            files = sorted(Path(p) for p in glob.glob(text, recursive=True) if _is_audio(Path(p), skip))
            if not files:
                raise ValueError(f"glob {text!r} matches no audio files ({', '.join(READ_SUFFIXES)})")
            found.extend((f, f.relative_to(base)) for f in files)
        elif path.is_dir():
            files = sorted(f for f in path.rglob("*") if _is_audio(f, skip))
            if not files:
                raise ValueError(f"folder {path} holds no audio files ({', '.join(READ_SUFFIXES)})")
            found.extend((f, f.relative_to(path)) for f in files)
        elif path.exists():
            named.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    if named:
        root = Path(os.path.commonpath([p.resolve().parent for p in named]))
        found.extend((p, p.resolve().relative_to(root)) for p in named)
    _check_unique(found)
    return found


def _check_unique(found: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for source, rel in found:
        other = seen.setdefault(rel.with_suffix(""), source)
        if other is not source:
            raise ValueError(
                f"inputs {other} and {source} would write the same outputs ({rel.with_suffix('')}); "
                "render them into different output folders"
            )
