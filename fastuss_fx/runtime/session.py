"""onnxruntime sessions with explicit threading and provider choice."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from fastuss_fx.cpus import available_cpus

logger = logging.getLogger(__name__)


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build and machine offer it, else CPU."""
    available = ort.get_available_providers()
    return (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if "CUDAExecutionProvider" in available
        else ["CPUExecutionProvider"]
    )


def make_session(
    path: str | Path,
    threads: int | None = None,
    providers: list[str] | None = None,
    dimensions: dict[str, int] | None = None,
) -> ort.InferenceSession:
    """An inference session for one graph.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads; ``None`` or 0 = every CPU this process may use (``available_cpus()``).
        providers: execution providers in order of preference (default: ``default_providers()``).
        dimensions: values for the graph's named dynamic axes. With every axis fixed,
            onnxruntime folds the shape arithmetic away (a much smaller graph per call).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX graph not found: {path}")
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all cores), got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cpus()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    for name, size in (dimensions or {}).items():
        options.add_free_dimension_override_by_name(name, size)
    session = ort.InferenceSession(str(path), options, providers=providers or default_providers())
    logger.debug(
        "session %s: %d threads, providers %s", path.name, options.intra_op_num_threads, session.get_providers()
    )
    return session
