"""Test-only backends with known answers (no torch), shared by runtime, processor and chain tests,
and test-only model configs shared by model and training tests.

Source ``s`` of every fake is ``(s + 1) * f(mix)`` where ``f`` is the identity or a causal
filter, so a test can predict any output exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class IdentityBackend:
    """Whole-array backend: source ``s`` is ``(s + 1) * mix``; counts its calls."""

    trained = True

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = sample_rate
        self.calls: list[tuple[int, ...]] = []

    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        assert mix.dtype == np.float32 and mix.ndim == 2, (mix.dtype, mix.shape)
        self.calls.append(mix.shape)
        scale = np.arange(1, len(prompts) + 1, dtype=np.float32)[None, :, None]
        return mix[:, None, :] * scale


class CausalBackend(IdentityBackend):
    """Streaming backend: source ``s`` is ``(s + 1) * filter(mix)``, a causal 3-tap FIR.

    Like the STFT model its stream works in whole hops and is delayed by ``stream_delay_samples``.
    """

    taps = np.array([0.5, 0.3, 0.2], np.float32)

    def __init__(self, sample_rate: int = 48000, hop: int = 4, delay: int = 12) -> None:
        super().__init__(sample_rate)
        self.hop_samples, self.stream_delay_samples = hop, delay

    def _filter(self, x: np.ndarray, history: np.ndarray) -> np.ndarray:
        full = np.concatenate([history, x], -1)
        out = sum(t * full[:, 2 - i : full.shape[-1] - i] for i, t in enumerate(self.taps))
        return out.astype(np.float32)

    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        filtered = self._filter(mix, np.zeros((mix.shape[0], 2), np.float32))
        return super().separate(filtered, prompts)

    def initial_state(self, batch_size: int, prompts: Sequence[str]) -> dict:
        return {
            "history": np.zeros((batch_size, 2), np.float32),
            "delay": np.zeros((batch_size, self.stream_delay_samples), np.float32),
            "n": len(prompts),
        }

    def stream(self, chunk: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        assert chunk.shape[-1] % self.hop_samples == 0, chunk.shape
        filtered = self._filter(chunk, state["history"])
        line = np.concatenate([state["delay"], filtered], -1)
        out, delay = line[:, : chunk.shape[-1]], line[:, chunk.shape[-1] :]
        scale = np.arange(1, state["n"] + 1, dtype=np.float32)[None, :, None]
        new = {"history": np.concatenate([state["history"], chunk], -1)[:, -2:], "delay": delay, "n": state["n"]}
        return out[:, None, :] * scale, new


def chunked(total: int, sizes: Sequence[int]) -> list[slice]:
    """Slices covering ``range(total)`` with chunk sizes cycling through ``sizes``."""
    out, pos, i = [], 0, 0
    while pos < total:
        out.append(slice(pos, min(total, pos + sizes[i % len(sizes)])))
        pos, i = out[-1].stop, i + 1
    return out


def non_causal_twin(name: str = "twin", causal_variant: str = "tiny-causal", time_kernel: int = 5) -> dict:
    """Config dict of ``causal_variant``'s shapes without causality, with centred time convs of ``time_kernel``."""
    from fastuss_fx.config import config_to_dict, load_variant

    data = config_to_dict(load_variant(causal_variant))
    data.update(name=name, causal=False)
    data.pop("attention_window")
    for stack in ("cross_prompt", "tse"):
        data[stack]["time"]["kernel"] = time_kernel
    return data
