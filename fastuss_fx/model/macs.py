"""Analytic multiply-accumulate (MAC) counter, written from the config alone.

Counts the MACs of every matrix product and convolution that ``TUSS.forward`` runs on a
whole clip (elementwise work — norms, activations, RoPE, masking — is not counted, the
same convention as ``torch.utils.flop_counter``, whose count this must match). Train-time
reparameterization branches add no MACs: the training form builds the fused kernel from
them and runs one conv, as the fused form does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from fastuss_fx.config import ModelConfig, PathConfig, StackConfig
from fastuss_fx.model.bands import band_layout, tuss_band_layout
from fastuss_fx.model.blocks import QUERY_BLOCK


def clip_frames(config: ModelConfig, n_samples: int) -> int:
    """STFT frames ``forward`` computes for a clip of ``n_samples``."""
    hop, overlap = config.stft.hop, config.stft.n_fft // config.stft.hop
    hops = math.ceil(n_samples / hop)
    return hops + 1 if config.stft.center else hops + overlap - 1


def _ffn(cfg: PathConfig, dim: int, length: int) -> int:
    inner = length + cfg.kernel - 1 if cfg.ffn_padding == "full" else length  # "full": the first conv pads both sides
    return cfg.kernel * (inner * dim * 2 * cfg.ffn_hidden + length * cfg.ffn_hidden * dim)


def _attention(cfg: PathConfig, dim: int, length: int, window: int | None, prompts: int = 0) -> int:
    """``prompts``: keys of prompt tokens every query also sees (task-aware causal models), scored with
    queries and keys widened to twice the head size (``SelfAttention._windowed``)."""
    projections = length * (dim * 3 * cfg.attention_dim + cfg.attention_dim * dim)
    if window is None:
        pairs = length * length
        return projections + 2 * pairs * cfg.attention_dim  # q.k and weights.v
    blocks = [min(QUERY_BLOCK, length - start) for start in range(0, length, QUERY_BLOCK)]
    pairs = sum(b * (b + window - 1 + prompts) for b in blocks)
    return projections + (3 if prompts else 2) * pairs * cfg.attention_dim


def _path(
    cfg: PathConfig, dim: int, length: int, sequences: int, window: int | None, prompts: int = 0
) -> dict[str, int]:
    ffns = 2 if cfg.macaron else 1
    return {
        "ffn": sequences * ffns * _ffn(cfg, dim, length),
        "attention": sequences * _attention(cfg, dim, length, window, prompts),
    }


def _stack(
    stack: StackConfig, config: ModelConfig, frames: int, batch: int, bands: int, causal: bool, prompts: int = 0
) -> dict[str, int]:
    """MACs of a block stack over ``batch`` sequences of ``frames`` frames (``prompts``: prompt keys
    every frame of the time attention also sees)."""
    out: dict[str, int] = defaultdict(int)
    window = config.attention_window if causal else None
    for _ in range(stack.blocks):
        for key, value in _path(stack.freq, config.dim, bands, batch * frames, None).items():
            out[f"freq_{key}"] += value
        for key, value in _path(stack.time, config.dim, frames, batch * bands, window, prompts).items():
            out[f"time_{key}"] += value
    return dict(out)


def _prompt_pass(config: ModelConfig, prompts: int, bands: int) -> int:
    """Task-aware causal models: the prompt tokens through the cross-prompt blocks as one set."""
    stack, total = config.cross_prompt, 0
    for _ in range(stack.blocks):
        total += sum(_path(stack.freq, config.dim, bands, prompts, None).values())
        time = stack.time
        total += bands * prompts * (2 if time.macaron else 1) * _ffn(time, config.dim, 1)
        total += bands * _attention(time, config.dim, prompts, None)
    return total


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass, per module."""

    modules: dict[str, int]
    n_samples: int
    sample_rate: int

    @property
    def total(self) -> int:
        return sum(self.modules.values())

    @property
    def gmacs_per_second(self) -> float:
        return self.total / 1e9 / (self.n_samples / self.sample_rate)


def count_macs(config: ModelConfig, n_prompts: int, n_samples: int | None = None) -> MacCount:
    """MACs of ``TUSS(config).forward`` on one mono clip (default: ``reference_seconds`` long)."""
    sr = config.stft.sample_rate
    n_samples = n_samples or round(config.reference_seconds * sr)
    if config.causal:  # forward pads the clip by n_fft - hop and streams whole hops
        frames = math.ceil((n_samples + config.stft.n_fft - config.stft.hop) / config.stft.hop)
    else:
        frames = clip_frames(config, n_samples)
    return MacCount(_count(config, n_prompts, frames, with_prompts=True), n_samples, sr)


def count_stream_step_macs(config: ModelConfig, n_prompts: int, hops: int = 1) -> MacCount:
    """MACs of one ``TUSS.stream`` call of ``hops`` hops (prompt vectors come precomputed)."""
    if not config.causal:
        raise ValueError(f"variant {config.name!r} is not causal; it has no streaming step")
    return MacCount(
        _count(config, n_prompts, hops, with_prompts=False), hops * config.stft.hop, config.stft.sample_rate
    )


def _count(config: ModelConfig, n_prompts: int, frames: int, with_prompts: bool) -> dict[str, int]:
    n_fft, n_bins = config.stft.n_fft, config.stft.n_bins
    layout = tuss_band_layout if config.reference_layout else band_layout
    k, d, s = len(layout(n_fft, config.stft.sample_rate)), config.dim, n_prompts
    modules: dict[str, int] = {
        "stft": frames * n_fft * 2 * n_bins,
        "encoder": frames * 2 * n_bins * d,
    }
    if config.causal and config.prompt_attention:  # the prompts as a set, then frames that also see them
        cross = _stack(config.cross_prompt, config, frames, 1, k, True, prompts=s)
        if with_prompts:
            modules["prompts"] = _prompt_pass(config, s, k)
    elif config.causal:  # prompts alone through the cross-prompt blocks (one frame each), then the audio
        cross = _stack(config.cross_prompt, config, frames, 1, k, True)
        if with_prompts:
            modules["prompts"] = sum(_stack(config.cross_prompt, config, 1, s, k, True).values())
    else:  # prompt tokens (and the reference's start token) sit in front of the frames
        cross = _stack(config.cross_prompt, config, frames + s + int(config.reference_layout), 1, k, False)
    tse = _stack(config.tse, config, frames, s, k, config.causal)
    modules.update({f"cross_prompt.{key}": v for key, v in cross.items()})
    modules.update({f"tse.{key}": v for key, v in tse.items()})
    hidden = config.decoder_hidden
    mid = (config.decoder_layers - 1) * k * hidden * hidden
    modules["decoder"] = s * frames * (k * d * hidden + mid + hidden * 4 * n_bins)
    modules["istft"] = s * frames * 2 * n_bins * n_fft
    return modules
