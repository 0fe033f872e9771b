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
        self, c_in: int, c_out: int, kernel: int, branch_kernels: tuple[int, ...] = (), causal: bool = False
    ) -> None:
        super().__init__()
        self.kernel, self.causal = kernel, causal
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
            return _conv_as_matmul(x, weight, self.main.bias, conv_padding(self.kernel, self.causal)), []
        y = F.conv1d(F.pad(x.transpose(1, 2), conv_padding(self.kernel, self.causal)), weight, self.main.bias)
        return y.transpose(1, 2), []

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


def _tap_major(weight: Tensor) -> Tensor:
    """Conv1d weight [C_out, C_in, k] -> linear weight [C_out, k * C_in] over concatenated taps."""
    return weight.transpose(1, 2).flatten(1)
