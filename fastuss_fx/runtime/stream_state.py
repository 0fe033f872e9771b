"""The streaming state of an exported causal graph, built from its manifest (numpy only)."""

from __future__ import annotations

import math
from pathlib import Path

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


class PromptState:
    """What the prompts fix in a stream's start state, for one exported folder: gathered from the
    table ``prompt_vectors.npy`` [kinds, occurrences, K, D] (each prompt alone), or computed by the
    prompt graph ``prompts.onnx`` (task-aware models: the whole prompt list at once)."""

    def __init__(self, entry: dict, folder: str | Path) -> None:
        folder = Path(folder)
        self.table = np.load(folder / entry["prompt_vectors_file"]) if "prompt_vectors_file" in entry else None
        self.session = None
        if "prompt_file" in entry:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            path = str(folder / entry["prompt_file"])
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, kinds: np.ndarray, occurrences: np.ndarray) -> dict[str, np.ndarray]:
        """Prompt ids [B, S] -> {state name: initial value}."""
        if self.session is not None:
            feeds = {"kinds": kinds, "occurrences": occurrences}
            names = [o.name for o in self.session.get_outputs()]
            inputs = {i.name for i in self.session.get_inputs()}
            values = self.session.run(None, {k: v for k, v in feeds.items() if k in inputs})
            return dict(zip(names, values, strict=True))
        assert self.table is not None, "an export has a prompt table or a prompt graph"
        return {"prompt_vectors": np.ascontiguousarray(self.table[kinds, occurrences], dtype=np.float32)}


def initial_stream_state(
    entry: dict, prompts: PromptState | str | Path, kinds: np.ndarray, occurrences: np.ndarray
) -> list[np.ndarray]:
    """Start-of-stream state for the step graph.

    Args:
        entry: the manifest's ``streaming`` entry (state names, shapes, initial values).
        prompts: the folder's ``PromptState`` (or the export folder, to build one).
        kinds, occurrences: prompt ids [B, S] (int64).
    """
    if not isinstance(prompts, PromptState):
        prompts = PromptState(entry, prompts)
    fixed = prompts(kinds, occurrences)
    sizes = {"batch": kinds.shape[0], "sources": kinds.shape[1]}
    state = []
    for item in entry["state"]:
        if item["initial"] in ("prompt table", "prompt graph"):
            state.append(np.ascontiguousarray(fixed[item["name"]], dtype=np.float32))
        else:
            fill = MASKED_KEY_BIAS if item["initial"] == "masked" else 0.0
            state.append(np.full([_size(d, sizes) for d in item["shape"]], fill, dtype=item.get("dtype", "float32")))
    return state
