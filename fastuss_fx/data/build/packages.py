"""Debian packages as data: ``apt-get download`` + ``dpkg-deb -x`` into a folder, no system install.

``PackageStore(pkgs).ensure("naev-data")`` returns ``pkgs/naev-data`` (the unpacked tree), or
``None`` with a logged reason when the package is unavailable; recipes then skip their source.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


class PackageStore:
    """One unpacked tree per package under ``root``; downloads on demand when ``fetch`` is true."""

    def __init__(self, root: str | Path, fetch: bool = True):
        self.root = Path(root)
        self.fetch = fetch
        self.failed: dict[str, str] = {}

    def tree(self, package: str) -> Path:
        return self.root / package

    def ensure(self, package: str) -> Path | None:
        """The unpacked tree of ``package``, fetching it first if needed; ``None`` if unavailable."""
        tree = self.tree(package)
        if (tree / ".unpacked").is_file():
            return tree
        if package in self.failed:
            return None
        if not self.fetch:
            reason: str | None = f"not in {self.root} and fetching is off"
        else:
            with self._lock():  # builds side by side (``--jobs``) fetch a package once, one at a time
                reason = None if (tree / ".unpacked").is_file() else self._fetch(package)
        if reason:
            self.failed[package] = reason
            logger.warning("package %s unavailable: %s", package, reason)
            return None
        return tree

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold an exclusive lock on ``root`` (a ``flock`` on ``root/.lock``) for the block."""
        import fcntl  # POSIX only, like apt-get and dpkg-deb

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _fetch(self, package: str) -> str | None:
        """Download and unpack ``package``; returns why it failed, or ``None``."""
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                return f"{tool} not found (needs a Debian-like system)"
        debs = self.root / "_debs"
        debs.mkdir(parents=True, exist_ok=True)
        logger.info("apt-get download %s -> %s", package, debs)
        done = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if done.returncode != 0 or not found:
            return (done.stderr.strip().splitlines() or [f"apt-get exited {done.returncode}"])[-1]
        tree = self.tree(package)
        unpack = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(tree)], capture_output=True, text=True)
        if unpack.returncode != 0:
            return f"dpkg-deb -x {found[-1].name} failed: {unpack.stderr.strip()}"
        (tree / ".unpacked").write_text(found[-1].name + "\n")
        found[-1].unlink()  # the unpacked tree is all we read
        return None

    def files(self, package: str, pattern: str) -> list[tuple[Path, str]]:
        """Files of ``package`` matching the glob ``pattern``.

        As ``(path, orig)``, ``orig`` = ``package/relative/path``.
        """
        tree = self.ensure(package)
        if tree is None:
            return []
        return [(p, f"{package}/{p.relative_to(tree).as_posix()}") for p in sorted(tree.glob(pattern)) if p.is_file()]


def system_or_package(store: PackageStore, package: str, relative: str) -> Path | None:
    """``/relative`` when ``package`` is installed system-wide, else the file inside the unpacked package."""
    installed = Path("/") / relative
    if installed.is_file():
        return installed
    tree = store.ensure(package)
    if tree is not None and (tree / relative).is_file():
        return tree / relative
    return None
