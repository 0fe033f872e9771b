"""A first-in first-out buffer of ``(..., n)`` arrays along the last axis."""

from __future__ import annotations

import numpy as np


class Fifo:
    """Append chunks at the end, take samples from the front; shapes ``(*lead, n)``."""

    def __init__(self, lead_shape: tuple[int, ...]) -> None:
        self.lead_shape = tuple(lead_shape)
        self._chunks: list[np.ndarray] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, chunk: np.ndarray) -> None:
        assert chunk.shape[:-1] == self.lead_shape, (chunk.shape, self.lead_shape)
        if chunk.shape[-1]:
            self._chunks.append(chunk)
            self._size += chunk.shape[-1]

    def peek(self, n: int) -> np.ndarray:
        """The first ``n`` samples, left in the buffer."""
        assert n <= self._size, (n, self._size)
        self._merge()
        if not self._chunks:
            return np.zeros((*self.lead_shape, 0), np.float32)
        return self._chunks[0][..., :n]

    def pop(self, n: int) -> np.ndarray:
        """Remove and return the first ``n`` samples."""
        out = self.peek(n).copy()
        if self._chunks:
            self._chunks[0] = self._chunks[0][..., n:]
            self._size -= n
            if not self._chunks[0].shape[-1]:
                self._chunks.clear()
        return out

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0

    def _merge(self) -> None:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks, axis=-1)]
