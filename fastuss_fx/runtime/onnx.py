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
import onnxruntime as ort

from fastuss_fx.prompts import prompt_ids
from fastuss_fx.runtime.session import make_session
from fastuss_fx.runtime.stream_state import PromptState, fixed_dimensions, initial_stream_state


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

    def __init__(
        self,
        folder: str | Path,
        threads: int | None = None,
        trained: bool = True,
        providers: list[str] | None = None,
        int8: bool = False,
    ) -> None:
        self.manifest = read_manifest(folder)
        if "offline" not in self.manifest:
            raise ValueError(f"{folder} holds a causal export; use OnnxStreamingBackend")
        if int8:
            raise ValueError(
                f"int8 graphs exist for causal (streaming) models only; {self.manifest['variant']!r} is not causal"
            )
        self.name = self.manifest["variant"]
        self.sample_rate = int(self.manifest["sample_rate"])
        self.trained = trained
        self.causal = False
        self.latency_samples = 0
        self.session = make_session(Path(folder) / self.manifest["offline"]["file"], threads, providers)
        self.input_names = {i.name for i in self.session.get_inputs()}  # the reference layout has no occurrences

    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """``(B, N)`` float32 -> ``(B, S, N)`` float32, one row (channel) at a time.

        Attention over a whole window needs memory ~ S x frames^2 per row (about 1 GB for a 6-s
        window and 2 prompts); running rows one by one keeps stereo at that bound.
        """
        kinds, occurrences = prompt_id_arrays(prompts, 1)
        ids = {k: v for k, v in (("kinds", kinds), ("occurrences", occurrences)) if k in self.input_names}
        rows = [self.session.run(None, {"mix": np.ascontiguousarray(row[None], np.float32), **ids})[0] for row in mix]
        return np.concatenate(rows, axis=0)


class OnnxStreamingBackend:
    """The causal step graph with its state carried in Python (a list of numpy arrays).

    ``hop_samples``, what ``stream`` takes a multiple of, is one step of the graph:
    ``hops_per_step`` STFT hops (``stft_hop_samples`` each). Streams over an export with more
    hops per step run fewer, larger graph calls and lag by ``stft_hop_samples`` more per extra hop.

    One session per stream shape (channels, prompts), opened by ``initial_state`` with every
    dynamic axis fixed: onnxruntime then folds the graph's shape arithmetic away, which
    removes about half of the nodes each hop runs.
    """

    def __init__(
        self,
        folder: str | Path,
        threads: int | None = 1,
        trained: bool = True,
        providers: list[str] | None = None,
        int8: bool = False,
    ) -> None:
        folder = Path(folder)
        self.manifest = read_manifest(folder)
        if "streaming" not in self.manifest:
            raise ValueError(f"{folder} holds a non-causal export; use OnnxBackend")
        entry = self.manifest["streaming"]
        if int8 and "int8" not in entry:
            raise ValueError(f"{folder} has no int8 step graph (it was dropped at export for losing too much quality)")
        self.int8 = int8
        self.entry = entry
        self.name = self.manifest["variant"]
        self.sample_rate = int(self.manifest["sample_rate"])
        self.trained = trained
        self.causal = True
        self.stft_hop_samples = int(entry["hop"])
        self.step_samples = int(entry["step_samples"])
        self.hop_samples = self.step_samples  # the protocol's stream granularity
        self.stream_delay_samples = int(entry["stream_delay_samples"])
        self.latency_samples = self.stream_delay_samples + self.step_samples - 1
        self.prompt_state = PromptState(entry, folder)
        self.step_file = folder / (entry["int8"] if int8 else entry)["step_file"]
        self.threads, self.providers = threads, providers
        self._prompt_slot = [item["name"] for item in entry["state"]].index("prompt_vectors")
        self._sessions: dict[tuple[int, int], ort.InferenceSession] = {}
        self.input_names = ["chunk", *(f"in.{item['name']}" for item in entry["state"])]

    def session_for(self, batch_size: int, n_sources: int) -> ort.InferenceSession:
        """The step graph's session for streams of ``batch_size`` channels and ``n_sources`` prompts."""
        key = (batch_size, n_sources)
        if key not in self._sessions:
            self._sessions[key] = make_session(
                self.step_file, self.threads, self.providers, fixed_dimensions(self.entry, *key)
            )
        return self._sessions[key]

    def initial_state(self, batch_size: int, prompts: Sequence[str]) -> list[np.ndarray]:
        """Zeros, masked attention keys and the precomputed prompt vectors (see the manifest).

        Also opens the session for this stream shape, so the first hop does not pay for it.
        """
        kinds, occurrences = prompt_id_arrays(prompts, batch_size)
        self.session_for(*kinds.shape)
        return initial_stream_state(self.entry, self.prompt_state, kinds, occurrences)

    def stream(self, chunk: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(B, k * hop)`` -> ``(B, S, k * hop)``; runs the step graph once per ``step_samples``."""
        if chunk.shape[-1] % self.step_samples:
            raise ValueError(f"stream() takes multiples of {self.step_samples} samples, got {chunk.shape[-1]}")
        chunk = np.ascontiguousarray(chunk, np.float32)
        session = self.session_for(chunk.shape[0], state[self._prompt_slot].shape[1])
        outputs = []
        for start in range(0, chunk.shape[-1], self.step_samples):
            out, *state = session.run(
                None, dict(zip(self.input_names, [chunk[:, start : start + self.step_samples], *state], strict=True))
            )
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
