"""Separation jobs for ``fastuss serve``: a queue, one worker thread, progress, cancel and a cache.

A job reads its input with ``fastuss_fx.io.read_audio``, runs ``FasTUSS.from_preset(...).separate``
(the code path of ``fastuss stems``) and writes every stem, and the original, as WAV into its own
folder under the work folder. Jobs run one at a time, in order; results are cached per
(file hash, preset or prompts, mode, model, engine), so the same request twice reuses the first job.
The queue keeps the ``max_jobs`` most recently used jobs (a job's folder, with its stems and exports,
goes with it; queued and running jobs always stay) and ``max_processors`` processors.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastuss_fx.presets import Preset
from fastuss_fx.pretrained import file_sha256
from fastuss_fx.serve.errors import public_message
from fastuss_fx.serve.kept import Kept
from fastuss_fx.serve.prompts import preset_key

logger = logging.getLogger(__name__)

EXPORTS_PER_JOB = 16
"""Export files kept per job (the newest; two rounds of "export all stems" of 8 stems)."""
ACTIVE = ("queued", "running")


class Cancelled(Exception):
    """Raised inside a job's progress callback when the job was cancelled."""


@dataclass
class Job:
    """One separation request and what became of it (``state``: queued, running, done, failed, cancelled)."""

    id: str
    source: Path
    label: str
    preset: str
    mode: str | None
    folder: Path
    state: str = "queued"
    progress: float = 0.0
    error: str = ""
    stems: list[str] = field(default_factory=list)
    rate: float = 0.0
    channels: int = 0
    seconds: float = 0.0
    model: str = ""
    prompts: list[str] = field(default_factory=list)
    preset_source: Any = ""
    bit_depth: str = "32f"
    """The input's bit depth (``fastuss_fx.io.source_bit_depth``), read when the job runs: exports keep it."""
    exports: Kept[str, Path] = field(default_factory=lambda: Kept(EXPORTS_PER_JOB))
    cancel: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "preset": self.preset,
            "mode": self.mode,
            "state": self.state,
            "progress": round(self.progress, 4),
            "error": self.error,
            "stems": self.stems,
            "rate": self.rate,
            "channels": self.channels,
            "seconds": round(self.seconds, 3),
            "model": self.model,
            "prompts": self.prompts,
        }

    def stem_path(self, name: str) -> Path:
        """The WAV of stem ``name`` (or ``"original"``); KeyError for a name the job did not write."""
        if self.state != "done" or (name not in self.stems and name != "original"):
            raise KeyError(name)
        return self.folder / f"{name}.wav"


def read_checked(path: Path) -> tuple[np.ndarray, float]:
    """Read audio for a job: ``fastuss_fx.io.read_audio`` plus a clear error for NaN/inf samples."""
    from fastuss_fx.io import read_audio

    audio, rate = read_audio(path)
    if not np.isfinite(audio).all():
        raise ValueError("the file holds NaN or infinite samples; it cannot be separated")
    return audio, rate


def mix_stems(stems: dict[str, np.ndarray], gains: dict[str, float]) -> np.ndarray:
    """Sum of ``stems`` weighted by linear ``gains`` (stems without a gain are left out)."""
    first = next(iter(stems.values()))
    out = np.zeros_like(first, dtype=np.float64)
    for name, audio in stems.items():
        gain = float(gains.get(name, 0.0))
        if gain:
            out += gain * audio.astype(np.float64)
    return out.astype(np.float32)


