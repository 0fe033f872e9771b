"""Readers for game data that is not plain audio files: the FOTAQ resource table, zip archives.

``queen_table`` parses Flight of the Amazon Queen's ``queen.1c`` (its ``.SB`` entries are MP3
speech); ``fotaq_speaker`` and ``drascula_speaker`` map resource names to the character who
speaks them (the split group). Drascula's raw 8-bit audio is read by ``signal.read_raw_u8``.
"""

from __future__ import annotations

import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

QUEEN_MAGIC = b"QTBL"
QUEEN_ENTRY = struct.Struct(">12sBII")
"""One table entry: 12-byte NUL-padded name, bundle number, offset (from the file start), size."""
QUEEN_HEADER = 15
"""Magic (4), version string (5), 3 unused bytes, compression type (1), entry count (2, big-endian)."""


@dataclass(frozen=True)
class QueenEntry:
    """One resource of a FOTAQ data file."""

    name: str
    bundle: int
    offset: int
    size: int


def queen_table(data: bytes) -> tuple[int, list[QueenEntry]]:
    """``(compression, entries)`` of a ``queen.1c`` file's bytes (compression 1 = MP3).

    Raises:
        ValueError: not a QTBL file, or the table or an entry runs past the end of the data.
    """
    if data[:4] != QUEEN_MAGIC or len(data) < QUEEN_HEADER:
        raise ValueError(f"not a FOTAQ resource file (starts with {data[:4]!r}, expected {QUEEN_MAGIC!r})")
    compression, count = data[12], struct.unpack_from(">H", data, 13)[0]
    end = QUEEN_HEADER + count * QUEEN_ENTRY.size
    if end > len(data):
        raise ValueError(f"the table of {count} entries needs {end} bytes, the file has {len(data)}")
    entries = []
    for i in range(count):
        raw, bundle, offset, size = QUEEN_ENTRY.unpack_from(data, QUEEN_HEADER + i * QUEEN_ENTRY.size)
        name = raw.split(b"\0", 1)[0].decode("latin-1")
        if offset + size > len(data):
            raise ValueError(f"entry {name!r} ({offset}+{size}) runs past the end of the file ({len(data)} bytes)")
        entries.append(QueenEntry(name, bundle, offset, size))
    return compression, entries


def queen_speech(path: str | Path) -> list[tuple[str, bytes]]:
    """``(name, mp3 bytes)`` of every ``.SB`` (speech) entry of ``queen.1c``."""
    data = Path(path).read_bytes()
    compression, entries = queen_table(data)
    if compression != 1:
        raise ValueError(f"{path}: compression type {compression}, only 1 (MP3) is supported")
    return [(e.name, data[e.offset : e.offset + e.size]) for e in entries if e.name.upper().endswith(".SB")]


_TALK = re.compile(r"^(..)....([JP])\d\.SB$", re.IGNORECASE)


def fotaq_speaker(name: str) -> str:
    """The split group of a FOTAQ speech resource.

    ScummVM's talk code names dialogue lines ``KKhhhhJn`` (Joe, the hero) and ``KKhhhhPn``
    (the person of talk key ``KK``); ``JOE*`` are Joe's remarks and ``C*`` the cut-scenes, in
    which Joe speaks most: they join Joe's group so the hero never spans two splits.
    Anything else is grouped by its first four characters.
    """
    upper = name.upper()
    if upper.startswith(("JOE", "C")):
        return "joe"
    match = _TALK.match(upper)
    if match:
        return "joe" if match.group(2) == "J" else f"talk{match.group(1).strip()}"
    return f"other-{upper[:4].rstrip('_')}"


def drascula_speaker(name: str) -> str:
    """Character of a drascula voice file: its letter prefix (``I12.ALS`` → ``I``, Igor); digits only → the hero."""
    match = re.match(r"[A-Za-z_]*", Path(name).stem)  # always matches (maybe empty)
    prefix = match.group(0).upper() if match else ""
    return prefix or "hero"


def extract_members(archive: str | Path, prefix: str, out: str | Path, suffix: str = ".ogg") -> list[Path]:
    """Extract the members of a zip (e.g. a Quake ``.pk3``) under ``prefix`` ending in ``suffix``.

    Returns their paths.
    """
    out, paths = Path(out), []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(prefix) or not info.filename.lower().endswith(suffix):
                continue
            target = out / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            paths.append(target)
    return sorted(paths)
