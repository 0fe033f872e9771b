"""First-in first-out buffers of ``(..., n)`` arrays, and the bookkeeping of constant-latency streams."""

from __future__ import annotations

from collections.abc import Callable

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


class AlignedOutput:
    """Output side of a constant-latency stream: after ``n`` samples in, exactly ``max(0, n - latency)`` out."""

    def __init__(self, lead_shape: tuple[int, ...], latency_samples: int) -> None:
        self.latency_samples = latency_samples
        self._ready = Fifo(lead_shape)
        self._n_in = self._n_out = 0

    @property
    def samples_in(self) -> int:
        return self._n_in

    def count_input(self, n: int) -> None:
        """Record ``n`` more input samples."""
        self._n_in += n

    def push(self, chunk: np.ndarray) -> None:
        """Append finished output samples."""
        self._ready.push(chunk)

    def pop(self) -> np.ndarray:
        """The output samples due now (the stream must have produced them)."""
        want = max(0, self._n_in - self.latency_samples) - self._n_out
        assert len(self._ready) >= want, (len(self._ready), want)
        self._n_out += want
        return self._ready.pop(want)


def run_to_end(
    push: Callable[[np.ndarray], np.ndarray],
    mix: np.ndarray,
    latency_samples: int,
    block_samples: int,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Feed ``mix`` ``(B, N)`` then ``latency_samples`` zeros through ``push``; return the aligned ``(B, K, N)``.

    Writes into one preallocated output and never copies the whole input, so a long file costs
    its input and output arrays plus the stream's own bounded buffers.
    """
    channels, total = mix.shape
    out: np.ndarray | None = None
    done = 0

    def take(chunk: np.ndarray) -> None:
        nonlocal out, done
        chunk = chunk[..., : total - done]
        if out is None:
            out = np.empty((channels, chunk.shape[1], total), np.float32)
        out[..., done : done + chunk.shape[-1]] = chunk
        done += chunk.shape[-1]
        if progress is not None:
            progress(done, total)

    for start in range(0, total, block_samples):
        take(push(mix[:, start : start + block_samples]))
    zeros = np.zeros((channels, min(block_samples, latency_samples)), np.float32)
    for start in range(0, latency_samples, block_samples):
        take(push(zeros[:, : min(block_samples, latency_samples - start)]))
    assert done == total and out is not None, (done, total)
    return out
