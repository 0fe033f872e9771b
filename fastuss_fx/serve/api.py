"""The state and actions behind ``fastuss serve``'s JSON API: uploads, jobs, exports, presets.

``App`` does the work of each route with checked inputs and answers plain dicts (or raises
``HTTPError``); ``app.Handler`` only parses requests and writes answers. Files are only ever
looked up by id or by exact name in a listing, never joined from request text. What it holds is
bounded: the newest ``max_uploads`` uploads, ``max_jobs`` jobs (each with its stems and at most
``jobs.EXPORTS_PER_JOB`` exports) and ``max_processors`` processors; older ones are removed with their files.
"""

from __future__ import annotations

import re
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fastuss_fx.serve.errors import HTTPError, public_message
from fastuss_fx.serve.jobs import Job, JobQueue, mix_stems, read_checked
from fastuss_fx.serve.kept import Kept
from fastuss_fx.serve.prompts import free_preset

__all__ = ["App", "HTTPError", "ServeConfig", "list_folder", "static_files"]

EXPORT_FORMATS = (".wav", ".flac")


@dataclass
class ServeConfig:
    """What a server serves and how; ``folder`` None means uploads only."""

    folder: Path | None = None
    work: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    """Host names answered besides 127.0.0.1, localhost, [::1] and ``host`` (``guard.own_hosts``)."""
    max_upload_bytes: int = 200 * 1024 * 1024
    max_uploads: int = 10
    """Uploads kept (most recently used); an older one is deleted unless a queued or running job reads it."""
    max_jobs: int = 10
    """Jobs kept (most recently used) with their stems and exports; queued and running jobs always stay."""
    max_processors: int = 4
    """Loaded ``FasTUSS`` processors kept for reuse."""
    idle_timeout: float = 60.0
    """Seconds a connection may wait on the client (a browser gone without closing its socket)."""
    engine: str = "onnx"
    model: str | None = None
    allow_untrained: bool = False

    def __post_init__(self) -> None:
        for name in ("max_uploads", "max_jobs", "max_processors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServeConfig.{name} must be a positive integer, got {value!r}")
        self.allowed_hosts = tuple(self.allowed_hosts)


