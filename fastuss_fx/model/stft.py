"""STFT and inverse STFT as plain matrix products (exportable to ONNX, countable in MACs);
in training mode the same transforms run as FFTs (far fewer operations, same function).

Frames use a periodic sqrt-Hann window on both sides, so analysis x synthesis is a Hann
window and overlap-add reconstructs exactly up to the constant ``n_fft / (2 hop)``.
The signal is left-padded by ``n_fft - hop`` samples: frame m then ends at sample
``(m + 1) * hop - 1`` of the input, so a streaming caller can compute frame m as soon as
that sample arrives (see ``model/tuss.py`` for the streaming state). Centred framing (the
TUSS reference) pads ``n_fft // 2`` on both sides instead and divides the overlap-add by
the summed squared windows, as ``torch.istft(center=True)`` does.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastuss_fx.config import StftConfig


class Stft(nn.Module):
    """Analysis and synthesis transforms for one ``StftConfig``."""

    window: Tensor
    analysis: Tensor
    synthesis: Tensor

    def __init__(self, config: StftConfig) -> None:
        super().__init__()
        self.n_fft, self.hop, self.center = config.n_fft, config.hop, config.center
        self.n_bins = config.n_bins
        self.overlap = self.n_fft // self.hop  # frames covering each sample
        n = torch.arange(self.n_fft, dtype=torch.float64)
        window = torch.sin(math.pi * n / self.n_fft)  # sqrt of the periodic Hann window
        f = torch.arange(self.n_bins, dtype=torch.float64)
        phase = 2 * math.pi * n[:, None] * f[None, :] / self.n_fft  # [n_fft, F]
        analysis = torch.cat([torch.cos(phase), -torch.sin(phase)], dim=1) * window[:, None]
        # Inverse real DFT: bins other than DC and Nyquist stand for two conjugate bins.
        weight = torch.full((self.n_bins,), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if self.n_fft % 2 == 0:
            weight[-1] = 1.0
        gain = self.n_fft / (2 * self.hop)  # sum of the Hann window over the overlapping frames
        synthesis = torch.cat([torch.cos(phase).T, -torch.sin(phase).T], dim=0) * weight.repeat(2)[:, None]
        synthesis = synthesis * window[None, :] / (self.n_fft * gain)
        self.gain = gain
        self.register_buffer("window", window.float(), persistent=False)  # [n_fft]
        self.register_buffer("analysis", analysis.float(), persistent=False)  # [n_fft, 2F]
        self.register_buffer("synthesis", synthesis.float(), persistent=False)  # [2F, n_fft]

    @property
    def pad(self) -> int:
        """Left padding (and streaming input history) in samples."""
        return self.n_fft - self.hop

    def frames(self, padded: Tensor) -> Tensor:
        """[B, P + T*hop] padded signal -> [B, T, n_fft] frames (``P = n_fft - hop``)."""
        blocks = padded.reshape(padded.shape[0], -1, self.hop)  # [B, T + R - 1, hop]
        n_frames = blocks.shape[1] - self.overlap + 1
        return torch.cat([blocks[:, r : r + n_frames] for r in range(self.overlap)], dim=-1)

    def analyse(self, frames: Tensor) -> Tensor:
        """[B, T, n_fft] frames -> [B, T, F, 2] spectrum (real, imaginary)."""
        if self.training:  # the same transform by FFT: O(n log n) instead of an n x F product
            return torch.view_as_real(torch.fft.rfft(frames * self.window, dim=-1))
        spec = frames @ self.analysis  # [B, T, 2F]
        return spec.reshape(*spec.shape[:-1], 2, self.n_bins).transpose(-1, -2)

    def synthesise(self, spec: Tensor) -> Tensor:
        """[..., T, F, 2] spectrum -> [..., T, n_fft] windowed frames ready for overlap-add."""
        if self.training:  # inverse FFT (ignores the imaginary DC/Nyquist parts, as the matrix does)
            frames = torch.fft.irfft(torch.view_as_complex(spec.contiguous()), n=self.n_fft, dim=-1)
            return frames * (self.window / self.gain)
        return spec.transpose(-1, -2).flatten(-2) @ self.synthesis

    def overlap_add(self, frames: Tensor) -> Tensor:
        """[..., T, n_fft] -> [..., (T + R - 1) * hop] summed signal (R = n_fft // hop)."""
        *lead, n_frames, _ = frames.shape
        parts = frames.reshape(*lead, n_frames, self.overlap, self.hop)
        total = n_frames + self.overlap - 1
        # overlap >= 1, so the sum is a tensor (and traces to the same graph as before)
        out = cast(Tensor, sum(F.pad(parts[..., r, :], (0, 0, r, total - n_frames - r)) for r in range(self.overlap)))
        return out.flatten(-2)

    @property
    def clip_pad(self) -> int:
        """Zeros before a whole clip: ``pad``, or ``n_fft // 2`` when centred."""
        return self.n_fft // 2 if self.center else self.pad

    def forward(self, wave: Tensor) -> Tensor:
        """Whole clip: [B, N] -> [B, T, F, 2] with T = ceil(N / hop) + R - 1 frames (centred: + 1)."""
        n = wave.shape[-1]
        right = (-n) % self.hop + (self.n_fft // 2 if self.center else self.pad)
        padded = F.pad(wave, (self.clip_pad, right))
        return self.analyse(self.frames(padded))

    def inverse(self, spec: Tensor, length: int) -> Tensor:
        """Whole clip: [..., T, F, 2] -> [..., length], the inverse of ``forward``."""
        signal = self.overlap_add(self.synthesise(spec))
        if self.center:  # the edges are covered by fewer windows: divide by their summed squares
            squares = (self.window * self.window).expand(spec.shape[-3], self.n_fft)
            signal = signal * (self.gain / self.overlap_add(squares))
        return signal[..., self.clip_pad : self.clip_pad + length]
