"""The streaming state of an exported causal graph, built from its manifest (numpy only)."""

from __future__ import annotations

import math

import numpy as np

MASKED_KEY_BIAS = -1e9
"""Initial attention key bias: the empty KV cache slots are masked out."""


def _size(dim: int | str, sizes: dict[str, int]) -> int:
    """A manifest dimension: an int, or a product such as ``"batch*sources*57"``."""
    if isinstance(dim, int):
        return dim
    return math.prod(sizes[f] if f in sizes else int(f) for f in dim.split("*"))


def fixed_dimensions(entry: dict, batch: int, sources: int) -> dict[str, int]:
    """Every named dynamic axis of the step graph for one stream shape (for ``make_session``)."""
    sizes = {"batch": batch, "sources": sources}
    names = {d for item in entry["state"] for d in item["shape"] if isinstance(d, str)} | set(sizes)
    return {name: _size(name, sizes) for name in sorted(names)}


def initial_stream_state(
    entry: dict, table: np.ndarray, kinds: np.ndarray, occurrences: np.ndarray
) -> list[np.ndarray]:
    """Start-of-stream state for the step graph.

    Args:
        entry: the manifest's ``streaming`` entry (state names, shapes, initial values).
        table: prompt vectors [kinds, occurrences, K, D] (``prompt_vectors.npy``).
        kinds, occurrences: prompt ids [B, S] (int64).
    """
    sizes = {"batch": kinds.shape[0], "sources": kinds.shape[1]}
    state = []
    for item in entry["state"]:
        if item["initial"] == "prompt table":
            state.append(np.ascontiguousarray(table[kinds, occurrences], dtype=np.float32))
        else:
            fill = MASKED_KEY_BIAS if item["initial"] == "masked" else 0.0
            state.append(np.full([_size(d, sizes) for d in item["shape"]], fill, dtype=item.get("dtype", "float32")))
    return state
