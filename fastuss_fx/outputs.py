"""Where outputs go: the output folder, and the names ``separate``, ``stems`` and ``render`` give outputs.

Shared by the CLI commands and the render driver (both import it; it imports neither). Importing it
is cheap: ``fastuss_fx.io`` (pedalboard) loads on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def output_folder(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; a clear error when that is impossible."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create output folder {path}: {err.strerror or err}") from None
    if not path.is_dir():
        raise NotADirectoryError(f"output {path} is not a folder")
    return path


def output_suffix(source: Path) -> str:
    """Keep the input's format when pedalboard can write it, else WAV."""
    from fastuss_fx.io import WRITE_SUFFIXES  # pedalboard: only when needed, not when the CLI starts

    return source.suffix.lower() if source.suffix.lower() in WRITE_SUFFIXES else ".wav"


def mix_output(rel: Path, preset_name: str) -> Path:
    """The processed mix of input ``rel``: ``<dir>/<stem>_<preset><suffix>`` (relative like ``rel``)."""
    return rel.parent / f"{rel.stem}_{preset_name}{output_suffix(rel)}"


def stem_outputs(rel: Path, stems: Sequence[str]) -> dict[str, Path]:
    """One file per stem of input ``rel``: ``<dir>/<stem>/<name><suffix>`` (relative like ``rel``)."""
    return {name: rel.parent / rel.stem / f"{name}{output_suffix(rel)}" for name in stems}
