"""When a run stops stepping: its wall-time budget runs low, or SIGTERM / SIGINT arrives.

``TimeBudget`` keeps the end of a run (final evaluation, checkpoint, averaged and EMA weights)
inside the budget: it measures steps, evaluations and saves as they happen and says stop when
one more step (plus the evaluation due after it) would leave too little time for that end work,
and estimates how many steps still fit (``steps_left``: the learning-rate schedule's horizon).
``StopSignals`` turns the signals into a flag that the loop checks after every step, so the
step in flight completes and ``last.pt`` is written before the process exits.
"""

from __future__ import annotations

import math
import signal
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

END_EVALUATIONS = 2
"""Evaluations the end work may run: the final weights and the averaged ones."""
END_SAVES = 5
"""Files the end work writes or reads: ``last.pt`` twice, a ``best/`` snapshot, ``averaged.*``, ``ema.safetensors``."""
SAFETY = 1.5
"""Measured evaluation and save times are scaled by this (on a busy machine one evaluation took 1.65x
the one before it)."""


class TimeBudget:
    """A wall-time budget of ``minutes`` that starts now (``minutes <= 0``: unlimited)."""

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = 60.0 * minutes if minutes > 0 else 0.0
        self.clock, self.start = clock, clock()
        self.steps: deque[float] = deque(maxlen=16)
        self.steady: deque[float] = deque(maxlen=16)  # without the session's first step (it may compile)
        self.session_steps = 0
        self.eval_s: float | None = None
        self.save_s = 1.0

    @property
    def limited(self) -> bool:
        return self.seconds > 0

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed() if self.limited else float("inf")

    def observe_step(self, seconds: float) -> None:
        self.steps.append(seconds)
        if self.session_steps:
            self.steady.append(seconds)
        self.session_steps += 1

    def typical_step(self) -> float | None:
        """The median step time (this session's first step left out), None before one is known."""
        return statistics.median(self.steady) if self.steady else None

    def observe_eval(self, seconds: float) -> None:
        self.eval_s = seconds if self.eval_s is None else max(seconds, 0.5 * (self.eval_s + seconds))

    def observe_save(self, seconds: float) -> None:
        self.save_s = max(seconds, 0.5 * (self.save_s + seconds))

    def reserve(self) -> float:
        """Seconds kept for the end work: evaluations, saves, and a margin of 1 % of the budget."""
        return SAFETY * (END_EVALUATIONS * (self.eval_s or 0.0) + END_SAVES * self.save_s) + 0.01 * self.seconds

    def should_stop(self, eval_next: bool = False) -> bool:
        """Whether to stop before the next step (``eval_next``: an evaluation is due after it)."""
        if not self.limited:
            return False
        step = max(self.steps, default=0.0)
        need = step + (SAFETY * (self.eval_s or 0.0) if eval_next else 0.0) + self.reserve()
        return self.elapsed() + need > self.seconds

    def steps_left(self, eval_every: int = 0, eval_minutes: float = 0.0) -> float:
        """About how many more steps fit before stepping must stop: the time left after the end work,
        less the share that evaluations every ``eval_every`` steps or ``eval_minutes`` minutes take,
        over the typical step time (inf without a budget or before a step time is known)."""
        step_s = self.typical_step()
        if not self.limited or step_s is None:
            return math.inf
        evaluation = self.eval_s or 0.0
        left = self.seconds - self.elapsed() - self.reserve()
        if eval_minutes > 0:
            left *= 60.0 * eval_minutes / (60.0 * eval_minutes + evaluation)
        per_step = step_s + (evaluation / eval_every if eval_every > 0 else 0.0)
        return max(left, 0.0) / per_step

    def state_dict(self) -> dict[str, Any]:
        """The measured costs (a resumed run starts from them)."""
        return {"eval_s": self.eval_s, "save_s": self.save_s, "step_s": list(self.steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.eval_s, self.save_s = state["eval_s"], state["save_s"]
        self.steps.extend(state["step_s"])
        self.steady.extend(state["step_s"])


class StopSignals:
    """Context manager: SIGTERM and SIGINT set ``signum`` instead of killing the process.

    A second signal of the same kind acts as usual (the old handler is back after the first), so
    a stuck run can still be stopped. Outside the main thread (where Python cannot install
    handlers) it does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    def __bool__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        signal.signal(signum, _handler_or_default(self._previous.get(signum)))

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, _handler_or_default(handler))
        self._previous.clear()


def _handler_or_default(handler: Any) -> Any:
    return signal.SIG_DFL if handler is None else handler  # None: a handler Python did not install


def ignore_stop_signals(worker_id: int = 0) -> None:
    """``worker_init_fn`` for data workers: the main process alone handles SIGTERM / SIGINT
    (a signal sent to the whole process group must not kill the workers under it)."""
    for signum in StopSignals.SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
