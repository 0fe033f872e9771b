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
    """Conv1d [N, C_in, L] -> [N, C_out, L] with optional parallel train-time branches.

    In causal mode the conv keeps a cache of its last ``kernel - 1`` inputs (streaming);
    ``forward`` takes that cache and returns the new one (``None`` means zeros, i.e. the
    start of a stream, which is the same as left zero-padding).
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
        """Zero input history [n, C_in, kernel - 1] (empty list if the conv needs none)."""
        if not self.stateful:
            return []
        return [like.new_zeros(n, self.main.in_channels, self.kernel - 1)]

    def forward(self, x: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        if self.stateful:
            # no state = start of a stream = zero history (padding keeps exported shapes dynamic)
            full = torch.cat([state[0], x], dim=-1) if state else F.pad(x, (self.kernel - 1, 0))  # [N, C_in, k - 1 + L]
            y = self.main(full)
            for k, branch in zip(self.branch_kernels, self.branches):
                y = y + branch(full[..., self.kernel - k :])
            return y, [full[..., full.shape[-1] - (self.kernel - 1) :]]
        y = self.main(F.pad(x, conv_padding(self.kernel, self.causal)))
        for k, branch in zip(self.branch_kernels, self.branches):
            y = y + branch(F.pad(x, conv_padding(k, self.causal)))
        return y, []

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
