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
from fastuss_fx.runtime.fifo import AlignedOutput, Fifo, run_to_end
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
        self._out = AlignedOutput((self.channels, self.outputs), self.latency_samples)
        self._to_drop = int(self.backend.stream_delay_samples)  # stream samples before the clip starts

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed ``(B, n)`` float32; return the next aligned ``(B, K, m)`` output samples."""
        self._in.push(audio)
        self._out.count_input(audio.shape[-1])
        while len(self._in) >= self.hop:
            hops = min(len(self._in) // self.hop, MAX_HOPS_PER_CALL)
            out, self._state = self.backend.stream(self._in.pop(hops * self.hop), self._state)
            out = combine_sources(out, self.combine)
            drop = min(self._to_drop, out.shape[-1])
            self._to_drop -= drop
            self._out.push(out[..., drop:])
        return self._out.pop()


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
    return run_to_end(stream.push, mix, stream.latency_samples, block_samples, progress)
