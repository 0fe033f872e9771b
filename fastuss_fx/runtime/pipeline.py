"""A caller-rate stream: resample in, a model-rate source stream, resample out, constant latency."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from fastuss_fx.audio import StreamingResampler
from fastuss_fx.runtime.fifo import Fifo


class SourceStream(Protocol):
    """What ``HopStream`` and ``WindowedStream`` offer: aligned output, constant latency."""

    latency_samples: int
    combine: np.ndarray | None

    def push(self, audio: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def resampled_latency(core_latency: int, sample_rate: float, model_rate: float) -> int:
    """Constant latency at ``sample_rate`` of a core with ``core_latency`` model-rate samples."""
    if sample_rate == model_rate:
        return core_latency
    lat_in = StreamingResampler(sample_rate, model_rate, 1).input_latency  # caller-rate samples
    lat_out = StreamingResampler(model_rate, sample_rate, 1).input_latency  # model-rate samples
    # After n inputs each resampler has given at least (its input - its latency) * ratio - 2 samples,
    # so the output count is >= n - lat_in - (core + lat_out + 2) / ratio - 2; round up with a margin.
    # tests/runtime/test_pipeline.py checks this over rates and chunkings.
    ratio = model_rate / sample_rate
    return int(math.ceil(lat_in + (core_latency + lat_out + 2) / ratio)) + 3


class ResampledStream:
    """Wrap a model-rate ``SourceStream`` for a caller at another sample rate.

    Both resamplers are aligned and chunk-invariant, so the chain stays aligned; only how
    many samples are out so far lags. That lag is bounded, and ``push`` holds output back to
    exactly ``max(0, samples_in - latency_samples)`` samples in total.
    """

    def __init__(self, core: SourceStream, sample_rate: float, model_rate: float, channels: int, outputs: int) -> None:
        self.core, self.channels, self.outputs = core, channels, outputs
        self.resample_in = StreamingResampler(sample_rate, model_rate, channels)
        self.resample_out = StreamingResampler(model_rate, sample_rate, channels * outputs)
        self.latency_samples = resampled_latency(core.latency_samples, sample_rate, model_rate)
        self.reset()

    def reset(self) -> None:
        self.core.reset()
        self.resample_in.reset()
        self.resample_out.reset()
        self._ready = Fifo((self.channels, self.outputs))
        self._n_in = self._n_out = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed ``(C, n)`` at the caller's rate; return aligned ``(C, K, m)``."""
        self._n_in += audio.shape[-1]
        model_in = self.resample_in.process(audio)
        model_out = self.core.push(model_in)
        flat = model_out.reshape(self.channels * self.outputs, -1)
        out = self.resample_out.process(flat)
        self._ready.push(out.reshape(self.channels, self.outputs, -1))
        want = max(0, self._n_in - self.latency_samples) - self._n_out
        out = self._ready.pop(min(want, len(self._ready)))
        self._n_out += out.shape[-1]
        return out
