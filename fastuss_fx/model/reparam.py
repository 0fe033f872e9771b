"""Structural reparameterization: train-time multi-branch layers that fold into plain layers.

``RepConv1d`` trains a main conv plus parallel convs with smaller kernels (aligned inside
the main kernel's taps); ``fuse()`` zero-pads each branch kernel into the main one and
sums them, so inference runs one conv at no extra cost. A preceding norm's per-channel
gain can be folded into the conv's input channels the same way (``fold_input_gain``).
"""

from __future__ import annotations

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

    def __init__(self, c_in: int, c_out: int, kernel: int, branch_kernels: tuple[int, ...] = (), causal: bool = False) -> None:
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

    def forward(self, x: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        if self.stateful:
            return self._cached(x, state)
        x = x.transpose(1, 2)  # [N, C_in, L]
        y = self.main(F.pad(x, conv_padding(self.kernel, self.causal)))
        for k, branch in zip(self.branch_kernels, self.branches):
            y = y + branch(F.pad(x, conv_padding(k, self.causal)))
        return y.transpose(1, 2), []

    def _cached(self, x: Tensor, state: list[Tensor] | None) -> tuple[Tensor, list[Tensor]]:
        past, length = self.kernel - 1, x.shape[1]
        # no state = start of a stream = zero history (padding keeps exported shapes dynamic)
        full = torch.cat([state[0], x], dim=1) if state else F.pad(x, (0, 0, past, 0))  # [N, past + L, C_in]
        taps = torch.cat([full[:, j : j + length] for j in range(self.kernel)], dim=-1)  # [N, L, kernel * C_in]
        y = F.linear(taps, _tap_major(self.main.weight), self.main.bias)
        for k, branch in zip(self.branch_kernels, self.branches):  # a causal branch sees the last k taps
            y = y + F.linear(taps[..., (self.kernel - k) * x.shape[-1] :], _tap_major(branch.weight))
        return y, [full[:, full.shape[1] - past :]]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold every branch into the main kernel (exact: convolution is linear)."""
        main_left = conv_padding(self.kernel, self.causal)[0]
        for k, branch in zip(self.branch_kernels, self.branches):
            offset = main_left - conv_padding(k, self.causal)[0]  # where the branch taps sit
            self.main.weight[..., offset : offset + k] += branch.weight
        self.branch_kernels = ()
        self.branches = nn.ModuleList()

    @torch.no_grad()
    def fold_input_gain(self, gain: Tensor) -> None:
        """Absorb a per-input-channel gain applied just before this conv (exact with zero padding)."""
        self.main.weight.mul_(gain[None, :, None])
        for branch in self.branches:
            branch.weight.mul_(gain[None, :, None])


def _tap_major(weight: Tensor) -> Tensor:
    """Conv1d weight [C_out, C_in, k] -> linear weight [C_out, k * C_in] over concatenated taps."""
    return weight.transpose(1, 2).flatten(1)
