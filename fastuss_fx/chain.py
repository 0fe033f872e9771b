"""``Chain``: a list-like container of pedalboard plugins, ``FasTUSS`` processors and other chains.

Native pedalboard containers cannot call Python plugins, so this container runs the stages
itself: consecutive native plugins go through one real ``pedalboard.Pedalboard``; our stages
run between them. Same call contract as a plugin (see ``FasTUSS``).

Streaming (``reset=False``) matches one-shot output when ``buffer_size`` stays the same for
the whole stream: pedalboard re-prepares (and clears) a native plugin whenever a call brings
more samples than any call before, up to ``buffer_size``. So a native group's first streamed
call waits until ``buffer_size`` samples are queued, and the group never sees a chunk of fewer
samples than channels (such a chunk is ambiguous to pedalboard's layout detection).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence
from typing import Any, overload

import numpy as np
import pedalboard

from fastuss_fx.audio import Layout, check_sample_rate, to_channels_first
from fastuss_fx.processor import FasTUSS, _check_buffer_size
from fastuss_fx.runtime.fifo import Fifo


class _NativeGroup:
    """Consecutive native plugins run as one ``pedalboard.Pedalboard``, with a streaming queue."""

    def __init__(self, plugins: list[pedalboard.Plugin]) -> None:
        self.board = pedalboard.Pedalboard(plugins)
        self.reset()

    def reset(self) -> None:
        self.board.reset()
        self.queue: Fifo | None = None
        self.primed = False

    def one_shot(self, audio: np.ndarray, rate: float, buffer_size: int) -> np.ndarray:
        channels, total = audio.shape
        if total == 0:
            return audio
        if 1 < total <= channels:  # pedalboard would read (C, n) with n <= C as (n, C): pad, then trim
            audio = np.pad(audio, ((0, 0), (0, channels + 1 - total)))
        return self.board.process(audio, rate, buffer_size, reset=True)[:, :total]

    def stream(self, audio: np.ndarray, rate: float, buffer_size: int) -> np.ndarray:
        channels = audio.shape[0]
        if self.queue is None:
            self.queue = Fifo((channels,))
        self.queue.push(audio)
        ready = len(self.queue)
        need = max(buffer_size, channels + 1) if not self.primed else (channels + 1 if channels > 1 else 1)
        if ready < need:
            return np.zeros((channels, 0), np.float32)
        self.primed = True
        return self.board.process(self.queue.pop(ready), rate, buffer_size, reset=False)


class Chain(MutableSequence):
    """Run stages in series: native pedalboard plugins, ``FasTUSS`` processors, nested ``Chain``s.

    Use it where ``pedalboard.Pedalboard`` would do: a native board takes native plugins only
    (pybind raises "incompatible constructor arguments" for a ``FasTUSS``). It has the board's
    list API (``append``, ``insert``, ``remove``, ``index``, ``in``, ``len``, iteration, item and
    slice get/set/delete) and a list's (``extend``, ``+=``, ``pop``, ``clear``, ``reverse``,
    ``count``); a change that fails leaves the chain as it was. A stage instance appears once in a
    chain and its nested chains (it holds state), and a chain never contains itself.

    ``latency_samples`` is the sum of the stages' latencies; each stage compensates its own, so
    one-shot output is aligned and has the input's length, and streamed output is aligned and lags by it.
    """

    is_effect = True
    is_instrument = False

    def __init__(self, stages: Iterable[Any] | None = None) -> None:
        self._stages: list[Any] = []
        self.extend(stages or ())
        self._groups: list[Any] | None = None
        self._stream_key: tuple[float, int, int] | None = None
        self._channels_hint: int | None = None
        self._last_layout: Layout | None = None
        self._last_rate: float | None = None

    # -- list interface ---------------------------------------------------------------------

    @staticmethod
    def _check_stage(stage: Any) -> Any:
        if isinstance(stage, (pedalboard.Plugin, FasTUSS, Chain)):
            return stage
        raise TypeError(
            f"a Chain holds pedalboard plugins, FasTUSS processors and Chains, got {type(stage).__name__}: {stage!r}"
        )

    def _changed(self) -> None:
        ids = [id(stage) for stage in self._walk(self)]
        if len(ids) != len(set(ids)):
            raise ValueError("the same plugin instance appears twice in this Chain; use a separate instance per stage")
        self._groups = None
        self._stream_key = None

    def _walk(self, chain: Chain) -> Iterator[Any]:
        """Every stage of ``chain`` and of its nested chains, depth first."""
        for stage in chain._stages:
            if stage is self:
                raise ValueError("a Chain cannot contain itself, directly or through a nested Chain")
            yield stage
            if isinstance(stage, Chain):
                yield from self._walk(stage)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Chain: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Chain(self._stages[index])
        return self._stages[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        old = list(self._stages)
        if isinstance(index, slice):
            self._stages[index] = [self._check_stage(v) for v in value]
        else:
            self._stages[index] = self._check_stage(value)
        self._commit(old)

    def __delitem__(self, index: int | slice) -> None:
        del self._stages[index]
        self._changed()

    def __len__(self) -> int:
        return len(self._stages)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._stages)

    def insert(self, index: int, value: Any) -> None:
        old = list(self._stages)
        self._stages.insert(index, self._check_stage(value))
        self._commit(old)

    def extend(self, values: Iterable[Any]) -> None:
        """Append every stage of ``values``, or none of them if one is refused."""
        checked = [self._check_stage(v) for v in values]
        old = list(self._stages)
        self._stages.extend(checked)
        self._commit(old)

    def reverse(self) -> None:
        self._stages.reverse()
        self._changed()

    def _commit(self, old: list[Any]) -> None:
        try:
            self._changed()
        except ValueError:
            self._stages = old
            self._changed()
            raise

    # -- plugin interface -------------------------------------------------------------------

    @property
    def latency_samples(self) -> int:
        """Total streaming latency of the stages at the last call's sample rate."""
        return self.latency_at(self._last_rate) if self._last_rate else self.latency_at(None)

    def latency_at(self, sample_rate: float | None) -> int:
        """Total streaming latency of the stages at ``sample_rate`` (None: each stage's own rate)."""
        total = 0
        for stage in self._stages:
            if isinstance(stage, (FasTUSS, Chain)):
                total += stage.latency_at(sample_rate) if sample_rate else stage.latency_samples
            else:
                total += int(getattr(stage, "reported_latency_samples", 0) or 0)
        return total

    def reset(self) -> None:
        """Clear the state of every stage."""
        for stage in self._stages:
            stage.reset()
        self._groups = None
        self._stream_key = None

    def process(
        self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192, reset: bool = True
    ) -> np.ndarray:
        """Same contract as ``FasTUSS.process``; keep ``buffer_size`` fixed while streaming."""
        rate = check_sample_rate(sample_rate)
        buffer_size = _check_buffer_size(buffer_size)
        audio, layout = to_channels_first(input_array, channels_hint=self._channels_hint, last=self._last_layout)
        out = self._process_channels_first(audio, rate, reset, buffer_size=buffer_size)
        self._channels_hint, self._last_layout = audio.shape[0], layout
        return layout.restore(out)

    __call__ = process

    def _process_channels_first(
        self, audio: np.ndarray, rate: float, reset: bool, progress: Any = None, *, buffer_size: int = 8192
    ) -> np.ndarray:
        key = (rate, audio.shape[0], buffer_size)
        if reset:
            self.reset()
        elif self._stream_key is not None and self._stream_key != key:
            raise ValueError(
                f"this Chain streams at {self._stream_key[0]:g} Hz, {self._stream_key[1]} channel(s), "
                f"buffer_size={self._stream_key[2]}; got {rate:g} Hz, {audio.shape[0]} channel(s), "
                f"buffer_size={buffer_size}; keep them fixed or call reset()"
            )
        if self._groups is None:
            self._groups = self._group()
        self._last_rate = rate
        if not reset:
            self._stream_key = key
        total = audio.shape[-1]
        if reset and total:
            # A stream is flushed with ``latency`` zeros, so each stage sees what the stages before it
            # make of silence (a reverb's tail, say): give the one-shot stages the same, then trim.
            audio = np.pad(audio, ((0, 0), (0, self.latency_at(rate))))
        for stage in self._groups:
            if isinstance(stage, _NativeGroup):
                audio = stage.one_shot(audio, rate, buffer_size) if reset else stage.stream(audio, rate, buffer_size)
            elif isinstance(stage, Chain):
                audio = stage._process_channels_first(audio, rate, reset, buffer_size=buffer_size)
            elif reset or audio.shape[-1]:
                audio = stage._process_channels_first(audio, rate, reset)
        if reset:
            audio = audio[:, :total]
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _group(self) -> list[Any]:
        groups: list[Any] = []
        natives: list[pedalboard.Plugin] = []
        for stage in self._stages:
            if isinstance(stage, pedalboard.Plugin):
                natives.append(stage)
                continue
            if natives:
                groups.append(_NativeGroup(natives))
                natives = []
            groups.append(stage)
        if natives:
            groups.append(_NativeGroup(natives))
        return groups

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self._stages)
        return f"<fastuss_fx.Chain with {len(self)} stage(s): [{inner}] at {hex(id(self))}>"
