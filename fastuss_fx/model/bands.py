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


def tuss_band_layout(n_fft: int, sample_rate: int) -> list[tuple[int, int]]:
    """The TUSS reference bands: the same regions, counted with a bin width of
    ``(sample_rate // 2) / n_bins`` (61 bands at 48 kHz / 2048 points), the rest in 4 bands at
    48 kHz (the last takes the remainder) and in 2 otherwise."""
    n_bins = n_fft // 2 + 1
    bin_hz = (sample_rate // 2) / n_bins
    widths: list[int] = []
    low = 0.0
    for edge_hz, width in _REGIONS_HZ:
        widths += [width] * math.ceil((edge_hz - low) / (width * bin_hz))
        low = edge_hz
    rest = n_bins - sum(widths)
    if rest <= 0:
        raise ValueError(f"the reference band layout needs more than {sum(widths)} bins, got {n_bins}")
    if sample_rate == 48000:
        widths += [rest // 4] * 3 + [rest // 4 + rest % 4]
    else:
        widths += [rest // 2, rest - rest // 2]
    starts = [0]
    for width in widths[:-1]:
        starts.append(starts[-1] + width)
    return list(zip(starts, widths, strict=True))


class BandGroups(nn.Module):
    """Index bookkeeping: bands grouped by width, and the bin order that undoes grouping."""

    band_order: Tensor
    inverse_band: Tensor
    inverse_bin: Tensor

    def __init__(self, bands: list[tuple[int, int]]) -> None:
        super().__init__()
        self.widths = sorted({w for _, w in bands})
        self.n_bands = len(bands)
        self.member_lists: list[list[int]] = []  # band indices (natural order) of each group, as Python ints
        order: list[int] = []
        for g, width in enumerate(self.widths):
            members = [k for k, (_, w) in enumerate(bands) if w == width]
            self.member_lists.append(members)
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


def band_norm(x: Tensor, dims: tuple[int, ...], centered: bool, eps: float) -> Tensor:
    """Normalise ``x`` over ``dims``: by its RMS, or (``centered``) by mean and variance (GroupNorm(1))."""
    if centered:
        x = x - x.mean(dim=dims, keepdim=True)
    return x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)


class BandSplit(nn.Module):
    """Spectrum [B, T, F, 2] -> band embeddings [B, T, K, D]: per band norm + linear.

    Non-causal models normalise each band over the whole clip (time and features); causal
    models per frame. ``centered`` (the reference's GroupNorm) removes the mean first and
    adds a learned bias after the gain. Gain and bias fold into the linear layer (``fuse()``).
    """

    def __init__(self, groups: BandGroups, dim: int, causal: bool, centered: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.causal, self.centered, self.eps = groups, causal, centered, eps
        sizes = groups.group_sizes()
        self.gains: nn.ParameterList | None = nn.ParameterList(
            [nn.Parameter(torch.ones(n, 2 * w)) for n, w in zip(sizes, groups.widths, strict=True)]
        )
        self.norm_biases: nn.ParameterList | None = None
        if centered:
            self.norm_biases = nn.ParameterList(
                [nn.Parameter(torch.zeros(n, 2 * w)) for n, w in zip(sizes, groups.widths, strict=True)]
            )
        self.weights = nn.ParameterList(
            [_grouped_weight(n, 2 * w, dim) for n, w in zip(sizes, groups.widths, strict=True)]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(n, dim)) for n in sizes])

    def forward(self, spec: Tensor) -> Tensor:
        outs = []
        for g, weight in enumerate(self.weights):
            x = spec[:, :, self.groups.bins(g)].flatten(-2)  # [B, T, n_g, 2w]
            x = band_norm(x, (-1,) if self.causal else (1, -1), self.centered, self.eps)
            bias = self.biases[g]
            if self.norm_biases is not None:  # the norm's bias through the linear layer
                bias = bias + torch.einsum("nf,nfd->nd", self.norm_biases[g], weight)
            if self.gains is not None:  # folded into the (small) weight, not the activations
                weight = weight * self.gains[g][:, :, None]
            outs.append(per_band_linear(x, weight) + bias)
        return torch.cat(outs, dim=2)[:, :, self.groups.inverse_band]  # [B, T, K, D]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the norm's gain and bias into the linear layer (exact)."""
        if self.norm_biases is not None:
            for g, norm_bias in enumerate(self.norm_biases):
                self.biases[g].add_(torch.einsum("nf,nfd->nd", norm_bias, self.weights[g]))
            self.norm_biases = None
        if self.gains is None:
            return
        for gain, weight in zip(self.gains, self.weights, strict=True):
            weight.mul_(gain[:, :, None])
        self.gains = None


class MaskDecoder(nn.Module):
    """Band embeddings [..., T, K, D] -> complex mask [..., T, F, 2]: per band norm + MLP + GLU.

    The norm is an RMS norm per frame, or (``clip_norm``, the reference's GroupNorm(1)) a
    mean-and-variance norm over each band's features and all frames with a learned bias.
    ``layers`` hidden tanh layers (1, or 2 as in the reference).
    """

    def __init__(
        self, groups: BandGroups, dim: int, hidden: int, layers: int = 1, clip_norm: bool = False, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.groups, self.clip_norm, self.eps = groups, clip_norm, eps
        sizes = groups.group_sizes()
        self.gains: nn.ParameterList | None = nn.ParameterList([nn.Parameter(torch.ones(n, dim)) for n in sizes])
        self.norm_biases: nn.ParameterList | None = None
        if clip_norm:
            self.norm_biases = nn.ParameterList([nn.Parameter(torch.zeros(n, dim)) for n in sizes])
        self.w_in = nn.ParameterList([_grouped_weight(n, dim, hidden) for n in sizes])
        self.b_in = nn.ParameterList([nn.Parameter(torch.zeros(n, hidden)) for n in sizes])
        self.w_mid = nn.ParameterList([_grouped_weight(n, hidden, hidden) for n in sizes] if layers == 2 else [])
        self.b_mid = nn.ParameterList([nn.Parameter(torch.zeros(n, hidden)) for n in sizes] if layers == 2 else [])
        self.w_out = nn.ParameterList(
            [_grouped_weight(n, hidden, 4 * w) for n, w in zip(sizes, groups.widths, strict=True)]
        )
        self.b_out = nn.ParameterList(
            [nn.Parameter(torch.zeros(n, 4 * w)) for n, w in zip(sizes, groups.widths, strict=True)]
        )

    def forward(self, x: Tensor) -> Tensor:
        x = band_norm(x, (-3, -1) if self.clip_norm else (-1,), self.clip_norm, self.eps)
        masks = []
        for g, width in enumerate(self.groups.widths):
            h = x[..., self.groups.members(g), :]  # [..., T, n_g, D]
            w_in, b_in = self.w_in[g], self.b_in[g]
            if self.norm_biases is not None:  # the norm's bias through the first layer
                b_in = b_in + torch.einsum("nf,nfd->nd", self.norm_biases[g], w_in)
            if self.gains is not None:  # gain folded into the weight
                w_in = w_in * self.gains[g][:, :, None]
            h = torch.tanh(per_band_linear(h, w_in) + b_in)
            if len(self.w_mid):
                h = torch.tanh(per_band_linear(h, self.w_mid[g]) + self.b_mid[g])
            h = per_band_linear(h, self.w_out[g]) + self.b_out[g]
            value, gate = h.chunk(2, dim=-1)
            masks.append((value * torch.sigmoid(gate)).unflatten(-1, (width, 2)).flatten(-3, -2))  # [..., n_g*w, 2]
        return torch.cat(masks, dim=-2)[..., self.groups.inverse_bin, :]  # [..., T, F, 2]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the norm's gain (and bias) into the first linear layer (exact)."""
        if self.norm_biases is not None:
            for g, norm_bias in enumerate(self.norm_biases):
                self.b_in[g].add_(torch.einsum("nf,nfd->nd", norm_bias, self.w_in[g]))
            self.norm_biases = None
        if self.gains is None:
            return
        for gain, weight in zip(self.gains, self.w_in, strict=True):
            weight.mul_(gain[:, :, None])
        self.gains = None
