"""Backends that run exported graphs with onnxruntime (numpy only; torch is never imported).

``OnnxBackend`` runs ``offline.onnx`` (non-causal); ``OnnxStreamingBackend`` runs
``stream_step.onnx`` hop by hop with the state laid out in ``manifest.json``. Both satisfy
``fastuss_fx.runtime.backend``'s protocols. See ``export/README.md`` for the file formats.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fastuss_fx.prompts import prompt_ids
from fastuss_fx.runtime.session import make_session
from fastuss_fx.runtime.stream_state import initial_stream_state


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no exported model in {folder} (manifest.json missing)")
    return json.loads(path.read_text())


def prompt_id_arrays(prompts: Sequence[str], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt names -> kind and occurrence ids [B, S] (int64), the graphs' prompt inputs."""
    kinds, occurrences = prompt_ids(prompts)
    return np.tile(np.asarray(kinds, np.int64), (batch, 1)), np.tile(np.asarray(occurrences, np.int64), (batch, 1))


class OnnxBackend:
    """Whole-array separation with the non-causal offline graph."""

    def __init__(self, folder: str | Path, threads: int | None = None, trained: bool = True, providers: list[str] | None = None) -> None:
        self.manifest = read_manifest(folder)
        if "offline" not in self.manifest:
            raise ValueError(f"{folder} holds a causal export; use OnnxStreamingBackend")
        self.name = self.manifest["variant"]
        self.sample_rate = int(self.manifest["sample_rate"])
        self.trained = trained
        self.causal = False
        self.latency_samples = 0
        self.session = make_session(Path(folder) / self.manifest["offline"]["file"], threads, providers)

    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """``(B, N)`` float32 -> ``(B, S, N)`` float32, one row (channel) at a time.

        Attention over a whole window needs memory ~ S x frames^2 per row (about 1 GB for a 6-s
        window and 2 prompts); running rows one by one keeps stereo at that bound.
        """
        kinds, occurrences = prompt_id_arrays(prompts, 1)
        rows = [
            self.session.run(None, {"mix": np.ascontiguousarray(row[None], np.float32), "kinds": kinds, "occurrences": occurrences})[0]
            for row in mix
        ]
        return np.concatenate(rows, axis=0)


class OnnxStreamingBackend:
    """The causal step graph with its state carried in Python (a list of numpy arrays)."""

    def __init__(self, folder: str | Path, threads: int | None = 1, trained: bool = True, providers: list[str] | None = None) -> None:
        folder = Path(folder)
        self.manifest = read_manifest(folder)
        if "streaming" not in self.manifest:
            raise ValueError(f"{folder} holds a non-causal export; use OnnxBackend")
        entry = self.manifest["streaming"]
        self.entry = entry
        self.name = self.manifest["variant"]
        self.sample_rate = int(self.manifest["sample_rate"])
        self.trained = trained
        self.causal = True
        self.latency_samples = int(self.manifest["latency_samples"])
        self.hop_samples = int(entry["hop"])
        self.step_samples = int(entry["step_samples"])
        self.stream_delay_samples = int(entry["stream_delay_samples"])
        self.prompt_table = np.load(folder / entry["prompt_vectors_file"])
        self.session = make_session(folder / entry["step_file"], threads, providers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def initial_state(self, batch_size: int, prompts: Sequence[str]) -> list[np.ndarray]:
        """Zeros, masked attention keys and the precomputed prompt vectors (see the manifest)."""
        kinds, occurrences = prompt_id_arrays(prompts, batch_size)
        return initial_stream_state(self.entry, self.prompt_table, kinds, occurrences)

    def stream(self, chunk: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(B, k * hop)`` -> ``(B, S, k * hop)``; runs the step graph once per ``step_samples``."""
        if chunk.shape[-1] % self.step_samples:
            raise ValueError(f"stream() takes multiples of {self.step_samples} samples, got {chunk.shape[-1]}")
        chunk = np.ascontiguousarray(chunk, np.float32)
        outputs = []
        for start in range(0, chunk.shape[-1], self.step_samples):
            out, *state = self.session.run(None, dict(zip(self.input_names, [chunk[:, start : start + self.step_samples], *state])))
            outputs.append(out)
        if not outputs:
            return np.zeros((chunk.shape[0], state[0].shape[1], 0), np.float32), state
        return np.concatenate(outputs, axis=-1), state

    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """Whole clip through the stream: pad the end, trim the delay (same as the torch model)."""
        n, delay = mix.shape[-1], self.stream_delay_samples
        padded = np.pad(np.asarray(mix, np.float32), ((0, 0), (0, delay + (-(n + delay)) % self.step_samples)))
        out, _ = self.stream(padded, self.initial_state(mix.shape[0], prompts))
        return out[..., delay : delay + n]
