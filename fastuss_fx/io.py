"""Audio files: read with ``pedalboard.io.AudioFile``, write atomically, never over the input.

Formats are whatever pedalboard reads (wav, flac, mp3, ogg, aiff) and writes (wav, flac,
ogg, mp3). Writes go through :func:`fastuss_fx.atomic.atomic_path` (temporary file next to the
target, fsync, rename, mode 0644), so a failed or interrupted write never leaves a half-written
output. PCM outputs take a bit depth (``"16"``, ``"24"`` or ``"32f"`` float); samples beyond
full scale are counted and reported, never clipped silently.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from fastuss_fx.atomic import atomic_path
from fastuss_fx.audio import fit_headroom

logger = logging.getLogger(__name__)

READ_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")
WRITE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
BIT_DEPTHS = ("16", "24", "32f")
"""PCM output depths: 16- or 24-bit integer, or 32-bit float (WAV only)."""
_PCM_BITS = {".wav": ("16", "24", "32f"), ".flac": ("16", "24")}


def read_audio(path: str | Path) -> tuple[np.ndarray, float]:
    """Read a whole file as float32 ``(C, N)`` and its sample rate.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be decoded (corrupt, empty or not audio), holds no samples,
            or holds NaN/inf samples; the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    try:
        with AudioFile(str(path)) as f:
            rate = float(f.samplerate)
            audio = f.read(f.frames) if f.frames else np.zeros((f.num_channels, 0), np.float32)
    except PermissionError as err:
        raise PermissionError(f"cannot read {path}: {err}") from None
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"cannot decode {path} as audio: {err}") from None
    if audio.shape[-1] == 0:
        raise ValueError(f"{path} holds no audio samples (valid header, 0 frames)")
    finite = np.isfinite(audio)
    if not finite.all():
        channel, sample = np.argwhere(~finite)[0]
        raise ValueError(
            f"{path} contains {int((~finite).sum())} NaN/inf sample(s), first at channel {channel}, "
            f"sample {sample} ({sample / rate:.3f} s); repair or re-export the file"
        )
    return np.ascontiguousarray(audio, np.float32), rate


