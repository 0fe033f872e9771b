"""Audio arrays at the library's edge: layout detection, input checks, resampling.

Layouts follow pedalboard: a 1-D array is mono ``(N,)``; a 2-D array is ``(C, N)`` or
``(N, C)``, the smaller dimension being the channels. Inside the library audio is always
channels-first float32 ``(C, N)``; :class:`Layout` remembers how to give it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pedalboard import Resample
from pedalboard.io import StreamResampler

MAX_CHANNELS = 8
"""Most channels one call may carry (channels run as one batch through the model)."""

MAX_SAMPLE_RATE = 768_000
RESAMPLE_QUALITY = Resample.Quality.WindowedSinc32


@dataclass(frozen=True)
class Layout:
    """How the caller's array was laid out: ``ndim`` 1 or 2, and whether channels come last."""

    ndim: int
    channels_last: bool = False

    def restore(self, audio: np.ndarray) -> np.ndarray:
        """Channels-first ``(C, n)`` float32 back to the caller's layout."""
        if self.ndim == 1:
            return np.ascontiguousarray(audio[0])
        return np.ascontiguousarray(audio.T if self.channels_last else audio)


def check_sample_rate(sample_rate: float, name: str = "sample_rate") -> float:
    """Return ``sample_rate`` as a float, or raise if it is not a positive finite number."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in Hz, got {sample_rate!r} ({type(sample_rate).__name__})")
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate <= 0 or rate > MAX_SAMPLE_RATE:
        raise ValueError(f"{name} must be in (0, {MAX_SAMPLE_RATE}] Hz, got {sample_rate!r}")
    return rate


def detect_layout(shape: tuple[int, ...], channels_hint: int | None = None, last: Layout | None = None) -> Layout:
    """Layout of an array shape; the channel count and layout seen last settle ties."""
    if len(shape) == 1:
        return Layout(1)
    if len(shape) != 2:
        raise ValueError(f"audio must be 1-D (N,) or 2-D (C, N) / (N, C), got {len(shape)}-D shape {shape}")
    rows, cols = shape
    if rows == cols == channels_hint and last is not None and last.ndim == 2:
        return last
    if channels_hint is not None and rows != cols:
        if rows == channels_hint:
            return Layout(2, channels_last=False)
        if cols == channels_hint:
            return Layout(2, channels_last=True)
    if rows < cols:
        return Layout(2, channels_last=False)
    if cols < rows:
        return Layout(2, channels_last=True)
    if rows == 1:
        return Layout(2, channels_last=False)
    raise ValueError(
        f"cannot tell channels from samples in a square array of shape {shape}; "
        "pass a non-square array first (or a 1-D array for mono)"
    )


def to_channels_first(
    audio: np.ndarray,
    *,
    channels_hint: int | None = None,
    last: Layout | None = None,
    allow_empty: bool = False,
    name: str = "input_array",
) -> tuple[np.ndarray, Layout]:
    """Check a caller's array and return it as C-contiguous float32 ``(C, N)`` plus its layout.

    Raises:
        TypeError: not a numpy array, or not float32/float64.
        ValueError: wrong rank, square shape with no hint, empty, NaN/inf, more than 8 channels.
    """
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(audio).__name__}")
    if audio.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64 audio, got dtype {audio.dtype}; convert integer PCM first")
    layout = detect_layout(audio.shape, channels_hint, last)
    cf = audio[None, :] if layout.ndim == 1 else (audio.T if layout.channels_last else audio)
    channels, samples = cf.shape
    if channels > MAX_CHANNELS:
        raise ValueError(f"{name} has {channels} channels (shape {audio.shape}); at most {MAX_CHANNELS} are supported")
    if channels == 0 or (samples == 0 and not allow_empty):
        raise ValueError(f"{name} is empty (shape {audio.shape}); pass at least one sample")
    finite = np.isfinite(cf)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contains {int((~finite).sum())} NaN/inf value(s), first at channel {bad[0]}, sample {bad[1]}"
        )
    return np.ascontiguousarray(cf, dtype=np.float32), layout


class StreamingResampler:
    """Chunk-invariant sample-rate conversion of a ``(C, n)`` stream (identity when rates match).

    Wraps one ``pedalboard.io.StreamResampler`` per channel (a multichannel one misreads chunks
    shorter than the channel count as interleaved). Its output is aligned with its input and
    starts ``input_latency`` input samples late; fed in chunks it gives the same samples as in
    one call.
    """

    def __init__(
        self, source_rate: float, target_rate: float, channels: int, quality: Resample.Quality = RESAMPLE_QUALITY
    ) -> None:
        self.source_rate, self.target_rate, self.channels = float(source_rate), float(target_rate), channels
        self.quality = quality
        self._inner: list[StreamResampler] = []
        self.reset()

    @property
    def identity(self) -> bool:
        return self.source_rate == self.target_rate

    @property
    def input_latency(self) -> float:
        """Input samples held back before output starts (0 for the identity)."""
        return float(self._inner[0].input_latency) if self._inner else 0.0

    def reset(self) -> None:
        self._inner = []
        if not self.identity:
            self._inner = [
                StreamResampler(self.source_rate, self.target_rate, 1, self.quality) for _ in range(self.channels)
            ]

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Feed ``(C, n)`` float32, get the next resampled ``(C, m)`` samples."""
        if not self._inner:
            return audio
        audio = np.asarray(audio, dtype=np.float32)
        return np.concatenate([r.process(np.ascontiguousarray(audio[c : c + 1])) for c, r in enumerate(self._inner)])


def fit_headroom(audio: np.ndarray, ceiling_db: float = -1.0) -> tuple[np.ndarray, float]:
    """Scale a whole clip down so its sample peak sits at ``ceiling_db`` dBFS, if it is above.

    Returns the clip and the gain applied in dB (0.0 when it already fits). One gain for the
    whole clip: no distortion, no latency, the balance of the mix kept.
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    ceiling = 10 ** (ceiling_db / 20)
    if peak <= ceiling:
        return audio, 0.0
    return (audio * np.float32(ceiling / peak)).astype(np.float32), 20 * math.log10(ceiling / peak)


def resampled_length(num_samples: int, source_rate: float, target_rate: float) -> int:
    """Length of a whole clip after resampling (rounded to the nearest sample)."""
    return int(round(num_samples * target_rate / source_rate))


def resample(
    audio: np.ndarray,
    source_rate: float,
    target_rate: float,
    num_samples: int | None = None,
    quality: Resample.Quality = RESAMPLE_QUALITY,
) -> np.ndarray:
    """Resample a whole ``(C, N)`` clip; the result is aligned and has ``num_samples`` samples.

    The clip is followed by zeros (not flushed) so the result equals what a stream fed the same
    clip and then silence would give, which keeps one-shot and streaming output identical.
    """
    if num_samples is None:
        num_samples = resampled_length(audio.shape[-1], source_rate, target_rate)
    if source_rate == target_rate:
        out = audio
    else:
        resampler = StreamingResampler(source_rate, target_rate, audio.shape[0], quality)
        pad = int(math.ceil(resampler.input_latency + 4 + 2 * source_rate / target_rate))
        parts = [resampler.process(audio)]
        got = parts[0].shape[-1]
        while got < num_samples:
            parts.append(resampler.process(np.zeros((audio.shape[0], pad), np.float32)))
            got += parts[-1].shape[-1]
        out = np.concatenate(parts, axis=-1)
    if out.shape[-1] < num_samples:
        out = np.pad(out, ((0, 0), (0, num_samples - out.shape[-1])))
    return np.ascontiguousarray(out[:, :num_samples], dtype=np.float32)
