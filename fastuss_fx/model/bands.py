"""Band layout, band-split encoder and band-wise mask decoder.

Bands follow the TUSS reference at 48 kHz / 2048 points (61 bands): 2 bins wide below
1 kHz, 4 below 2 kHz, 12 below 4 kHz, 24 below 8 kHz, 48 below 16 kHz and the rest in 4
bands. Widths are defined in Hz (from that reference resolution) so other windows and
rates get an equivalent layout. Bands of equal width are processed together as one batched
product ("groups"), so per-band weights cost one batched matmul per distinct width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

_REFERENCE_BIN_HZ = 48000 / 2048
_REGIONS_HZ = ((1000.0, 2), (2000.0, 4), (4000.0, 12), (8000.0, 24), (16000.0, 48))
_LAST_REGION_BANDS = 4


def band_layout(n_fft: int, sample_rate: int) -> list[tuple[int, int]]:
    """(first bin, width) of each band; the bands tile all ``n_fft // 2 + 1`` bins in order."""
    n_bins = n_fft // 2 + 1
    bin_hz = sample_rate / n_fft
    bands: list[tuple[int, int]] = []
    start = 0
    for edge_hz, ref_width in _REGIONS_HZ:
        stop = min(n_bins, round(edge_hz / bin_hz))
        width = max(1, round(ref_width * _REFERENCE_BIN_HZ / bin_hz))
        while start < stop:
            bands.append((start, min(width, stop - start)))
            start += bands[-1][1]
    rest = n_bins - start
    n_last = min(_LAST_REGION_BANDS, rest)
    for i in range(n_last):  # near-equal widths, the wider ones first
        width = rest // n_last + (1 if i < rest % n_last else 0)
        bands.append((start, width))
        start += width
    assert start == n_bins, (start, n_bins)
    return bands


class BandGroups(nn.Module):
    """Index bookkeeping: bands grouped by width, and the bin order that undoes grouping."""

    band_order: Tensor
    inverse_band: Tensor
    inverse_bin: Tensor

    def __init__(self, bands: list[tuple[int, int]]) -> None:
        super().__init__()
        self.widths = sorted({w for _, w in bands})
        self.n_bands = len(bands)
        order: list[int] = []
        for g, width in enumerate(self.widths):
            members = [k for k, (_, w) in enumerate(bands) if w == width]
            order += members
            bins = torch.tensor([[bands[k][0] + i for i in range(width)] for k in members])
            self.register_buffer(f"bins_{g}", bins, persistent=False)  # [n_g, w]
        # band k sits at position inverse_band[k] once groups are concatenated
        self.register_buffer("band_order", torch.tensor(order), persistent=False)
        self.register_buffer("inverse_band", torch.argsort(self.band_order), persistent=False)
        bin_order = torch.cat([getattr(self, f"bins_{g}").flatten() for g in range(len(self.widths))])
        self.register_buffer("inverse_bin", torch.argsort(bin_order), persistent=False)

    def group_sizes(self) -> list[int]:
        return [getattr(self, f"bins_{g}").shape[0] for g in range(len(self.widths))]

    def bins(self, g: int) -> Tensor:
        """[n_g, w] bin indices of the bands in group g."""
        return getattr(self, f"bins_{g}")

    def members(self, g: int) -> Tensor:
        """[n_g] indices (natural order) of the bands in group g."""
        start = sum(self.group_sizes()[:g])
        return self.band_order[start : start + self.group_sizes()[g]]


def per_band_linear(x: Tensor, weight: Tensor) -> Tensor:
    """[..., n, f] x [n, f, d] -> [..., n, d]: a separate linear layer for each of n bands.

    A batched matmul with the band axis leading (cheaper than einsum in onnxruntime).
    """
    lead = x.shape[:-2]
    y = torch.matmul(x.reshape(-1, *x.shape[-2:]).transpose(0, 1), weight)  # [n, rest, d]
    return y.transpose(0, 1).reshape(*lead, x.shape[-2], weight.shape[-1])


