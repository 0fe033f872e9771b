"""One render job on one processor; the Ray actor is a thin wrapper around ``Worker``.

Nothing here imports Ray: the runner turns ``Worker`` into an actor, so each Ray worker builds
its own processor (pedalboard plugins are not picklable) and loads the model once.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastuss_fx.presets import Preset


@dataclass(frozen=True)
class Settings:
    """What a worker builds its processor from (plain data, picklable)."""

    preset: Preset
    mode: str | None = None
    model: str | None = None
    engine: str = "onnx"
    threads: int = 1
    allow_untrained: bool = False

    def overrides(self) -> dict[str, str]:
        return {k: v for k, v in (("mode", self.mode), ("model", self.model)) if v is not None}

    def record(self) -> dict[str, Any]:
        """The settings as the manifest stores them: a rerun with other settings redoes the work."""
        untrained = {"allow_untrained": True} if self.allow_untrained else {}
        return {"preset": self.preset.to_dict(), **self.overrides(), "engine": self.engine, **untrained}

    def build(self) -> Any:
        """The processor ``fastuss separate`` would build for the same preset, overrides and engine."""
        from fastuss_fx.processor import FasTUSS

        return FasTUSS.from_preset(
            self.preset,
            engine=self.engine,
            threads=self.threads,
            allow_untrained=self.allow_untrained,
            **self.overrides(),
        )


@dataclass(frozen=True)
class Job:
    """One input and where its output(s) go: ``{"mix": path}``, or one path per stem."""

    key: str
    source: str
    outputs: dict[str, str] = field(default_factory=dict)
    stems: bool = False


def run_job(processor: Any, job: Job) -> dict[str, Any]:
    """Render ``job``; never raises for a bad input, it returns ``status: failed`` with the error."""
    from fastuss_fx.io import headroom_for, read_audio, write_audio

    start = time.perf_counter()
    try:
        audio, rate = read_audio(job.source)
        if job.stems:
            results = processor.separate(audio, rate)
        else:
            results = {"mix": processor.process(audio, rate)}
        for name, target in job.outputs.items():
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            headroom_db = None if job.stems else headroom_for(processor.mix)  # as ``fastuss separate``/``stems``
            write_audio(target, results[name], rate, like=job.source, headroom_db=headroom_db)
    except Exception as err:  # one bad input must not stop the batch: record it instead
        return {
            "key": job.key,
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "audio_seconds": 0.0,
            "elapsed_s": time.perf_counter() - start,
        }
    return {
        "key": job.key,
        "status": "done",
        "error": None,
        "audio_seconds": audio.shape[-1] / rate,
        "elapsed_s": time.perf_counter() - start,
    }


class Worker:
    """Builds the processor and loads its model once, then renders jobs one at a time."""

    def __init__(self, settings: Settings) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.processor = settings.build()
            _ = self.processor.backend  # load the model now, not on the first job
        self.warnings = sorted({str(w.message) for w in caught})

    def ready(self) -> list[str]:
        """Warnings raised while building (the driver shows them once)."""
        return self.warnings

    def run(self, job: Job) -> dict[str, Any]:
        return run_job(self.processor, job)
