"""The backend an engine runs a model with: onnxruntime (exporting once, with torch, on a cache
miss) or the torch model itself.

With the graphs in the cache, loading a variant by name reads its config and weights hash and
opens onnxruntime sessions: torch is never imported. Modules that need torch (``export``,
``weights``, ``model``) are imported only when a graph must be exported or torch runs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastuss_fx.config import load_variant
from fastuss_fx.export_cache import export_folder, variant_key
from fastuss_fx.runtime.onnx import OnnxBackend, OnnxStreamingBackend, read_manifest

ENGINES = ("onnx", "onnx-int8", "torch")
"""Inference engines: onnxruntime (default), onnxruntime with the int8 step graph (causal
models), or the torch model itself."""


def _open(folder: Path, threads: int | None, trained: bool, int8: bool) -> Any:
    cls = OnnxStreamingBackend if read_manifest(folder)["causal"] else OnnxBackend
    return cls(folder, threads=threads, trained=trained, int8=int8)


@lru_cache(maxsize=8)
def load_onnx_backend(variant: str | Path, threads: int | None = None, int8: bool = False) -> Any:
    """onnxruntime backend for a variant name or variant file (cached per variant, threads, int8).

    Args:
        threads: intra-op threads (``None`` = all available cores; the realtime path passes 1).
        int8: run the int8 step graph (causal variants only).
    """
    key, trained = variant_key(variant)
    folder = export_folder(load_variant(variant).name, key)
    if not (folder / "manifest.json").is_file():
        from fastuss_fx.export import cached_export  # torch, only to fill the cache
        from fastuss_fx.weights import load_model

        model, trained = load_model(variant)
        cached_export(model, key)
    return _open(folder, threads, trained, int8)


def onnx_backend_for_model(model: Any, threads: int | None = None, trained: bool = True, int8: bool = False) -> Any:
    """onnxruntime backend for an in-memory torch model (exported once per fingerprint; ``model`` is not changed)."""
    from fastuss_fx.export import cached_export

    return _open(cached_export(model), threads, trained, int8)


@lru_cache(maxsize=4)
def load_torch_backend(variant: str | Path) -> Any:
    """Torch backend for a variant name or variant file (cached per variant)."""
    from fastuss_fx.model.backend import wrap_model
    from fastuss_fx.weights import load_model

    model, trained = load_model(variant)
    return wrap_model(model, trained=trained)


def torch_backend_for_model(model: Any, trained: bool = True) -> Any:
    """Torch backend over a fused eval copy of an in-memory model (``model`` is not changed)."""
    from fastuss_fx.model.backend import wrap_model

    return wrap_model(model.inference_copy(), trained=trained)
