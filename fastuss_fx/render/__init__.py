"""Batch rendering on Ray (``fastuss render``): plan jobs, keep a resumable manifest, run workers.

- ``inputs``: folders, globs and files -> ``(source, relative path)`` pairs and output paths.
- ``manifest``: the JSON record in the output folder that makes a rerun skip finished inputs.
- ``weights_id``: which weights a render ran (the manifest keeps it; new weights re-render).
- ``lock``: one driver per output folder (``flock`` on ``OUT/.render.lock``).
- ``worker``: one job on one processor (no Ray); the Ray actor wraps it.
- ``runner``: the driver: locks the folder, exports the graphs once, starts or joins Ray,
  dispatches jobs, records results, reports progress.

Only ``runner`` imports Ray, and only when it runs.
"""

from fastuss_fx.render.inputs import expand_inputs
from fastuss_fx.render.lock import LOCK_NAME, RenderLocked, render_lock
from fastuss_fx.render.manifest import MANIFEST_NAME, Manifest
from fastuss_fx.render.runner import RenderSummary, render
from fastuss_fx.render.weights_id import weights_hash
from fastuss_fx.render.worker import Job, Settings

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "Job",
    "Manifest",
    "RenderLocked",
    "RenderSummary",
    "Settings",
    "expand_inputs",
    "render",
    "render_lock",
    "weights_hash",
]
