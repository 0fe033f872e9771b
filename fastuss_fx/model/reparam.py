"""Structural reparameterization: train-time multi-branch layers that fold into plain layers.

``RepConv1d`` trains a main conv plus parallel convs with smaller kernels (aligned inside
the main kernel's taps); ``fuse()`` zero-pads each branch kernel into the main one and
sums them, so inference runs one conv at no extra cost. Training builds that same fused
kernel differentiably from the branch parameters on every call (``fused_weight``), so it
too runs one conv, with the branches' exact function and gradients. A preceding norm's
per-channel gain folds into the conv's input channels the same way (``fold_input_gain``,
or differentiably through ``forward(..., gain=)``).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_padding(kernel: int, causal: bool) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length; causal convs look only back."""
    if causal:
        return kernel - 1, 0
    left = (kernel - 1) // 2
    return left, kernel - 1 - left


class RepConv1d(nn.Module):
    """Conv1d on channels-last sequences [N, L, C_in] -> [N, L, C_out], with optional
    parallel train-time branches.

    In causal mode the conv keeps a cache of its last ``kernel - 1`` input frames
    (streaming); ``forward`` takes that cache and returns the new one (``None`` means
    zeros, i.e. the start of a stream, which is the same as left zero-padding). The cached
    path runs as one matrix product over the concatenated taps: for the few frames of a
    streaming step that is much cheaper than a convolution kernel.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        branch_kernels: tuple[int, ...] = (),
        causal: bool = False,
        padding: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if padding is not None and (causal or branch_kernels):
            raise ValueError("an explicit padding is for non-causal convs without branches")
        self.kernel, self.causal = kernel, causal
        self.padding = conv_padding(kernel, causal) if padding is None else padding
        self.main = nn.Conv1d(c_in, c_out, kernel)
        self.branch_kernels = tuple(branch_kernels)
        self.branches = nn.ModuleList(nn.Conv1d(c_in, c_out, k, bias=False) for k in self.branch_kernels)

    @property
    def stateful(self) -> bool:
        return self.causal and self.kernel > 1

    @property
    def n_state(self) -> int:
        """Number of state tensors (0 or 1)."""
        return int(self.stateful)

    def initial_state(self, n: int, like: Tensor) -> list[Tensor]:
        """Zero input history [n, kernel - 1, C_in] (empty list if the conv needs none)."""
        if not self.stateful:
            return []
        return [like.new_zeros(n, self.kernel - 1, self.main.in_channels)]

    def fused_weight(self, gain: Tensor | None = None) -> Tensor:
        """[C_out, C_in, kernel]: the main kernel plus every branch kernel zero-padded into its
        taps, times an optional per-input-channel ``gain``. Differentiable, so training runs one
        conv with exactly the function and gradients of the separate branches; ``fuse()`` stores it."""
        weight = self.main.weight
        main_left = conv_padding(self.kernel, self.causal)[0]
        for k, branch in zip(self.branch_kernels, self.branches, strict=True):
            offset = main_left - conv_padding(k, self.causal)[0]  # where the branch taps sit
            weight = weight + F.pad(cast(nn.Conv1d, branch).weight, (offset, self.kernel - k - offset))
        return weight if gain is None else weight * gain[None, :, None]

    def forward(
        self, x: Tensor, state: list[Tensor] | None = None, gain: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """``gain``: a per-input-channel gain of the preceding norm, folded into the kernel."""
        weight = self.fused_weight(gain)
        if self.stateful:
            return self._cached(x, state, weight)
        if self.training:  # channels-last matmul over the taps: no transposes, one GEMM each way
            return _conv_as_matmul(x, weight, self.main.bias, self.padding), []
        return _conv_by_taps(x, weight, self.main.bias, self.padding), []

    def forward_halves(
        self, x: Tensor, state: list[Tensor] | None = None, gain: Tensor | None = None
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """``forward`` with the output channels split in two halves (a gated unit's value and gate).
        Inference on whole sequences computes each half by its own product from one set of taps, so
        no copy of the wide output is sliced apart (in onnxruntime a Slice copies)."""
        if self.stateful or self.training:
            y, new_state = self.forward(x, state, gain)
            first, second = y.chunk(2, dim=-1)
            return first, second, new_state
        weight, bias = self.fused_weight(gain), self.main.bias
        assert bias is not None, "the main conv has a bias"
        half = weight.shape[0] // 2
        taps = _taps(x, self.kernel, self.padding)
        first = F.linear(taps, _tap_major(weight[:half]), bias[:half])
        second = F.linear(taps, _tap_major(weight[half:]), bias[half:])
        return first, second, []

    def _cached(self, x: Tensor, state: list[Tensor] | None, weight: Tensor) -> tuple[Tensor, list[Tensor]]:
        past, length = self.kernel - 1, x.shape[1]
        # no state = start of a stream = zero history (padding keeps exported shapes dynamic)
        full = torch.cat([state[0], x], dim=1) if state else F.pad(x, (0, 0, past, 0))  # [N, past + L, C_in]
        taps = torch.cat([full[:, j : j + length] for j in range(self.kernel)], dim=-1)  # [N, L, kernel * C_in]
        y = F.linear(taps, _tap_major(weight), self.main.bias)
        return y, [full[:, full.shape[1] - past :]]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold every branch into the main kernel (exact: convolution is linear)."""
        self.main.weight.copy_(self.fused_weight())
        self.branch_kernels = ()
        self.branches = nn.ModuleList()

    @torch.no_grad()
    def fold_input_gain(self, gain: Tensor) -> None:
        """Absorb a per-input-channel gain applied just before this conv (exact with zero padding)."""
        self.main.weight.mul_(gain[None, :, None])
        for branch in self.branches:
            cast(nn.Conv1d, branch).weight.mul_(gain[None, :, None])


def _conv_as_matmul(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """Conv1d of channels-last ``x`` [N, L, C_in] with ``weight`` [C_out, C_in, k] as one matmul
    over the unfolded taps [N, L, C_in * k] (the weight's own layout, so no weight copy)."""
    kernel = weight.shape[-1]
    if kernel == 1:
        return F.linear(x, weight[..., 0], bias)
    taps = F.pad(x, (0, 0, *padding)).unfold(1, kernel, 1)  # [N, L, C_in, k] (a view)
    return F.linear(taps.flatten(-2), weight.flatten(1), bias)


TAPS_IN_ONE_PRODUCT = 512
"""Inference convs whose ``kernel * C_in`` is at most this run as one product over the concatenated
input taps; wider ones as one product of the input with every tap's weights, whose shifted outputs
are summed (the narrow output is sliced, not the wide input)."""


def _conv_by_taps(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """Conv1d of channels-last ``x`` [N, L, C_in] as one matrix product: in onnxruntime that is a
    plain GEMM, where a Conv node of these shapes (and the transposes to and from channels-first)
    costs several times more. The taps are gathered in one Gather (not one Slice each)."""
    kernel = weight.shape[-1]
    if kernel == 1 or kernel * weight.shape[1] <= TAPS_IN_ONE_PRODUCT:
        return F.linear(_taps(x, kernel, padding), _tap_major(weight), bias)
    padded = F.pad(x, (0, 0, *padding))
    length = padded.shape[1] - kernel + 1
    shifts = torch.arange(length, device=x.device)[:, None] + torch.arange(kernel, device=x.device)  # [L, k]
    # every tap's weights at once: [N, (L + k - 1) * k, C_out], then output t sums tap j of frame t + j
    c_out = weight.shape[0]
    outputs = F.linear(padded, weight.permute(2, 0, 1).flatten(0, 1)).unflatten(-1, (kernel, c_out)).flatten(1, 2)
    chunks = shifts * kernel + torch.arange(kernel, device=x.device)  # [L, k]: tap j of frame t + j
    y = outputs.index_select(1, chunks.flatten()).unflatten(1, (length, kernel)).sum(dim=2)
    return y if bias is None else y + bias


def _taps(x: Tensor, kernel: int, padding: tuple[int, int]) -> Tensor:
    """Channels-last ``x`` [N, L, C] -> its zero-padded taps [N, L', kernel * C], tap-major, in one Gather."""
    if kernel == 1 and padding == (0, 0):
        return x
    padded = F.pad(x, (0, 0, *padding))
    length = padded.shape[1] - kernel + 1
    shifts = torch.arange(length, device=x.device)[:, None] + torch.arange(kernel, device=x.device)  # [L', k]
    return padded.index_select(1, shifts.flatten()).unflatten(1, (length, kernel)).flatten(2)


def _tap_major(weight: Tensor) -> Tensor:
    """Conv1d weight [C_out, C_in, k] -> linear weight [C_out, k * C_in] over concatenated taps."""
    return weight.transpose(1, 2).flatten(1)