def decode_mono(
    path: str | Path | bytes, start_s: float = 0.0, duration_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Read (part of) an audio file as mono float32 at its native rate (channels averaged); returns ``(audio, rate)``.

    The reader of data pipelines (corpus builds, training clips), where speed matters more than
    :func:`read_audio`'s checks.

    ``path`` may also be the bytes of a whole file (e.g. an MP3 entry of a game archive).
    Uses ``soundfile`` when installed (it reads Ogg Opus and MP3 too), else ``pedalboard.io``
    (WAV, FLAC, MP3, Ogg Vorbis).
    """
    source = io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else str(path)
    try:
        import soundfile as sf
    except ImportError:
        with AudioFile(source) as f:
            rate = int(f.samplerate)
            f.seek(min(int(start_s * rate), f.frames))
            frames = f.frames - f.tell() if duration_s is None else min(int(duration_s * rate), f.frames - f.tell())
            audio = f.read(frames).mean(axis=0)
    else:
        with sf.SoundFile(source) as f:
            rate = f.samplerate
            if start_s > 0:
                f.seek(min(int(start_s * rate), f.frames))
            frames = -1 if duration_s is None else int(duration_s * rate)
            audio = f.read(frames, dtype="float32", always_2d=True).mean(axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def audio_duration(path: str | Path) -> float:
    """Length of an audio file in seconds (header only)."""
    try:
        import soundfile as sf
    except ImportError:
        with AudioFile(str(path)) as f:
            return f.frames / f.samplerate
    return float(sf.info(str(path)).duration)


def source_bit_depth(path: str | Path) -> str:
    """The output depth that keeps a file's precision: ``"24"`` for 24-bit PCM, ``"32f"`` for float
    (or 32-bit integer) files, ``"16"`` for 8/16-bit PCM. Compressed formats decode as float and
    give ``"32f"``; :func:`write_audio` lowers a depth its target format cannot hold."""
    with AudioFile(str(path)) as f:
        dtype = str(f.file_dtype)
    if dtype == "int24":
        return "24"
    if dtype in ("float32", "float64", "int32"):
        return "32f"
    return "16"


def check_bit_depth(bit_depth: str | int) -> str:
    """``"16"``, ``"24"`` or ``"32f"`` (``16``/``24``/``"32"``/``32`` accepted too)."""
    text = str(bit_depth).lower()
    text = "32f" if text in ("32", "32f", "float") else text
    if isinstance(bit_depth, bool) or text not in BIT_DEPTHS:
        raise ValueError(f"bit depth must be one of {', '.join(BIT_DEPTHS)}, got {bit_depth!r}")
    return text


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (also through links); False if either is missing."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(
    path: str | Path,
    inputs: list[Path] | tuple[Path, ...] = (),
    overwrite: bool = False,
    *,
    create_folders: bool = True,
) -> Path:
    """Check that ``path`` may be written, before any work: a known format, not an input, not a
    folder, not existing unless ``overwrite``, and a writable folder to go in.

    With ``create_folders`` the caller creates missing folders, so the nearest existing one must
    be a writable folder; without, ``path``'s own folder must exist.

    Raises:
        ValueError: unsupported format, or ``path`` is one of ``inputs``.
        FileExistsError: ``path`` exists and not ``overwrite``.
        IsADirectoryError: ``path`` is a folder.
        FileNotFoundError: the folder is missing (without ``create_folders``).
        NotADirectoryError: a file stands where a folder of ``path`` should be.
        PermissionError: the folder is not writable.
    """
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(
            f"cannot write {path}: unsupported format {path.suffix!r}; use one of {', '.join(WRITE_SUFFIXES)}"
        )
    for source in inputs:
        if same_file(path, source):
            raise ValueError(f"output {path} is the input file; choose another output path")
    if path.is_dir():
        raise IsADirectoryError(f"output {path} is a folder; name a file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {path} exists; pass --overwrite to replace it")
    if not create_folders and not path.parent.exists():
        raise FileNotFoundError(f"output folder does not exist: {path.parent} (for {path}); create it first")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder is not writable: {folder} (for {path})")
    return path


def headroom_for(mix: Mapping[str, float], ceiling_db: float = -1.0) -> float | None:
    """``ceiling_db`` when a mix (stem -> gain dB) adds gain, so its result needs headroom; else None."""
    return ceiling_db if max(mix.values(), default=0.0) > 0 else None


def write_audio(
    path: str | Path,
    audio: np.ndarray,
    sample_rate: float,
    bit_depth: str | int | None = None,
    *,
    like: str | Path | None = None,
    headroom_db: float | None = None,
) -> Path:
    """Write ``(C, N)`` float32 atomically with mode 0644; returns ``path``.

    ``bit_depth`` is ``"16"``, ``"24"`` or ``"32f"`` for PCM formats (WAV, FLAC); None takes the
    depth of the file ``like`` (the input), or keeps float precision without it (32-bit float WAV).
    A depth the format cannot hold (32f FLAC) lowers to 24 when it was not asked for, else raises
    ValueError. Compressed formats (ogg, mp3) ignore it. ``headroom_db``: turn a clip that peaks
    above it down as a whole (for mixes that add gain), with a warning. Samples still beyond full
    scale are clipped by integer and compressed formats: their count is reported in one warning
    naming the file.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"output folder is not writable: {folder}")
    suffix = path.suffix.lower()
    depths = _PCM_BITS.get(suffix)
    asked = bit_depth is not None
    depth = check_bit_depth(
        bit_depth if bit_depth is not None else source_bit_depth(like) if like is not None else "32f"
    )
    if depths is not None and depth not in depths:
        if asked:
            raise ValueError(f"cannot write {path} at bit depth {depth}: {suffix} holds {', '.join(depths)}")
        depth = depths[-1]
    if headroom_db is not None:
        audio, gain_db = fit_headroom(audio, headroom_db)
        if gain_db:
            warnings.warn(f"{path}: turned down {-gain_db:.1f} dB to stay below {headroom_db:g} dBFS", stacklevel=2)
    audio = np.ascontiguousarray(audio, np.float32)
    over = int(np.count_nonzero(np.abs(audio) > 1.0))
    if over and depth == "32f" and suffix == ".wav":
        warnings.warn(
            f"{path}: {over} sample(s) above full scale (kept in the float file; they clip on playback)", stacklevel=2
        )
    elif over:
        warnings.warn(f"{path}: {over} sample(s) clipped at full scale", stacklevel=2)
        audio = np.clip(audio, -1.0, 1.0)
    bits = 32 if depth == "32f" else int(depth)
    channels = audio.shape[0]
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as handle,
        AudioFile(handle, "w", sample_rate, num_channels=channels, bit_depth=bits, format=suffix[1:]) as f,
    ):
        f.write(audio)
    logger.debug("wrote %s (%d ch, %d samples at %g Hz, %s)", path, audio.shape[0], audio.shape[-1], sample_rate, depth)
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
