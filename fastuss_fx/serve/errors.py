"""Errors as the page sees them: ``HTTPError`` and messages with the server's paths taken out.

An exception's text often names files (``[Errno 2] No such file or directory: '/tmp/fastuss-serve-…/x.wav'``,
a model file, a file in the served folder). ``without_paths`` turns each absolute path into the name the
client knows (``known``) or its last part, so no answer shows where the server keeps things; the full
text goes to the server's log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

# an absolute POSIX path (not the tail of a word, number, URL or relative path) or a Windows drive path
ABSOLUTE_PATH = re.compile(r"(?<![\w./~:-])/[^\s'\"<>|;,()\[\]{}]*|\b[A-Za-z]:\\[^\s'\"<>|;,()\[\]{}]*")


class HTTPError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def without_paths(text: str, known: Mapping[Path | str, str] | None = None) -> str:
    """``text`` with every absolute path replaced: by ``known[path]`` when given, else by its last part.

    Args:
        text: an error message (e.g. ``str(err)``).
        known: paths the client knows by another name (an upload's file → the name it was sent under).
    """
    for path, name in sorted((known or {}).items(), key=lambda item: -len(str(item[0]))):
        text = text.replace(str(path), name)
    return ABSOLUTE_PATH.sub(_last_part, text)


def _last_part(match: re.Match[str]) -> str:
    path = match.group(0)
    name = PureWindowsPath(path).name if "\\" in path else path.rstrip("/").rsplit("/", 1)[-1]
    return name or "/"


def public_message(err: BaseException, known: Mapping[Path | str, str] | None = None) -> str:
    """One line for the client from an exception: its text without paths (or its type's name)."""
    return without_paths(" ".join(str(err).split()), known) or type(err).__name__
