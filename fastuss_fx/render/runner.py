"""The render driver: plan jobs against the manifest, run them on Ray actors, record every result."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastuss_fx.cpus import available_cpus
from fastuss_fx.outputs import mix_output, output_folder, stem_outputs
from fastuss_fx.render.inputs import expand_inputs
from fastuss_fx.render.lock import render_lock
from fastuss_fx.render.manifest import Manifest, fingerprint
from fastuss_fx.render.weights_id import weights_hash
from fastuss_fx.render.worker import Job, Settings, Worker

logger = logging.getLogger(__name__)

SAVE_INTERVAL_S = 1.0
"""Rewrite the manifest at most this often while results arrive (and always at the end)."""
JOBS_PER_WORKER = 2
"""Jobs queued on each actor, so a worker never idles waiting for the driver."""


@dataclass
class RenderSummary:
    """What a render run did; ``failures`` pairs each failed input with its error."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    left: int = 0
    workers: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    startup_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    manifest: Path | None = None

    @property
    def audio_hours_per_hour(self) -> float:
        """Throughput: hours of audio rendered per hour of wall-clock time (0 if nothing ran)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def output_paths(rel: Path, preset_name: str, stem_names: Sequence[str] | None) -> dict[str, Path]:
    """Outputs of one input, relative to the output folder, named as ``fastuss separate``/``stems`` name them."""
    return {"mix": mix_output(rel, preset_name)} if stem_names is None else stem_outputs(rel, stem_names)


def plan(
    sources: list[tuple[Path, Path]],
    out_dir: Path,
    settings: Settings,
    preset_name: str,
    stem_names: Sequence[str] | None,
    manifest: Manifest,
    overwrite: bool = False,
    weights: str | None = None,
) -> tuple[list[Job], int]:
    """Jobs still to do (marked ``pending`` in the manifest) and the number skipped as done.

    An input counts as done only if it was rendered with the same settings and ``weights``
    (see ``weights_hash``): new weights re-render everything.

    Raises:
        FileExistsError: an output exists that no earlier run of this input wrote (without ``overwrite``).
    """
    from fastuss_fx.io import check_output

    kind = preset_name + ("+stems" if stem_names is not None else "")
    jobs, skipped = [], 0
    for source, rel in sources:
        source = source.resolve()
        key = f"{kind}:{source}"
        outputs = {name: str(p) for name, p in output_paths(rel, preset_name, stem_names).items()}
        record = {
            "input": str(source),
            **fingerprint(source),
            "settings": settings.record(),
            "weights": weights,
            "outputs": sorted(outputs.values()),
        }
        if not overwrite and manifest.is_done(key, record, out_dir):
            skipped += 1
            continue
        for out in outputs.values():
            check_output(out_dir / out, [source], overwrite or manifest.owns(key, out))
        manifest.set(key, **record, preset=preset_name, status="pending", error=None)
        targets = {name: str(out_dir / out) for name, out in outputs.items()}
        jobs.append(Job(key, str(source), targets, stems=stem_names is not None))
    return jobs, skipped


def render(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    preset: str | Path,
    *,
    stems: bool = False,
    mode: str | None = None,
    model: str | None = None,
    engine: str = "onnx",
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    overwrite: bool = False,
    limit: int | None = None,
    progress: bool = True,
    allow_untrained: bool = False,
) -> RenderSummary:
    """Render every input with ``preset`` into ``out_dir`` on Ray; resumable through the manifest.

    Args:
        inputs: folders (recursive), globs or files; outputs mirror their relative paths.
        out_dir: output folder; holds the manifest (``fastuss-render.json``) and, during the run,
            the lock (``.render.lock``) that keeps a second driver out.
        preset: shipped preset name or preset file; ``mode``/``model`` override it.
        stems: write one folder of stems per input instead of the processed mix.
        engine: ``"onnx"``, ``"onnx-int8"`` or ``"torch"``, as for ``FasTUSS``. The ONNX graphs are
            exported once, here, before the workers start (into this machine's cache; workers on
            other machines export into theirs unless ``FASTUSS_CACHE`` is shared).
        address: Ray cluster to join (``None``: a local Ray on this machine, or the one already
            running in this process). Inputs and ``out_dir`` must be visible to every node.
        workers: Ray actors (default: all CPUs Ray offers, divided by ``threads``).
        threads: onnxruntime threads (and Ray CPUs) per worker.
        limit: render at most this many pending inputs, leaving the rest for a rerun.
        allow_untrained: run a model without trained weights (see ``FasTUSS``).

    Raises:
        ValueError, FileNotFoundError, FileExistsError: bad arguments, found before any work starts.
        RenderLocked: another driver is rendering into ``out_dir``.
        RuntimeError: the Ray workers could not start.
    """
    from fastuss_fx.presets import load_preset

    start = time.perf_counter()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    out = output_folder(Path(out_dir)).resolve()
    if model is not None and Path(model).is_file():
        model = str(Path(model).resolve())  # workers may run elsewhere
    settings = Settings(
        load_preset(preset), mode=mode, model=model, engine=engine, threads=threads, allow_untrained=allow_untrained
    )
    processor = settings.build()  # checks the overrides and the engine; the model loads lazily
    stem_names = processor.stems if stems else None
    sources = expand_inputs(list(inputs), exclude=out)
    with render_lock(out):
        manifest = Manifest.load(out)
        weights = weights_hash(processor.model)
        jobs, skipped = plan(sources, out, settings, Path(preset).stem, stem_names, manifest, overwrite, weights)
        manifest.save()
        todo = jobs if limit is None else jobs[: max(0, limit)]
        summary = RenderSummary(skipped=skipped, left=len(jobs) - len(todo), manifest=manifest.path)
        if todo:
            warm_export(processor)
            _run_on_ray(todo, settings, manifest, summary, address, workers, threads, progress)
    summary.wall_seconds = time.perf_counter() - start
    return summary


def warm_export(processor: Any) -> None:
    """Export the processor's ONNX graphs into the cache now, once, so workers starting together
    only load them (instead of each exporting the same graphs). Nothing to do for ``engine="torch"``.

    Warnings (untrained weights) are left to the workers, which report them once.
    """
    if processor.engine == "torch":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ = processor.backend  # builds (and caches) the exported graphs


def _run_on_ray(
    jobs: list[Job],
    settings: Settings,
    manifest: Manifest,
    summary: RenderSummary,
    address: str | None,
    workers: int | None,
    threads: int,
    progress: bool,
) -> None:
    try:
        import ray
    except ImportError:
        raise RuntimeError("fastuss render needs Ray: pip install 'fastuss-fx[render]'") from None
    from tqdm import tqdm

    started = _ray_init(address, workers, threads)
    actors: list[Any] = []
    try:
        begin = time.perf_counter()
        cpus = ray.cluster_resources().get("CPU", 0)
        count = _worker_count(cpus, workers, threads, len(jobs))
        # A worker killed mid-job (e.g. by Ray's out-of-memory monitor) restarts and retries the job;
        # an input that keeps killing its worker is recorded as failed after the retries.
        actor_cls = ray.remote(num_cpus=threads, max_restarts=4, max_task_retries=2)(Worker)
        actors = [actor_cls.remote(settings) for _ in range(min(count, len(jobs)))]
        try:
            warned = ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as err:
            raise RuntimeError(f"render workers could not start: {_ray_message(err)}") from None
        for message in sorted({m for w in warned for m in w}):
            logger.warning("%s", message)
        summary.workers, summary.startup_seconds = len(actors), time.perf_counter() - begin
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        logger.info(
            "%d workers of %d threads ready in %.1f s on a Ray cluster of %g CPUs on %d nodes",
            len(actors),
            threads,
            summary.startup_seconds,
            cpus,
            nodes,
        )
        queue, inflight = deque(jobs), {}

        def submit(actor: Any) -> None:
            if queue:
                job = queue.popleft()
                inflight[actor.run.remote(job)] = (job, actor)

        for actor in actors:
            for _ in range(JOBS_PER_WORKER):
                submit(actor)
        with tqdm(
            total=len(jobs), unit="file", desc="render", disable=None if progress else True, file=sys.stderr
        ) as bar:
            while inflight:
                (ref,), _ = ray.wait(list(inflight), num_returns=1)
                job, actor = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died on this input
                    result = {"key": job.key, "status": "failed", "error": _ray_message(err), "audio_seconds": 0.0}
                _record(result, job, manifest, summary)
                submit(actor)
                bar.update(1)
                hours = summary.audio_seconds / 3600
                bar.set_postfix_str(
                    f"{hours:.3f} audio h, {hours * 3600 / max(bar.format_dict['elapsed'], 1e-3):.1f} audio h/h"
                )
    finally:
        summary.left += sum(manifest.entries[j.key].get("status") == "pending" for j in jobs)  # if interrupted
        manifest.save()
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def _worker_count(cpus: float, workers: int | None, threads: int, jobs: int) -> int:
    """Actors to start: as asked (or as many as fit), never more than fit or than there are jobs."""
    fit = int(cpus // threads)
    if fit < 1:
        raise RuntimeError(f"the Ray cluster offers {cpus:g} CPUs; a worker needs threads={threads}")
    if workers is not None and workers > fit:
        logger.warning("only %d workers of %d threads fit in %g Ray CPUs; using %d", fit, threads, cpus, fit)
    return max(1, min(workers or fit, fit, jobs))


def _record(result: dict[str, Any], job: Job, manifest: Manifest, summary: RenderSummary) -> None:
    manifest.set(job.key, status=result["status"], error=result["error"], audio_seconds=result["audio_seconds"])
    if result["status"] == "done":
        summary.done += 1
        summary.audio_seconds += result["audio_seconds"]
        logger.info("%s done (%.1f s audio in %.1f s)", job.source, result["audio_seconds"], result.get("elapsed_s", 0))
    else:
        summary.failed += 1
        summary.failures.append((job.source, result["error"]))
        logger.info("%s failed: %s", job.source, result["error"])  # the summary lists every failure
    manifest.save(min_interval_s=SAVE_INTERVAL_S)


def _ray_init(address: str | None, workers: int | None, threads: int) -> bool:
    """Start (or join) Ray unless this process already did; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }  # worker output stays out of the CLI's
    if address:
        ray.init(address=address, **quiet)
    else:
        cpus = (workers or available_cpus()) * threads
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
    return True


def _ray_message(err: Exception) -> str:
    """The last line of a Ray error (its traceback stays out of the summary)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
