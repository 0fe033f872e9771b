"""The backend an engine runs a model with: onnxruntime over exported graphs, or the torch model itself.

A variant with shipped weights runs the graphs shipped beside them (``graph_folder``); any other
variant, and the int8 step graph, is exported once into the user cache, with torch, on first use.
Opening graphs never imports torch: modules that need it (``export``, ``weights``, ``model``) are
imported only when a graph must be exported or torch runs, and without torch installed that step
raises an ``ImportError`` naming the extra to install.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastuss_fx.config import load_variant
from fastuss_fx.export_cache import export_folder, shipped_graph_folder, variant_key
from fastuss_fx.runtime.onnx import OnnxBackend, OnnxStreamingBackend, read_manifest

ENGINES = ("onnx", "onnx-int8", "torch")
"""Inference engines: onnxruntime (default), onnxruntime with the int8 step graph (causal
models), or the torch model itself."""

TORCH_EXTRA = "pip install 'fastuss-fx[torch]'"
"""How to install what exporting and the torch engine need (torch and onnx)."""


def require_torch(what: str, onnx: bool = True) -> None:
    """Raise ``ImportError`` saying that ``what`` needs torch (and onnx, to export) unless installed."""
    needed = ("torch", "onnx") if onnx else ("torch",)
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"{what} needs {' and '.join(missing)}, not installed here: {TORCH_EXTRA}")


def _open(folder: Path, threads: int | None, trained: bool, int8: bool) -> Any:
    cls = OnnxStreamingBackend if read_manifest(folder)["causal"] else OnnxBackend
    return cls(folder, threads=threads, trained=trained, int8=int8)


def graph_folder(variant: str | Path, int8: bool = False) -> tuple[Path, bool]:
    """(folder, trained?) of a variant's exported graphs.

    The shipped graphs when they match the shipped weights (they hold no int8 graph), else the
    user cache, exported with torch on a miss.

    Raises:
        ImportError: the graphs must be exported and torch or onnx is not installed.
    """
    shipped = shipped_graph_folder(variant)
    if shipped is not None and not int8:
        return shipped, True
    name = load_variant(variant).name
    require_torch(
        f"exporting the int8 step graph of {name!r} (only the float graphs ship)"
        if shipped is not None
        else f"exporting the ONNX graphs of {name!r} (none ship for it)"
    )
    key, trained = variant_key(variant)
    folder = export_folder(name, key)
    if not (folder / "manifest.json").is_file():
        from fastuss_fx.export import cached_export  # torch, only to fill the cache
        from fastuss_fx.weights import load_model

        model, trained = load_model(variant)
        cached_export(model, key)
    return folder, trained


@lru_cache(maxsize=8)
def load_onnx_backend(variant: str | Path, threads: int | None = None, int8: bool = False) -> Any:
    """onnxruntime backend for a variant name or variant file (cached per variant, threads, int8).

    Args:
        threads: intra-op threads (``None`` = all available cores; the realtime path passes 1).
        int8: run the int8 step graph (causal variants only).
    """
    folder, trained = graph_folder(variant, int8)
    return _open(folder, threads, trained, int8)


def onnx_backend_for_model(model: Any, threads: int | None = None, trained: bool = True, int8: bool = False) -> Any:
    """onnxruntime backend for an in-memory torch model (exported once per fingerprint; ``model`` is not changed)."""
    from fastuss_fx.export import cached_export

    return _open(cached_export(model), threads, trained, int8)


@lru_cache(maxsize=4)
def load_torch_backend(variant: str | Path) -> Any:
    """Torch backend for a variant name or variant file (cached per variant)."""
    require_torch("engine='torch'", onnx=False)
    from fastuss_fx.model.backend import wrap_model
    from fastuss_fx.weights import load_model

    model, trained = load_model(variant)
    return wrap_model(model, trained=trained)


def torch_backend_for_model(model: Any, trained: bool = True) -> Any:
    """Torch backend over a fused eval copy of an in-memory model (``model`` is not changed)."""
    from fastuss_fx.model.backend import wrap_model

    return wrap_model(model.inference_copy(), trained=trained)