def static_files() -> dict[str, Any]:
    """The page's files by name (the only files ``/static/`` serves)."""
    folder = resources.files("fastuss_fx.serve").joinpath("static")
    return {f.name: f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")}


def list_folder(folder: Path | None) -> dict[str, Path]:
    """Audio files directly in ``folder`` by name (no sub-folders, no links leading out of it)."""
    from fastuss_fx.io import READ_SUFFIXES

    if folder is None:
        return {}
    root = folder.resolve()
    found = {}
    for f in sorted(root.iterdir()):
        if f.suffix.lower() in READ_SUFFIXES and f.is_file() and f.resolve().parent == root:
            found[f.name] = f
    return found


class App:
    """State shared by the request handlers: config, work folder, uploads, jobs and exports."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._own_work = config.work is None
        self.work = Path(config.work or tempfile.mkdtemp(prefix="fastuss-serve-")).resolve()
        for sub in ("uploads", "presets"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.jobs = JobQueue(
            self.work,
            engine=config.engine,
            model=config.model,
            allow_untrained=config.allow_untrained,
            max_jobs=config.max_jobs,
            max_processors=config.max_processors,
        )
        self.uploads: Kept[str, tuple[Path, str]] = Kept(config.max_uploads, pinned=lambda up: self.jobs.reads(up[0]))
        self.saved_presets: dict[str, Path] = {}
        self.lock = threading.Lock()
        self._load_saved_presets()

    def _load_saved_presets(self) -> None:
        """Presets saved by an earlier server on the same ``--work`` folder (invalid files are skipped)."""
        from fastuss_fx.presets import list_presets, load_preset

        for path in sorted((self.work / "presets").glob("*.yaml")):
            try:
                name = load_preset(path).name
            except (ValueError, OSError):
                continue
            if name == path.stem and name not in list_presets():
                self.saved_presets[name] = path

    # -- API ----------------------------------------------------------------------------------

    def presets(self) -> dict[str, Any]:
        """Shipped presets, then the ones saved in this session, each with its YAML text."""
        import yaml

        from fastuss_fx.presets import list_presets, load_preset

        with self.lock:
            saved = dict(self.saved_presets)
        found = [(load_preset(n), False) for n in list_presets()] + [(load_preset(p), True) for p in saved.values()]
        return {
            "presets": [
                {**p.to_dict(), "saved": s, "yaml": yaml.safe_dump(p.to_dict(), sort_keys=False)} for p, s in found
            ]
        }

    def job_preset(self, request: dict[str, Any]) -> tuple[Any, str]:
        """What a job runs, and its name: ``request["preset"]`` (a preset name) or ``request["prompts"]``
        (a free prompt list, checked by the preset schema)."""
        has_preset, has_prompts = request.get("preset") not in (None, ""), request.get("prompts") is not None
        if has_preset == has_prompts:
            raise HTTPError(400, "give either 'preset' (a preset name) or 'prompts' (a list of prompts)")
        if has_preset:
            return self.preset_source(request["preset"]), str(request["preset"])
        try:
            preset = free_preset(request["prompts"])
        except ValueError as err:
            raise HTTPError(400, str(err)) from None
        return preset, preset.name

    def preset_source(self, name: Any) -> str | Path:
        """What ``FasTUSS.from_preset`` gets for a preset name from the page: a shipped name or a saved file."""
        from fastuss_fx.presets import list_presets

        with self.lock:
            saved = self.saved_presets.get(name) if isinstance(name, str) else None
        if saved is not None:
            return saved
        if name not in list_presets():
            raise HTTPError(
                400, f"unknown preset {name!r}; choose from {', '.join(list_presets() + list(self.saved_presets))}"
            )
        return name

    def save_preset(self, request: dict[str, Any]) -> dict[str, Any]:
        """Validate YAML with the preset schema and save it as ``work/presets/NAME.yaml`` (new names only)."""
        from fastuss_fx.atomic import atomic_path
        from fastuss_fx.presets import STEM_NAME, list_presets, parse_preset

        text = request.get("yaml")
        if not isinstance(text, str) or not text.strip():
            raise HTTPError(400, "'yaml' must hold the preset as YAML text")
        try:
            preset = parse_preset(text, "preset", "custom")
        except ValueError as err:
            raise HTTPError(400, str(err)) from None
        name = preset.name
        if not STEM_NAME.match(name) or len(name) > 64:
            raise HTTPError(400, f"preset name {name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
        with self.lock:
            if name in list_presets() or name in self.saved_presets:
                raise HTTPError(409, f"a preset named {name!r} exists; choose another name")
            path = self.work / "presets" / f"{name}.yaml"
            with atomic_path(path) as tmp:
                tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            self.saved_presets[name] = path
        return {"name": name, "url": f"/api/presets/{name}.yaml", "preset": preset.to_dict()}

    def files(self) -> dict[str, Any]:
        return {"files": list(list_folder(self.config.folder))}

    def upload(self, body: bytes, name: str) -> dict[str, Any]:
        """Store an upload under a fresh id and check it decodes; a bad file is deleted and refused."""
        from fastuss_fx.io import READ_SUFFIXES

        if not body:
            raise HTTPError(400, f"{name or 'the upload'} is empty")
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in READ_SUFFIXES else ".wav"  # the decoder goes by suffix; never the name itself
        file_id = uuid.uuid4().hex[:16]
        path = self.work / "uploads" / f"{file_id}{suffix}"
        path.write_bytes(body)
        try:
            audio, rate = read_checked(path)
        except (ValueError, OSError) as err:
            path.unlink(missing_ok=True)
            raise HTTPError(400, f"{name or 'the upload'}: {public_message(err, {path: name or 'upload'})}") from None
        with self.lock:
            dropped = self.uploads.add(file_id, (path, name))
        for old, _ in dropped:
            old.unlink(missing_ok=True)
        return {
            "file": file_id,
            "name": name,
            "rate": rate,
            "channels": audio.shape[0],
            "seconds": audio.shape[-1] / rate,
        }

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        (preset, preset_name), mode = self.job_preset(request), request.get("mode") or None
        if mode not in (None, "offline", "realtime"):
            raise HTTPError(400, f"unknown mode {mode!r}; choose offline or realtime")
        if request.get("file"):
            with self.lock:
                found = self.uploads.get(str(request["file"]))
            if found is None:
                raise HTTPError(404, "no such upload; upload the file again")
            source, label = found
        elif request.get("pick"):
            files = list_folder(self.config.folder)
            name = str(request["pick"])
            if name not in files:
                raise HTTPError(404, f"no audio file named {name!r} in the served folder")
            source, label = files[name], name
            try:
                read_checked(source)
            except (ValueError, OSError) as err:
                raise HTTPError(400, f"{name}: {public_message(err, {source: name})}") from None
        else:
            raise HTTPError(400, "give 'file' (an upload id) or 'pick' (a file name in the folder)")
        try:
            job = self.jobs.submit(source, label, preset, mode, name=preset_name)
        except ValueError as err:
            raise HTTPError(400, public_message(err, {source: label})) from None
        return job.to_dict()

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs.get(job_id)
        except KeyError:
            raise HTTPError(404, f"no job {job_id!r}") from None

    def export(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Mix the job's stems with the given linear gains and write the mix (``{"url", "name"}``)."""
        from fastuss_fx.io import read_audio

        job, suffix = self._done_job(job_id), self._format(request)
        gains = request.get("gains")
        if not isinstance(gains, dict):
            raise HTTPError(400, "'gains' must map stem names to linear gains")
        for name, gain in gains.items():
            if name not in job.stems:
                raise HTTPError(400, f"unknown stem {name!r}; the stems are {job.stems}")
            if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 <= gain <= 16:
                raise HTTPError(400, f"gain of {name!r} must be a number in [0, 16], got {gain!r}")
        stems = {name: read_audio(job.stem_path(name))[0] for name in job.stems}
        return self._write_export(job, mix_stems(stems, gains), "mix", suffix)

    def export_stems(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Write every stem in the export format (``{"files": [{"url", "name"}, ...]}``)."""
        from fastuss_fx.io import read_audio

        job, suffix = self._done_job(job_id), self._format(request)
        return {"files": [self._write_export(job, read_audio(job.stem_path(n))[0], n, suffix) for n in job.stems]}

    def _done_job(self, job_id: str) -> Job:
        job = self.job(job_id)
        if job.state != "done":
            raise HTTPError(409, f"job {job_id} is {job.state}, not done")
        return job

    @staticmethod
    def _format(request: dict[str, Any]) -> str:
        suffix = "." + str(request.get("format", "wav")).lower().lstrip(".")
        if suffix not in EXPORT_FORMATS:
            raise HTTPError(400, f"format must be one of {', '.join(f[1:] for f in EXPORT_FORMATS)}")
        return suffix

    def _write_export(self, job: Job, audio: Any, what: str, suffix: str) -> dict[str, str]:
        """Write into the job's folder with ``fastuss_fx.io`` at the input's rate and bit depth (float
        input to FLAC: 24-bit, as ``fastuss separate`` does); the name comes from the job, never the request."""
        from fastuss_fx.io import write_audio

        name = f"{Path(job.label).stem or 'audio'}_{job.preset}_{what}_{uuid.uuid4().hex[:8]}{suffix}"
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        depth = "24" if job.bit_depth == "32f" and suffix == ".flac" else job.bit_depth
        (job.folder / "exports").mkdir(exist_ok=True)
        path = write_audio(job.folder / "exports" / safe, audio, job.rate, depth)
        with self.lock:
            dropped = job.exports.add(safe, path)
        for old in dropped:
            old.unlink(missing_ok=True)
        return {"url": f"/api/jobs/{job.id}/exports/{safe}", "name": safe}

    def export_file(self, job_id: str, name: str) -> Path:
        """An export of a job by its exact name; 404 when there is none (or it was removed)."""
        with self.lock:
            path = self.job(job_id).exports.get(name)
        if path is None:
            raise HTTPError(404, "no such export")
        return path

    def close(self) -> None:
        self.jobs.shutdown()
        if self._own_work:
            import shutil

            shutil.rmtree(self.work, ignore_errors=True)
