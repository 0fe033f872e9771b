"""One render driver per output folder: an exclusive ``flock`` on ``OUT/.render.lock`` for the run.

The kernel drops the lock when its holder exits, however it exits, so a crashed driver never
blocks the next one. The file is removed on release; a driver that locked a file which was
removed meanwhile retries on the new one, so two drivers never both hold a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".render.lock"


class RenderLocked(RuntimeError):
    """Another driver is rendering into the same output folder."""


@contextlib.contextmanager
def render_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the output folder's lock while the block runs; yields the lock file's path.

    Raises:
        RenderLocked: another process holds it (the message names the folder and the holder).
    """
    path = Path(folder) / LOCK_NAME
    fd = _acquire(path, Path(folder))
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: a waiting driver then sees a stale inode and retries
        os.close(fd)


def _acquire(path: Path, folder: Path) -> int:
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RenderLocked(
                f"another fastuss render is writing to {folder} ({holder}); "
                "wait for it to finish or render into another folder"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the holder removed this file as we locked it: lock the current one
    raise RenderLocked(f"cannot lock {path}: it keeps being replaced")


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return f"lock held by {text}" if text else "lock held"
