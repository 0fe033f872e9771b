"""Hop-by-hop separation with a streaming backend: sample FIFOs, whole hops, latency bookkeeping.

The backend consumes whole hops and its output is delayed by ``stream_delay_samples``; a
caller's chunk may hold any number of samples. Buffering a partial hop adds up to
``hop - 1`` samples, so the constant latency is ``stream_delay + hop - 1`` (``n_fft - 1``
for an STFT model whose delay is ``n_fft - hop``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastuss_fx.runtime.backend import StreamingBackend
from fastuss_fx.runtime.fifo import Fifo
from fastuss_fx.runtime.offline import Progress, combine_sources

MAX_HOPS_PER_CALL = 32
"""Most hops handed to the backend at once (bounds memory and per-call work)."""


def stream_latency(backend: StreamingBackend) -> int:
    """Constant latency in model-rate samples of a hop-buffered stream."""
    return int(backend.stream_delay_samples) + int(backend.hop_samples) - 1


class HopStream:
    """A stream over a streaming backend: ``push`` any ``(B, n)``, get aligned ``(B, K, m)``.

    In total ``push`` returns exactly ``max(0, samples_in - latency_samples)`` samples;
    output sample ``i`` is aligned with input sample ``i``.
    """

    def __init__(
        self, backend: StreamingBackend, prompts: Sequence[str], channels: int, *, combine: np.ndarray | None = None
    ) -> None:
        self.backend, self.prompts, self.channels = backend, list(prompts), channels
        self.hop = int(backend.hop_samples)
        self.combine = combine
        self.outputs = len(self.prompts) if combine is None else combine.shape[0]
        self.latency_samples = stream_latency(backend)
        self.reset()

    def reset(self) -> None:
        self._state = self.backend.initial_state(self.channels, self.prompts)
        self._in = Fifo((self.channels,))
        self._ready = Fifo((self.channels, self.outputs))
        self._to_drop = int(self.backend.stream_delay_samples)  # stream samples before the clip starts
        self._n_in = self._n_out = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed ``(B, n)`` float32; return the next aligned ``(B, K, m)`` output samples."""
        self._in.push(audio)
        self._n_in += audio.shape[-1]
        while len(self._in) >= self.hop:
            hops = min(len(self._in) // self.hop, MAX_HOPS_PER_CALL)
            out, self._state = self.backend.stream(self._in.pop(hops * self.hop), self._state)
            out = combine_sources(out, self.combine)
            drop = min(self._to_drop, out.shape[-1])
            self._to_drop -= drop
            self._ready.push(out[..., drop:])
        want = max(0, self._n_in - self.latency_samples) - self._n_out
        assert len(self._ready) >= want, (len(self._ready), want)
        out = self._ready.pop(want)
        self._n_out += want
        return out


def separate_streaming(
    backend: StreamingBackend,
    mix: np.ndarray,
    prompts: Sequence[str],
    *,
    combine: np.ndarray | None = None,
    progress: Progress | None = None,
    block_samples: int = 1 << 16,
) -> np.ndarray:
    """One-shot ``(B, N) -> (B, K, N)`` through a fresh stream, flushed with zeros.

    Equals what a stream fed the clip in any chunking returns, since it is the same stream.
    """
    stream = HopStream(backend, prompts, mix.shape[0], combine=combine)
    total = mix.shape[-1]
    feed = np.concatenate([mix, np.zeros((mix.shape[0], stream.latency_samples), np.float32)], -1)
    parts, done = [], 0
    for start in range(0, feed.shape[-1], block_samples):
        parts.append(stream.push(feed[:, start : start + block_samples]))
        done += parts[-1].shape[-1]
        if progress is not None:
            progress(min(done, total), total)
    out = np.concatenate(parts, -1)
    assert out.shape[-1] == total, (out.shape, total)
    return out
