"""Whole-clip separation in overlapping windows with cross-fades, so memory stays bounded.

Windows of ``segment_samples`` start every ``stride = segment - overlap`` samples; each output
sample is the weighted mean of the windows covering it (``blend="crossfade"``: linear fades of
``overlap_samples`` at both window ends, never zero, so the mean is always defined;
``blend="average"``: equal weights, the TUSS reference's chunk-wise "CSS" inference). The last
window is completed with zeros. An identity network therefore gives its input back exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from fastuss_fx.runtime.backend import Backend
from fastuss_fx.runtime.fifo import AlignedOutput, Fifo, run_to_end

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called as ``progress(done_samples, total_samples)`` (model-rate input samples)."""


BLENDS = ("crossfade", "average")
"""How overlapping windows are combined: linear cross-fades, or the plain mean (reference CSS)."""


def window_weights(segment_samples: int, overlap_samples: int, blend: str = "crossfade") -> np.ndarray:
    """Window weights ``(segment,)`` for ``blend`` (see ``BLENDS``)."""
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    if blend == "average":
        check_windows(segment_samples, overlap_samples)
        return np.ones(segment_samples, np.float64)
    return crossfade_weights(segment_samples, overlap_samples)


def crossfade_weights(segment_samples: int, overlap_samples: int) -> np.ndarray:
    """Window weights ``(segment,)``: 1 in the middle, linear fades of ``overlap`` samples, all > 0."""
    check_windows(segment_samples, overlap_samples)
    weights = np.ones(segment_samples, np.float64)
    if overlap_samples:
        ramp = np.arange(1, overlap_samples + 1) / (overlap_samples + 1)
        weights[:overlap_samples] = ramp
        weights[-overlap_samples:] = ramp[::-1]
    return weights


def check_windows(segment_samples: int, overlap_samples: int) -> None:
    """Raise unless ``0 <= overlap <= segment / 2`` and ``segment >= 1``."""
    if segment_samples < 1 or not 0 <= overlap_samples <= segment_samples // 2:
        raise ValueError(
            f"need segment_samples >= 1 and 0 <= overlap_samples <= segment_samples / 2, "
            f"got segment_samples={segment_samples}, overlap_samples={overlap_samples}"
        )


def combine_sources(sources: np.ndarray, combine: np.ndarray | None) -> np.ndarray:
    """Mix ``(B, S, n)`` sources down to ``(B, K, n)`` with a ``(K, S)`` matrix (None: keep all)."""
    if combine is None:
        return np.asarray(sources, np.float32)
    return np.einsum("ks,bsn->bkn", combine, sources).astype(np.float32, copy=False)


class WindowedStream:
    """Offline separation fed in chunks: output lags the input by ``segment_samples - 1``.

    ``push`` returns exactly ``max(0, samples_in - latency_samples)`` samples in total, so
    the lag is constant; output sample ``i`` is aligned with input sample ``i``. With the input
    length known (``length``), a window that would start within the last ``overlap`` samples
    (or later) covers nothing the window before it does not, so it is not computed (the reference
    CSS's segment count).
    """

    def __init__(
        self,
        backend: Backend,
        prompts: Sequence[str],
        channels: int,
        *,
        segment_samples: int,
        overlap_samples: int,
        combine: np.ndarray | None = None,
        blend: str = "crossfade",
        length: int | None = None,
    ) -> None:
        self.backend, self.prompts, self.channels = backend, list(prompts), channels
        self.segment, self.stride = segment_samples, segment_samples - overlap_samples
        self.weights = window_weights(segment_samples, overlap_samples, blend)
        self.last_start = None if length is None else max(0, length - overlap_samples - 1)
        self.combine = combine
        self.outputs = len(self.prompts) if combine is None else combine.shape[0]
        self.latency_samples = segment_samples - 1
        self.reset()

    def reset(self) -> None:
        self._in = Fifo((self.channels,))
        self._out = AlignedOutput((self.channels, self.outputs), self.latency_samples)
        # Weighted sums for the samples from the next window's start on.
        self._acc = np.zeros((self.channels, self.outputs, self.segment), np.float64)
        self._wsum = np.zeros(self.segment, np.float64)
        self._start = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed ``(B, n)`` float32; return the next aligned ``(B, K, m)`` output samples."""
        self._in.push(audio)
        self._out.count_input(audio.shape[-1])
        while len(self._in) >= self.segment:
            self._window(self._in.peek(self.segment))
            self._in.pop(self.stride)
        return self._out.pop()

    def _window(self, window: np.ndarray) -> None:
        if self.last_start is None or self._start <= self.last_start:
            out = combine_sources(self.backend.separate(window, self.prompts), self.combine)
            self._acc += out * self.weights
            self._wsum += self.weights
        # Samples before the next window's start get no more contributions: they are final
        # (samples no window covered lie past the end of the input: they come out as zeros).
        acc, wsum = self._acc[..., : self.stride], self._wsum[: self.stride]
        final = np.divide(acc, wsum, out=np.zeros_like(acc), where=wsum > 0)
        self._out.push(final.astype(np.float32))
        self._acc = np.concatenate([self._acc[..., self.stride :], np.zeros_like(self._acc[..., : self.stride])], -1)
        self._wsum = np.concatenate([self._wsum[self.stride :], np.zeros(self.stride)])
        self._start += self.stride


def separate_offline(
    backend: Backend,
    mix: np.ndarray,
    prompts: Sequence[str],
    *,
    segment_samples: int,
    overlap_samples: int,
    combine: np.ndarray | None = None,
    blend: str = "crossfade",
    progress: Progress | None = None,
) -> np.ndarray:
    """Separate a whole ``(B, N)`` clip into ``(B, K, N)``; clips longer than one segment go in windows.

    Args:
        combine: ``(K, S)`` matrix mixing the sources of each window (None: ``K = S``, all sources).
        blend: how overlapping windows combine (``BLENDS``).
        progress: called after each window with (samples done, total samples).
    """
    window_weights(segment_samples, overlap_samples, blend)  # checks the windows and the blend
    total = mix.shape[-1]
    if total <= segment_samples:
        out = combine_sources(backend.separate(mix, prompts), combine)
        if progress is not None:
            progress(total, total)
        return out
    stream = WindowedStream(
        backend,
        prompts,
        mix.shape[0],
        segment_samples=segment_samples,
        overlap_samples=overlap_samples,
        combine=combine,
        blend=blend,
        length=total,
    )
    logger.debug("offline: %d samples in windows of %d, stride %d", total, segment_samples, stream.stride)
    return run_to_end(stream.push, mix, stream.latency_samples, stream.stride, progress)
