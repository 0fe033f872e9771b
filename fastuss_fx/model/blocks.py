"""TF-Locoformer building blocks: RMS group norm, conv SwiGLU FFN, RoPE attention, block.

Sequences are [N, L, D] (N folds batch with the other axis). Time-path modules of a causal
model carry streaming state as a list of tensors: ``forward(x, ..., state)`` returns
``(y, new_state)``; ``state=None`` starts a stream (zeros), so a whole clip and the same
clip fed in pieces go through the same code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastuss_fx.config import PathConfig
from fastuss_fx.model.reparam import RepConv1d

QUERY_BLOCK = 16
"""Queries processed together by causal windowed attention on whole clips (frames)."""

_MASKED = -1e9


class RMSGroupNorm(nn.Module):
    """RMS norm over groups of features at each position, with a per-feature gain.

    The gain is folded into the following layer by ``fuse()`` of the owner (then ``gain`` is None).
    ``eps_on_rms``: divide by ``RMS + eps`` (the TUSS reference) instead of ``sqrt(mean square + eps)``.
    """

    def __init__(self, dim: int, groups: int, eps: float = 1e-5, eps_on_rms: bool = False) -> None:
        super().__init__()
        self.groups, self.eps, self.eps_on_rms = groups, eps, eps_on_rms
        self.gain: nn.Parameter | None = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x = self.normalize(x)
        return x if self.gain is None else x * self.gain

    def normalize(self, x: Tensor) -> Tensor:
        """The norm without its gain (owners fold ``gain`` into their next layer's weights)."""
        g = x.unflatten(-1, (self.groups, -1))
        if self.eps_on_rms:  # the reciprocal of the small RMS tensor, then one product over x
            return (g * (1 / (g.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps))).flatten(-2)
        return (g * torch.rsqrt(g.pow(2).mean(dim=-1, keepdim=True) + self.eps)).flatten(-2)

    def take_gain(self) -> Tensor:
        """Remove and return the gain (for folding into the next layer)."""
        if self.gain is None:
            raise RuntimeError("the norm's gain was already folded into the next layer")
        gain = self.gain.detach().clone()
        self.gain = None
        return gain


class ConvSwiGLU(nn.Module):
    """Norm -> conv (D -> 2H) -> SwiGLU -> conv (H -> D), with a residual connection.

    ``cfg.ffn_padding == "full"``: the first conv sees ``kernel - 1`` zeros on both sides and the
    second is a valid conv, i.e. the reference's conv / transposed-conv pair (a transposed conv
    of stride 1 is a valid conv with the kernel flipped and its channel axes swapped).
    """

    def __init__(self, dim: int, groups: int, cfg: PathConfig, causal: bool, eps_on_rms: bool = False) -> None:
        super().__init__()
        self.norm = RMSGroupNorm(dim, groups, eps_on_rms=eps_on_rms)
        full = cfg.ffn_padding == "full"
        pad_in, pad_out = ((cfg.kernel - 1, cfg.kernel - 1), (0, 0)) if full else (None, None)
        self.conv_in = RepConv1d(dim, 2 * cfg.ffn_hidden, cfg.kernel, cfg.branch_kernels, causal, pad_in)
        self.conv_out = RepConv1d(cfg.ffn_hidden, dim, cfg.kernel, cfg.branch_kernels, causal, pad_out)

    @property
    def n_state(self) -> int:
        return self.conv_in.n_state + self.conv_out.n_state

    def initial_state(self, n: int, like: Tensor) -> list[Tensor]:
        return self.conv_in.initial_state(n, like) + self.conv_out.initial_state(n, like)

    def forward(self, x: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        n_in = self.conv_in.n_state
        state_in, state_out = (state[:n_in], state[n_in:]) if state else (None, None)
        value, gate, new_in = self.conv_in.forward_halves(self.norm.normalize(x), state_in, self.norm.gain)
        h, new_out = self.conv_out(value * F.silu(gate), state_out)
        return x + h, new_in + new_out

    @torch.no_grad()
    def fuse(self) -> None:
        if self.norm.gain is not None:
            self.conv_in.fold_input_gain(self.norm.take_gain())
        self.conv_in.fuse()
        self.conv_out.fuse()


class RotaryEmbedding(nn.Module):
    """Rotary position embedding on the last axis (half-split convention).

    Angles are computed in float64, so absolute positions stay exact over long streams
    (hours of 10-ms frames); only the rotated values are cast to the input's dtype.
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim, self.base = head_dim, base

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float64, device=x.device) / self.head_dim
        angles = positions.to(torch.float64)[:, None] * self.base**-exponents  # [L, E/2]
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        # (x1 cos - x2 sin, x2 cos + x1 sin) in 5 graph ops
        return x * cos.repeat(1, 2) + torch.cat([x2, x1], dim=-1) * torch.cat([-sin, sin], dim=-1)


class SelfAttention(nn.Module):
    """Norm -> multi-head self-attention with RoPE -> projection, with a residual connection.

    Non-causal: full attention at the given positions. Causal (``window`` set): each query
    sees itself and the ``window - 1`` frames before it; keys/values of those frames are the
    streaming state, keys stored already rotated at their absolute frame position (RoPE
    scores depend only on position differences, so a step rotates just its new frames).
    """

    use_sdpa = False
    """Fused attention kernel in eval mode too (FlopCounterMode cannot see it, so eval defaults
    to explicit products). Eager training always uses it: on CPU its fused forward and backward
    are much faster than softmax over materialised scores, on query blocks of 4 windows. Compiled
    training uses explicit products, which inductor fuses with their neighbours."""

    def __init__(
        self, dim: int, groups: int, cfg: PathConfig, window: int | None = None, eps_on_rms: bool = False
    ) -> None:
        super().__init__()
        self.heads, self.window = cfg.heads, window
        self.head_dim = cfg.attention_dim // cfg.heads
        self.norm = RMSGroupNorm(dim, groups, eps_on_rms=eps_on_rms)
        self.qkv = nn.Linear(dim, 3 * cfg.attention_dim)
        self.out = nn.Linear(cfg.attention_dim, dim)
        self.rope = RotaryEmbedding(self.head_dim)

    @property
    def n_state(self) -> int:
        return 0 if self.window is None else 3

    def initial_state(self, n: int, like: Tensor) -> list[Tensor]:
        if self.window is None:
            return []
        past = self.window - 1
        zeros = like.new_zeros(n, self.heads, past, self.head_dim)
        return [zeros, zeros.clone(), like.new_full((past,), _MASKED)]

    def _attend(
        self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, scale: float | None = None
    ) -> Tensor:
        if self.training and torch.compiler.is_compiling():
            # compiled training: scale, mask and softmax fuse around two plain products, which run in
            # bf16 under autocast without the fused kernel's slow bf16 backward (7 % off a causal step)
            return _explicit_attention(q, k, v, bias, scale)
        if self.use_sdpa or self.training:
            if q.device.type == "cpu" and q.dtype == torch.bfloat16:
                # bf16 autocast on CPU: the fused kernel is slow in bf16 at these head dims (backward
                # ~4x float32's), while the projections around it gain; so attention stays float32
                mask = None if bias is None else bias.float()
                with torch.autocast("cpu", enabled=False):
                    y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, scale=scale)
                return y.to(q.dtype)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
        return _explicit_attention(q, k, v, bias, scale)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Norm and q, k, v projections: [N, L, D] -> three [N, H, L, E]."""
        weight = self.qkv.weight if self.norm.gain is None else self.qkv.weight * self.norm.gain  # gain folded in
        q, k, v = (
            F.linear(self.norm.normalize(x), weight, self.qkv.bias)
            .unflatten(-1, (3, self.heads, self.head_dim))
            .permute(2, 0, 3, 1, 4)
        )
        return q, k, v

    def _merge(self, x: Tensor, y: Tensor) -> Tensor:
        return x + self.out(y.transpose(1, 2).flatten(-2))

    def attend_prompts(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Prompt tokens [N, S, D] attend to each other (no positions: a set); returns the output and
        their keys and values [N, H, S, E], which the frames of a stream attend to (``prompt_kv``)."""
        q, k, v = self._project(x)
        return self._merge(x, self._attend(q, k, v)), (k, v)

    def forward(
        self,
        x: Tensor,
        positions: Tensor | None = None,
        state: list[Tensor] | None = None,
        prompt_kv: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """``positions`` [L] of the sequence's items (default ``0..L-1``; a stream passes its frame indices).
        ``prompt_kv``: keys and values of the prompt tokens (``attend_prompts``), which every query also
        attends to, outside the window and without positions (windowed attention only)."""
        q, k, v = self._project(x)
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device)
        raw_q = q
        q, k = self.rope(q, positions), self.rope(k, positions)
        new_state: list[Tensor]
        if self.window is None:
            y, new_state = self._attend(q, k, v), []
        else:
            y, new_state = self._windowed(q, k, v, state, None if prompt_kv is None else (raw_q, *prompt_kv))
        return self._merge(x, y), new_state

    def _windowed(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        state: list[Tensor] | None,
        prompts: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """Each query attends to itself and the ``window - 1`` frames before it; with ``prompts``
        (unrotated queries, prompt keys and values) also to every prompt, position-free: queries and
        keys are widened to ``[unrotated | rotated]`` halves, prompt keys ``[k | 0]`` and frame keys
        ``[0 | k]``, so one product gives both kinds of score."""
        window = self.window
        assert window is not None, "windowed attention needs a window"  # forward() checks it
        past = window - 1
        if state:
            k_all, v_all = torch.cat([state[0], k], dim=2), torch.cat([state[1], v], dim=2)
            key_bias = torch.cat([state[2], q.new_zeros(q.shape[2])])  # [past + L]
        else:  # start of a stream: masked zero keys (padding keeps exported shapes dynamic)
            k_all, v_all = F.pad(k, (0, 0, past, 0)), F.pad(v, (0, 0, past, 0))
            key_bias = torch.cat([q.new_full((past,), _MASKED), q.new_zeros(q.shape[2])])
        outputs = []
        block = max(QUERY_BLOCK, 4 * window) if self.training else QUERY_BLOCK  # training: few fused calls
        for start in range(0, q.shape[2], block):
            stop = min(start + block, q.shape[2])
            span = stop - start + past  # keys visible to this block
            qi = torch.arange(past, span, device=q.device)  # query slots within the block
            kj = torch.arange(span, device=q.device)  # key slots
            allowed = (kj[None, :] <= qi[:, None]) & (kj[None, :] >= qi[:, None] - past)
            qb, kb, vb, bb = q, k_all, v_all, key_bias
            if span < k_all.shape[2]:  # several blocks (a whole clip); one block needs no slicing ops
                qb, bb = q[:, :, start:stop], key_bias[start : start + span]
                kb, vb = k_all[:, :, start : start + span], v_all[:, :, start : start + span]
            bias = torch.where(allowed, 0.0, _MASKED) + bb
            if prompts is None:
                outputs.append(self._attend(qb, kb, vb, bias))
            else:
                qb, kb, vb, bias = self._with_prompts(qb, kb, vb, bias, prompts, start, stop)
                outputs.append(self._attend(qb, kb, vb, bias, 1 / math.sqrt(self.head_dim)))
        keep = k_all.shape[2] - past
        y = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return y, [k_all[:, :, keep:], v_all[:, :, keep:], key_bias[keep:]]

    def _with_prompts(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        bias: Tensor,
        prompts: tuple[Tensor, Tensor, Tensor],
        start: int,
        stop: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Widen one query block and its keys so the prompt keys join the window (see ``_windowed``)."""
        raw_q, prompt_k, prompt_v = prompts
        q = torch.cat([raw_q[:, :, start:stop], q], dim=-1)
        k = torch.cat([torch.cat([prompt_k, torch.zeros_like(prompt_k)], dim=-1),
                       torch.cat([torch.zeros_like(k), k], dim=-1)], dim=2)  # fmt: skip
        bias = torch.cat([bias.new_zeros(bias.shape[0], prompt_k.shape[2]), bias], dim=-1)
        return q, k, torch.cat([prompt_v, v], dim=2), bias

    @torch.no_grad()
    def fuse(self) -> None:
        if self.norm.gain is not None:
            self.qkv.weight.mul_(self.norm.take_gain()[None, :])


def _explicit_attention(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """softmax(q k^T * scale + bias) v (scale default 1/sqrt(E)) with the products in the inputs'
    dtype and the softmax in float32. The scale multiplies the queries (E per query, not L per query)."""
    q = q * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    scores = (q @ k.transpose(-1, -2)).float()
    if bias is not None:
        scores = scores + bias
    return torch.softmax(scores, dim=-1).to(v.dtype) @ v


class LocoPath(nn.Module):
    """One path of a TF-Locoformer block: [ConvSwiGLU] -> attention -> ConvSwiGLU (macaron)."""

    def __init__(
        self,
        dim: int,
        groups: int,
        cfg: PathConfig,
        causal: bool = False,
        window: int | None = None,
        eps_on_rms: bool = False,
    ) -> None:
        super().__init__()
        self.ffn_in = ConvSwiGLU(dim, groups, cfg, causal, eps_on_rms) if cfg.macaron else None
        self.attention = SelfAttention(dim, groups, cfg, window if causal else None, eps_on_rms)
        self.ffn_out = ConvSwiGLU(dim, groups, cfg, causal, eps_on_rms)

    def _stages(self) -> list[ConvSwiGLU | SelfAttention]:
        return [m for m in (self.ffn_in, self.attention, self.ffn_out) if m is not None]

    @property
    def n_state(self) -> int:
        return sum(stage.n_state for stage in self._stages())

    def initial_state(self, n: int, like: Tensor) -> list[Tensor]:
        return [s for stage in self._stages() for s in stage.initial_state(n, like)]

    def forward(
        self,
        x: Tensor,
        positions: Tensor | None = None,
        state: list[Tensor] | None = None,
        prompt_kv: tuple[Tensor, Tensor] | None = None,
        isolated: int = 0,
    ) -> tuple[Tensor, list[Tensor]]:
        """``isolated``: leading items (prompt tokens) that the FFN convs see each alone, as sequences
        of one, while the rest runs as one sequence: a kernel > 1 then never mixes a prompt with
        another prompt or with a frame (attention still sees the whole sequence)."""
        new_state: list[Tensor] = []
        for stage in self._stages():
            mine, state = (state[: stage.n_state], state[stage.n_state :]) if state else (None, None)
            if isinstance(stage, SelfAttention):
                x, s = stage(x, positions, mine, prompt_kv)
            elif isolated:
                n, _, d = x.shape
                alone = stage(x[:, :isolated].reshape(n * isolated, 1, d))[0].reshape(n, isolated, d)
                x, s = stage(x[:, isolated:], mine)
                x = torch.cat([alone, x], dim=1)
            else:
                x, s = stage(x, mine)
            new_state += s
        return x, new_state

    def prompt_pass(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Prompt tokens [N, S, D] through the path: the FFNs see each prompt alone (a sequence of
        one: convs never mix prompts), attention sees them as a set; returns their keys and values."""
        n, s, d = x.shape
        kv: tuple[Tensor, Tensor] | None = None
        for stage in self._stages():
            if isinstance(stage, SelfAttention):
                x, kv = stage.attend_prompts(x)
            else:
                x = stage(x.reshape(n * s, 1, d))[0].reshape(n, s, d)
        assert kv is not None  # every path has an attention stage
        return x, kv


class LocoformerBlock(nn.Module):
    """Frequency path (attention across bands within a frame) then time path (across frames)."""

    def __init__(
        self,
        dim: int,
        groups: int,
        freq: PathConfig,
        time: PathConfig,
        causal: bool,
        window: int | None,
        eps_on_rms: bool = False,
    ) -> None:
        super().__init__()
        self.freq = LocoPath(dim, groups, freq, eps_on_rms=eps_on_rms)
        self.time = LocoPath(dim, groups, time, causal, window, eps_on_rms)

    @property
    def n_state(self) -> int:
        return self.time.n_state

    def initial_state(self, n: int, like: Tensor) -> list[Tensor]:
        """State of the time path for ``n`` = batch x bands sequences."""
        return self.time.initial_state(n, like)

    def forward(
        self,
        x: Tensor,
        time_positions: Tensor | None = None,
        state: list[Tensor] | None = None,
        prompt_kv: tuple[Tensor, Tensor] | None = None,
        isolated: int = 0,
    ) -> tuple[Tensor, list[Tensor]]:
        """``prompt_kv``: the prompt tokens' keys and values of this block's time attention (causal
        task-aware models, see ``prompt_pass``). ``isolated``: leading rows (prompt tokens) whose
        time convs run each alone (``LocoPath.forward``)."""
        b, t, k, d = x.shape  # [B, T, K, D]
        x = self._freq(x)
        y, state = self.time(x.transpose(1, 2).reshape(b * k, t, d), time_positions, state, prompt_kv, isolated)
        return y.reshape(b, k, t, d).transpose(1, 2), state

    def _freq(self, x: Tensor) -> Tensor:
        b, t, k, d = x.shape
        band_positions = torch.arange(k, device=x.device, dtype=x.dtype)
        return self.freq(x.reshape(b * t, k, d), band_positions)[0].reshape(b, t, k, d)

    def prompt_pass(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Prompt tokens [B, S, K, D] alone through the block (they see no audio): the frequency path
        as for frames, the time path as a set (``LocoPath.prompt_pass``); returns the tokens and their
        time-attention keys and values [B*K, H, S, E]."""
        b, s, k, d = x.shape
        x = self._freq(x)
        y, kv = self.time.prompt_pass(x.transpose(1, 2).reshape(b * k, s, d))
        return y.reshape(b, k, s, d).transpose(1, 2), kv