class JobQueue:
    """Runs jobs on one worker thread; ``submit`` returns at once, ``get`` reports progress.

    Args:
        work: folder for job outputs (``work/jobs/<id>/``).
        engine, model, allow_untrained: passed to ``FasTUSS.from_preset`` for every job
            (``model=None`` keeps the preset's choice).
        max_jobs: jobs kept (most recently used first); an older one is forgotten and its folder removed.
        max_processors: ``FasTUSS`` processors kept for reuse (one per preset or prompt list and mode).
    """

    def __init__(
        self,
        work: Path,
        engine: str = "onnx",
        model: str | None = None,
        allow_untrained: bool = False,
        max_jobs: int = 10,
        max_processors: int = 4,
    ) -> None:
        self.folder = work / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.engine, self.model, self.allow_untrained = engine, model, allow_untrained
        self._jobs: Kept[str, Job] = Kept(max_jobs, pinned=lambda job: job.state in ACTIVE)
        self._cache: dict[tuple[str, ...], str] = {}
        self._processors: Kept[tuple[str, str | None], Any] = Kept(max_processors)
        self._lock = threading.Lock()
        self._plock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        # a daemon thread: stopping the server never waits for a separation to finish
        self._worker = threading.Thread(target=self._work, name="fastuss-serve-jobs", daemon=True)
        self._worker.start()

    def processor(self, preset: str | Path | Preset, mode: str | None) -> Any:
        """A ``FasTUSS`` for ``preset`` (kept, so models load once); raises ValueError for bad presets."""
        from fastuss_fx.processor import FasTUSS

        key = (preset_key(preset), mode)
        with self._plock:
            kept = self._processors.get(key)
            if kept is not None:
                return kept
            overrides: dict[str, Any] = {"engine": self.engine, "allow_untrained": self.allow_untrained}
            if mode is not None:
                overrides["mode"] = mode
            if self.model is not None:
                overrides["model"] = self.model
            processor = FasTUSS.from_preset(preset, **overrides)
            self._processors.add(key, processor)  # a job holds its own reference to a dropped one
            return processor

    def submit(
        self, source: Path, label: str, preset: str | Path | Preset, mode: str | None = None, name: str | None = None
    ) -> Job:
        """Queue a job (or return the cached one for the same file, preset and model).

        ``preset`` is a shipped preset's name, a preset file (whose content must not change) or a
        ``Preset`` (free prompts); ``name`` is what the page calls it.
        """
        processor = self.processor(preset, mode)  # bad preset/mode: ValueError now, not in the worker
        key = (file_sha256(source), preset_key(preset), processor.mode, processor.model_name, self.engine)
        with self._lock:
            cached = self._jobs.get(self._cache.get(key, ""))
            if cached is not None and cached.state in ("queued", "running", "done"):
                return cached
            job_id = uuid.uuid4().hex[:16]
            job = Job(
                job_id,
                source,
                label,
                name or str(preset),
                mode,
                self.folder / job_id,
                model=processor.model_name,
                prompts=list(processor.prompts),
                preset_source=preset,
            )
            self._keep(job)
            self._cache[key] = job_id
        self._queue.put(job)
        return job

    def add_result(
        self, stems: dict[str, np.ndarray], rate: float, original: np.ndarray | None = None, label: str = "notebook"
    ) -> Job:
        """A finished job from stems already separated (``(C, N)`` each; ``original`` defaults to their sum)."""
        from fastuss_fx.io import write_audio

        if not stems:
            raise ValueError("no stems to show")
        arrays = {name: np.atleast_2d(np.asarray(a, np.float32)) for name, a in stems.items()}
        mix = np.atleast_2d(np.asarray(original if original is not None else sum(arrays.values()), np.float32))
        job_id = uuid.uuid4().hex[:16]
        folder = self.folder / job_id
        folder.mkdir(parents=True)
        original_path = write_audio(folder / "original.wav", mix, rate)  # the job's source: float, 32-bit
        job = Job(
            job_id,
            original_path,
            label,
            "custom",
            None,
            folder,
            rate=float(rate),
            channels=mix.shape[0],
            seconds=mix.shape[-1] / rate,
            model="given",
        )
        for name, audio in arrays.items():
            write_audio(job.folder / f"{name}.wav", audio, rate)
        job.stems, job.progress, job.state = list(arrays), 1.0, "done"
        with self._lock:
            self._keep(job)
        return job

    def _keep(self, job: Job) -> None:
        """Add a job (lock held); forget the least recently used ones past ``max_jobs``, with their files."""
        for old in self._jobs.add(job.id, job):
            self._cache = {key: job_id for key, job_id in self._cache.items() if job_id != old.id}
            shutil.rmtree(old.folder, ignore_errors=True)
            logger.debug("forgot job %s (%s)", old.id, old.label)

    def get(self, job_id: str) -> Job:
        """The job with this id; KeyError if there is none (or it was forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def reads(self, path: Path) -> bool:
        """Whether a queued or running job reads ``path`` (so it must stay)."""
        with self._lock:
            return any(job.source == path and job.state in ACTIVE for job in self._jobs.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancel.set()
        if job.state == "queued":
            job.state = "cancelled"
        return job

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every job; wait up to ``timeout`` s for the worker (a job cancels at its next progress step)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
        self._queue.put(None)
        self._worker.join(timeout)

    def busy(self) -> bool:
        """Whether the worker thread is still running (a separation that has not reached a progress step)."""
        return self._worker.is_alive()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        from fastuss_fx.io import write_audio

        if job.cancel.is_set():
            job.state = "cancelled"
            return
        job.state = "running"
        try:
            from fastuss_fx.io import source_bit_depth

            audio, rate = read_checked(job.source)
            job.bit_depth = source_bit_depth(job.source)
            job.rate, job.channels, job.seconds = rate, audio.shape[0], audio.shape[-1] / rate
            processor = self.processor(job.preset_source, job.mode)

            def progress(done: int, total: int) -> None:
                if job.cancel.is_set():
                    raise Cancelled
                job.progress = 0.95 * done / max(total, 1)

            stems = processor.separate(audio, rate, progress=progress)
            if job.cancel.is_set():
                raise Cancelled
            job.folder.mkdir()  # not parents: after close() removed the work folder, nothing is made again
            write_audio(job.folder / "original.wav", audio, rate)
            for name, stem in stems.items():
                write_audio(job.folder / f"{name}.wav", stem, rate)
            job.stems = list(stems)
            job.progress, job.state = 1.0, "done"
        except Cancelled:
            job.state = "cancelled"
            shutil.rmtree(job.folder, ignore_errors=True)
        except Exception as err:  # noqa: BLE001 -- any failure is reported to the page; the server keeps serving
            logger.warning("job %s on %s failed", job.id, job.source, exc_info=True)  # the full story stays here
            job.error = public_message(err, {job.source: job.label})  # the page gets no server paths
            job.state = "failed"
            shutil.rmtree(job.folder, ignore_errors=True)
