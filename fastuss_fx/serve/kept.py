"""``Kept``: a map that holds at most ``limit`` items, dropping the least recently used first.

The server's uploads, jobs, exports and processors live in ``Kept`` maps, so a server that runs for
days holds a bounded number of each (and the files behind them, which the caller removes for what
``add`` pushes out). Items that ``pinned`` protects (a queued or running job, an upload one of them
reads) are never pushed out; while they are many, the map holds more than ``limit``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(Generic[K, V]):
    """Items by key, least recently used first; not thread-safe (callers hold their own lock).

    Args:
        limit: how many items to keep (at least 1).
        pinned: items for which it returns True are never dropped.
    """

    def __init__(self, limit: int, pinned: Callable[[V], bool] = lambda _: False) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        self.limit, self.pinned = limit, pinned
        self._items: OrderedDict[K, V] = OrderedDict()

    def add(self, key: K, value: V) -> list[V]:
        """Keep ``value`` as the newest item; returns the items this pushed out (oldest first)."""
        self._items[key] = value
        self._items.move_to_end(key)
        dropped = []
        for old in list(self._items):
            if len(self._items) <= self.limit:
                break
            if old != key and not self.pinned(self._items[old]):
                dropped.append(self._items.pop(old))
        return dropped

    def get(self, key: K) -> V | None:
        """The item (now the most recently used), or None."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def values(self) -> list[V]:
        return list(self._items.values())

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._items))
