"""The one model class of the family: TUSS, FasTUSS and causal FasTUSS are configs of it.

Flow (non-causal): STFT -> band split -> prompt tokens placed in front of the frames ->
cross-prompt Locoformer blocks -> prompt vectors x shared features (one map per source) ->
TSE Locoformer blocks -> band-wise mask decoder -> masked STFT -> iSTFT.

Causal: prompt tokens can see no audio, so their vectors are constants per prompt list,
precomputed per stream: with ``prompt_attention`` the prompts go through the cross-prompt
blocks together (as a set) and every frame attends to their keys, kept in the stream state;
without it each prompt's vector comes from the prompt alone and the frames never see them.
The audio goes through the blocks with causal convs, windowed attention and per-frame norms,
carrying explicit state so that ``stream`` over hops equals ``forward`` over the clip.

``layout: tuss`` computes what the TUSS reference computes (``config.TUSS_LAYOUT``), so the
official checkpoints run here once ``model/reference.py`` has mapped their tensors.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastuss_fx.config import ModelConfig, load_variant
from fastuss_fx.model.bands import BandGroups, BandSplit, MaskDecoder, band_layout, tuss_band_layout
from fastuss_fx.model.blocks import LocoformerBlock, SelfAttention
from fastuss_fx.model.reparam import RepConv1d
from fastuss_fx.model.stft import Stft
from fastuss_fx.prompts import PROMPTS, prompt_ids

Prompts = Sequence[str] | Sequence[Sequence[str]]


def _complex_mul(mask: Tensor, spec: Tensor) -> Tensor:
    """(a + ib)(c + id) on [..., 2] pairs."""
    a, b = mask.unbind(-1)
    c, d = spec.unbind(-1)
    return torch.stack([a * c - b * d, a * d + b * c], dim=-1)


class TUSS(nn.Module):
    """Task-aware unified source separation: mixture + prompts -> one waveform per prompt."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.stft = Stft(config.stft)
        reference = config.reference_layout
        layout = tuss_band_layout if reference else band_layout
        groups = BandGroups(layout(config.stft.n_fft, config.stft.sample_rate))
        self.n_bands, d = groups.n_bands, config.dim
        self.encoder = BandSplit(groups, d, causal=config.causal, centered=reference)
        # reference: one vector per kind for all bands, a start-of-sequence token, no occurrence table
        self.prompt_table = nn.Parameter(torch.randn(len(PROMPTS), 1 if reference else self.n_bands, d))
        self.occurrence_table: nn.Parameter | None = None
        self.sos_token: nn.Parameter | None = None
        if reference:
            self.sos_token = nn.Parameter(torch.randn(1, d))
        else:
            self.occurrence_table = nn.Parameter(0.1 * torch.randn(config.max_occurrences, self.n_bands, d))

        def stack(cfg):
            return nn.ModuleList(
                LocoformerBlock(
                    d, config.norm_groups, cfg.freq, cfg.time, config.causal, config.attention_window, reference
                )
                for _ in range(cfg.blocks)
            )

        self.cross_prompt, self.tse = stack(config.cross_prompt), stack(config.tse)
        self.decoder = MaskDecoder(groups, d, config.decoder_hidden, config.decoder_layers, clip_norm=reference)

    @classmethod
    def from_variant(cls, name: str) -> TUSS:
        """A randomly initialised model of a shipped variant (e.g. ``"fastuss-8.3g"``)."""
        return cls(load_variant(name))

    @property
    def stream_delay_samples(self) -> int:
        """Delay of ``stream`` output against ``forward`` output (``n_fft - hop``, plus the look-ahead)."""
        return self.stft.pad + self.config.lookahead * self.config.stft.hop

    # ----------------------------------------------------------------- inputs
    def prompt_ids(self, prompts: Prompts, batch: int) -> tuple[Tensor, Tensor]:
        """Prompt list (shared) or list of lists (per example) -> kind and occurrence ids [B, S]."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise TypeError(f"prompts must be a list of prompt names, got {prompts!r}")
        per_example = len(prompts) > 0 and not isinstance(prompts[0], str)
        # per example: a list of prompt lists; shared: one prompt list (element types are checked by prompt_ids)
        if per_example:
            lists = [list(p) for p in prompts]
        else:
            lists = [list(cast(Sequence[str], prompts))] * batch
        if len(lists) != batch:
            raise ValueError(f"got {len(lists)} prompt lists for a batch of {batch}")
        ids = [prompt_ids(p) for p in lists]
        if len({len(k) for k, _ in ids}) != 1:
            raise ValueError(f"per-example prompt lists must have equal length, got {[len(p) for p in lists]}")
        if self.occurrence_table is not None and max(max(o) for _, o in ids) >= self.config.max_occurrences:
            raise ValueError(f"a prompt kind may repeat at most {self.config.max_occurrences} times, got {lists[0]}")
        device = self.prompt_table.device
        kinds = torch.tensor([k for k, _ in ids], device=device)
        occurrences = torch.tensor([o for _, o in ids], device=device)
        return kinds, occurrences

    @staticmethod
    def _check_mixture(mix: Tensor) -> Tensor:
        if not isinstance(mix, Tensor):
            raise TypeError(f"mix must be a torch.Tensor, got {type(mix).__name__}")
        if mix.dim() not in (1, 2):
            raise ValueError(f"mix must be [samples] or [batch, samples], got shape {tuple(mix.shape)}")
        if mix.shape[-1] == 0:
            raise ValueError("mix is empty (0 samples)")
        if not mix.is_floating_point():
            raise TypeError(f"mix must be floating point, got {mix.dtype}")
        return mix

    def prompt_tokens(self, kinds: Tensor, occurrences: Tensor) -> Tensor:
        """Kind and occurrence ids [B, S] -> prompt tokens [B, S, K, D]."""
        tokens = self.prompt_table[kinds]
        if self.occurrence_table is None:  # reference: repeats differ by their positions only
            return tokens.expand(-1, -1, self.n_bands, -1)
        return tokens + self.occurrence_table[occurrences]

    # ------------------------------------------------------------ separation
    def forward(self, mix: Tensor, prompts: Prompts) -> Tensor:
        """Separate ``mix`` [B, N] (or [N]) into one source per prompt: [B, S, N] (or [S, N])."""
        mix = self._check_mixture(mix)
        squeeze = mix.dim() == 1
        mix = mix[None] if squeeze else mix
        kinds, occurrences = self.prompt_ids(prompts, mix.shape[0])
        out = self.separate_ids(mix, kinds, occurrences)
        return out[0] if squeeze else out

    def separate_ids(self, mix: Tensor, kinds: Tensor, occurrences: Tensor) -> Tensor:
        """``forward`` with prompts as kind / occurrence ids [B, S] (no checks; the export entry point)."""
        if self.config.causal:
            return self._forward_causal(mix, kinds, occurrences)
        return self._forward_offline(mix, kinds, occurrences)

    def _forward_offline(self, mix: Tensor, kinds: Tensor, occurrences: Tensor) -> Tensor:
        if self.config.reference_layout:  # unbiased standard deviation, as the reference (0 for one sample)
            scale = torch.nan_to_num(mix.std(dim=-1, keepdim=True), nan=0.0) + 1e-8
        else:
            scale = mix.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8  # [B, 1]: level-independent input
        spec = self.stft(mix / scale)  # [B, T, F, 2]
        (b, t), s = spec.shape[:2], kinds.shape[1]
        tokens, frames = self.prompt_tokens(kinds, occurrences), self.encoder(spec)
        arange = torch.arange(t, device=spec.device, dtype=spec.dtype)
        if self.sos_token is None:
            # all prompts share position 0 (permuting prompts permutes outputs); frames are 1..T
            x = torch.cat([tokens, frames], dim=1)  # [B, S + T, K, D]
            positions = torch.cat([x.new_zeros(s), arange + 1])
            skip = s
        else:  # reference: [prompts, SOS, frames] at positions 0, 1, 2, ...
            sos = self.sos_token.expand(b, 1, self.n_bands, -1)
            x = torch.cat([tokens, sos, frames], dim=1)  # [B, S + 1 + T, K, D]
            positions = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
            skip = s + 1
        isolated = skip if self.config.isolate_prompts else 0
        for block in self.cross_prompt:
            x, _ = block(x, positions, isolated=isolated)
        prompt_vectors, features = x[:, :s], x[:, skip:]
        y = (prompt_vectors[:, :, None] * features[:, None]).flatten(0, 1)  # [B*S, T, K, D]
        for block in self.tse:
            y, _ = block(y, positions[skip:] if self.sos_token is None else arange)
        masks = self.decoder(y).unflatten(0, (b, s))  # [B, S, T, F, 2]
        return self.stft.inverse(_complex_mul(masks, spec[:, None]), mix.shape[-1]) * scale[:, None]

    def _forward_causal(self, mix: Tensor, kinds: Tensor, occurrences: Tensor) -> Tensor:
        # Same code as streaming: pad the end so every sample leaves the overlap-add, then trim the delay.
        n, delay = mix.shape[-1], self.stream_delay_samples
        padded = F.pad(mix, (0, delay + (-n) % self.config.stft.hop))
        out, _ = self.stream(padded, self.initial_state_ids(kinds, occurrences, like=mix))
        return out[..., delay : delay + n]

    # ------------------------------------------------------------- streaming
    def prompt_vectors(self, kinds: Tensor, occurrences: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Causal models: prompt vectors [B, S, K, D] after the cross-prompt blocks, and (with
        ``prompt_attention``) each block's prompt keys and values for the frames to attend to."""
        tokens = self.prompt_tokens(kinds, occurrences)
        if self.config.prompt_attention:
            keys_values: list[Tensor] = []
            for block in self.cross_prompt:
                tokens, kv = block.prompt_pass(tokens)
                keys_values += kv
            return tokens, keys_values
        x = tokens.flatten(0, 1)[:, None]  # [B*S, 1, K, D]: a one-frame sequence per prompt, alone
        for block in self.cross_prompt:
            x, _ = block(x)
        return x[:, 0].unflatten(0, tokens.shape[:2]), []

    def initial_state(self, batch_size: int, prompts: Prompts) -> list[Tensor]:
        """Start-of-stream state for ``stream`` (causal variants only)."""
        if not self.config.causal:
            raise ValueError(f"variant {self.config.name!r} is not causal; streaming needs a causal variant")
        return self.initial_state_ids(*self.prompt_ids(prompts, batch_size))

    def initial_state_ids(self, kinds: Tensor, occurrences: Tensor, like: Tensor | None = None) -> list[Tensor]:
        """``initial_state`` from kind / occurrence ids [B, S]; ``like`` sets dtype and device."""
        like = self.prompt_table if like is None else like
        b, s = kinds.shape
        k, pad = self.n_bands, self.stft.pad
        vectors, keys_values = self.prompt_vectors(kinds, occurrences)
        state = [
            vectors.to(like.dtype),
            *(t.to(like.dtype) for t in keys_values),
            like.new_zeros(b, pad),
            like.new_zeros(b, s, pad),
        ]
        if self.config.lookahead:  # the spectrum frames still waiting for their masks
            state.append(like.new_zeros(b, self.config.lookahead, self.config.stft.n_bins, 2))
        state.append(torch.zeros(1, dtype=torch.int64, device=like.device))  # frames streamed so far
        for block in self.cross_prompt:
            state += block.initial_state(b * k, like)
        for block in self.tse:
            state += block.initial_state(b * s * k, like)
        return state

    def stream(self, chunk: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """One streaming step: ``chunk`` [B, n*hop] -> ([B, S, n*hop], new state).

        Output sample i of the stream is sample ``i - stream_delay_samples`` of ``forward``.
        """
        hop = self.config.stft.hop
        if chunk.shape[-1] % hop:
            raise ValueError(f"stream() takes whole hops of {hop} samples, got {chunk.shape[-1]}")
        n_kv = 2 * len(self.cross_prompt) if self.config.prompt_attention else 0
        prompt_vectors, keys_values = state[0], state[1 : 1 + n_kv]
        history, tail, *rest = state[1 + n_kv :]
        waiting = rest.pop(0) if self.config.lookahead else None
        position, *block_state = rest
        padded = torch.cat([history, chunk], dim=-1)  # [B, pad + n*hop]
        spec = self.stft.analyse(self.stft.frames(padded))  # [B, n, F, 2]
        new_state = [prompt_vectors, *keys_values, padded[:, padded.shape[-1] - self.stft.pad :]]
        n_frames = spec.shape[1]
        positions = position + torch.arange(n_frames, device=position.device)  # absolute frame indices
        x = self.encoder(spec)
        block_state_out: list[Tensor] = []
        for i, block in enumerate(self.cross_prompt):
            kv = (keys_values[2 * i], keys_values[2 * i + 1]) if n_kv else None
            x, st = block(x, positions, block_state[: block.n_state], kv)
            block_state, block_state_out = block_state[block.n_state :], block_state_out + st
        b, s = prompt_vectors.shape[:2]
        y = (prompt_vectors[:, :, None] * x[:, None]).flatten(0, 1)  # [B*S, n, K, D]
        for block in self.tse:
            y, st = block(y, positions, block_state[: block.n_state])
            block_state, block_state_out = block_state[block.n_state :], block_state_out + st
        masks = self.decoder(y).unflatten(0, (b, s))  # [B, S, n, F, 2]
        lookahead: list[Tensor] = []
        if waiting is not None:  # masks of frames t apply to frames t - lookahead
            spec = torch.cat([waiting, spec], dim=1)
            spec, lookahead = spec[:, :n_frames], [spec[:, n_frames:]]
        frames = self.stft.synthesise(_complex_mul(masks, spec[:, None]))  # [B, S, n, n_fft]
        signal = self.stft.overlap_add(frames)  # [B, S, n*hop + pad]
        signal = signal + F.pad(tail, (0, chunk.shape[-1]))
        out, tail = signal[..., : chunk.shape[-1]], signal[..., chunk.shape[-1] :]
        return out, new_state + [tail, *lookahead, position + n_frames] + block_state_out

    def state_names(self) -> list[str]:
        """One name per streaming state tensor, in ``stream``'s order (for exported graphs)."""
        names = ["prompt_vectors"]
        if self.config.prompt_attention:
            for i in range(len(self.cross_prompt)):
                names += [
                    f"cross_prompt.{i}.time.attention.prompt_keys",
                    f"cross_prompt.{i}.time.attention.prompt_values",
                ]
        names += ["stft_history", "overlap_add_tail"]
        names += ["waiting_spectrum"] if self.config.lookahead else []
        names += ["position"]
        for name, module in self.named_modules():
            if isinstance(module, RepConv1d) and module.n_state:
                names.append(f"{name}.history")
            elif isinstance(module, SelfAttention) and module.n_state:
                names += [f"{name}.keys", f"{name}.values", f"{name}.key_bias"]
        return names

    # ------------------------------------------------------------------ misc
    def inference_copy(self) -> TUSS:
        """A fused eval-mode deep copy; this model (weights, branches, train/eval mode) is left as it is."""
        return copy.deepcopy(self).eval().fuse()

    @torch.no_grad()
    def fuse(self) -> TUSS:
        """Fold train-time branches and norm gains into plain layers (inference form); returns self."""
        for module in self.modules():
            fuse = getattr(module, "fuse", None)
            if module is not self and fuse is not None:
                fuse()
        return self