def _grouped_weight(n: int, fan_in: int, fan_out: int) -> nn.Parameter:
    bound = 1 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound))


class BandSplit(nn.Module):
    """Spectrum [B, T, F, 2] -> band embeddings [B, T, K, D]: per band RMS norm + linear.

    Non-causal models normalise each band by its RMS over the whole clip (time and
    features); causal models per frame. The norm's gain is folded into the linear layer by
    ``fuse()``.
    """

    def __init__(self, groups: BandGroups, dim: int, causal: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.causal, self.eps = groups, causal, eps
        sizes = groups.group_sizes()
        self.gains: nn.ParameterList | None = nn.ParameterList(
            [nn.Parameter(torch.ones(n, 2 * w)) for n, w in zip(sizes, groups.widths, strict=True)]
        )
        self.weights = nn.ParameterList(
            [_grouped_weight(n, 2 * w, dim) for n, w in zip(sizes, groups.widths, strict=True)]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(n, dim)) for n in sizes])

    def forward(self, spec: Tensor) -> Tensor:
        outs = []
        for g, weight in enumerate(self.weights):
            x = spec[:, :, self.groups.bins(g)].flatten(-2)  # [B, T, n_g, 2w]
            dims = (-1,) if self.causal else (1, -1)
            x = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + self.eps)
            if self.gains is not None:  # folded into the (small) weight, not the activations
                weight = weight * self.gains[g][:, :, None]
            outs.append(per_band_linear(x, weight) + self.biases[g])
        return torch.cat(outs, dim=2)[:, :, self.groups.inverse_band]  # [B, T, K, D]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the norm gains into the linear weights (exact)."""
        if self.gains is None:
            return
        for gain, weight in zip(self.gains, self.weights, strict=True):
            weight.mul_(gain[:, :, None])
        self.gains = None


class MaskDecoder(nn.Module):
    """Band embeddings [..., T, K, D] -> complex mask [..., T, F, 2]: per band norm + MLP + GLU."""

    def __init__(self, groups: BandGroups, dim: int, hidden: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        sizes = groups.group_sizes()
        self.gains: nn.ParameterList | None = nn.ParameterList([nn.Parameter(torch.ones(n, dim)) for n in sizes])
        self.w_in = nn.ParameterList([_grouped_weight(n, dim, hidden) for n in sizes])
        self.b_in = nn.ParameterList([nn.Parameter(torch.zeros(n, hidden)) for n in sizes])
        self.w_out = nn.ParameterList(
            [_grouped_weight(n, hidden, 4 * w) for n, w in zip(sizes, groups.widths, strict=True)]
        )
        self.b_out = nn.ParameterList(
            [nn.Parameter(torch.zeros(n, 4 * w)) for n, w in zip(sizes, groups.widths, strict=True)]
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        masks = []
        for g, width in enumerate(self.groups.widths):
            h = x[..., self.groups.members(g), :]  # [..., T, n_g, D]
            w_in = self.w_in[g] if self.gains is None else self.w_in[g] * self.gains[g][:, :, None]  # gain folded in
            h = torch.tanh(per_band_linear(h, w_in) + self.b_in[g])
            h = per_band_linear(h, self.w_out[g]) + self.b_out[g]
            value, gate = h.chunk(2, dim=-1)
            masks.append((value * torch.sigmoid(gate)).unflatten(-1, (width, 2)).flatten(-3, -2))  # [..., n_g*w, 2]
        return torch.cat(masks, dim=-2)[..., self.groups.inverse_bin, :]  # [..., T, F, 2]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the norm gains into the first linear layer (exact)."""
        if self.gains is None:
            return
        for gain, weight in zip(self.gains, self.w_in, strict=True):
            weight.mul_(gain[:, :, None])
        self.gains = None
