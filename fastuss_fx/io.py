"""Audio files: read with ``pedalboard.io.AudioFile``, write atomically, never over the input.

Formats are whatever pedalboard reads (wav, flac, mp3, ogg, aiff) and writes (wav, flac,
ogg, mp3). Writes go to a temporary file next to the target and are renamed into place, so a
failed or interrupted write never leaves a half-written output.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

logger = logging.getLogger(__name__)

READ_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")
WRITE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def read_audio(path: str | Path) -> tuple[np.ndarray, float]:
    """Read a whole file as float32 ``(C, N)`` and its sample rate.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be decoded (corrupt, empty or not audio).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    try:
        with AudioFile(str(path)) as f:
            audio, rate = f.read(f.frames), float(f.samplerate)
    except PermissionError as err:
        raise PermissionError(f"cannot read {path}: {err}") from None
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"cannot decode {path} as audio: {err}") from None
    if audio.shape[-1] == 0:
        raise ValueError(f"{path} holds no audio samples")
    return np.ascontiguousarray(audio, np.float32), rate


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (also through links); False if either is missing."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(path: str | Path, inputs: list[Path] | tuple[Path, ...] = (), overwrite: bool = False) -> Path:
    """Check that ``path`` may be written: a known format, not an input, not existing unless ``overwrite``."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(f"cannot write {path}: unsupported format {path.suffix!r}; use one of {', '.join(WRITE_SUFFIXES)}")
    for source in inputs:
        if same_file(path, source):
            raise ValueError(f"output {path} is the input file; choose another output path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {path} exists; pass --overwrite to replace it")
    return path


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: float) -> Path:
    """Write ``(C, N)`` float32 atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"output folder is not writable: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        with AudioFile(tmp, "w", sample_rate, num_channels=audio.shape[0]) as f:
            f.write(np.ascontiguousarray(audio, np.float32))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    logger.debug("wrote %s (%d ch, %d samples at %g Hz)", path, audio.shape[0], audio.shape[-1], sample_rate)
    return path


def find_inputs(paths: list[str | Path]) -> list[Path]:
    """Expand folders into the audio files they hold (sorted, not recursive); files pass through."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in READ_SUFFIXES)
            if not files:
                raise ValueError(f"folder {p} holds no audio files ({', '.join(READ_SUFFIXES)})")
            found.extend(files)
        else:
            found.append(p)
    return found
