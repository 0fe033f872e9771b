"""The render manifest: one JSON file in the output folder, rewritten atomically as results arrive.

Each entry records an input (path, size, mtime), the settings (engine included) and the weights'
hash it was rendered with, its outputs (relative to the output folder), its status (``pending``,
``done``, ``failed``) and the error. A rerun skips an entry that is ``done`` with the same input,
settings and weights and its outputs on disk.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from fastuss_fx.atomic import atomic_path

logger = logging.getLogger(__name__)

MANIFEST_NAME = "fastuss-render.json"
VERSION = 1
STATUSES = ("pending", "done", "failed")


def fingerprint(path: Path) -> dict[str, int]:
    """Size and modification time of an input: cheap, and changes whenever the file does."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Manifest:
    """Entries keyed by ``"<kind>:<absolute input path>"``; ``save`` replaces the file atomically."""

    def __init__(self, path: Path, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = entries or {}
        self._saved_at = 0.0

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        """The manifest in ``folder`` (empty if there is none).

        Raises:
            ValueError: the file exists but is not a render manifest.
        """
        path = Path(folder) / MANIFEST_NAME
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read render manifest ({err}); move it away to start over") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("entries"), dict):
            raise ValueError(f"{path}: not a version {VERSION} render manifest; move it away to start over")
        return cls(path, data["entries"])

    def is_done(self, key: str, record: dict[str, Any], folder: Path) -> bool:
        """Whether ``key`` finished with exactly ``record`` (input, settings, weights, outputs), outputs on disk."""
        entry = self.entries.get(key)
        if entry is None or entry.get("status") != "done":
            return False
        if any(entry.get(k) != v for k, v in record.items()):
            return False
        return all((folder / out).is_file() for out in entry.get("outputs", ()))

    def owns(self, key: str, output: str) -> bool:
        """Whether a previous run of ``key`` recorded ``output`` (so it may be replaced)."""
        return output in self.entries.get(key, {}).get("outputs", ())

    def set(self, key: str, **fields: Any) -> None:
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {fields['status']!r}")
        self.entries.setdefault(key, {}).update(fields)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for entry in self.entries.values():
            out[entry.get("status", "pending")] = out.get(entry.get("status", "pending"), 0) + 1
        return out

    def save(self, min_interval_s: float = 0.0) -> bool:
        """Write the whole manifest atomically (temp file, fsync, rename; mode 0644); skipped if saved recently."""
        now = time.monotonic()
        if min_interval_s and now - self._saved_at < min_interval_s:
            return False
        text = json.dumps({"version": VERSION, "entries": self.entries}, indent=1, sort_keys=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        self._saved_at = now
        logger.debug("saved %s (%s)", self.path, self.counts())
        return True
