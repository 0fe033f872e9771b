"""Atomic writes: a temp file (or folder) beside the target, fsync, rename, normal permissions.

Readers never see a half-written file or folder, and a crash leaves the old one (or none) in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it is synced and renamed onto ``path``.

    The file gets ``mode`` (``mkstemp`` would leave 0600). On an exception the temp file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_folder(path: str | Path, file_mode: int = 0o644, folder_mode: int = 0o755) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it replaces ``path`` as a whole.

    Every file is synced and gets ``file_mode`` (folders ``folder_mode``), then the staging
    folder is renamed onto ``path``: one atomic rename when ``path`` is absent or empty. A
    non-empty ``path`` is first renamed aside and removed after the swap, so readers see the
    old set or the new one, never a mix (for an instant, none). On an exception the staging
    folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        _sync_tree(staging, file_mode, folder_mode)
        _swap_in(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sync_tree(root: Path, file_mode: int, folder_mode: int) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            item = Path(folder, name)
            with open(item, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(item, file_mode)
        os.chmod(folder, folder_mode)  # mkdtemp makes the staging folder 0700
        fsync_folder(Path(folder))


def _swap_in(staging: Path, path: Path) -> None:
    """Rename ``staging`` onto ``path``; a non-empty ``path`` goes aside first and is removed after."""
    try:
        os.rename(staging, path)  # atomic; replaces an absent or empty folder on POSIX
    except OSError:
        if not path.is_dir():
            raise
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rename(path, old / path.name)
        os.rename(staging, path)
        shutil.rmtree(old, ignore_errors=True)
    fsync_folder(path.parent)
