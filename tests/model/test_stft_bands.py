import pytest
import torch

from fastuss_fx.config import StftConfig
from fastuss_fx.model.bands import band_layout
from fastuss_fx.model.stft import Stft


def test_reference_layout_has_61_bands():
    bands = band_layout(2048, 48000)
    assert len(bands) == 61
    assert bands[0] == (0, 2) and bands[-1][0] + bands[-1][1] == 1025


@pytest.mark.parametrize(
    "n_fft, rate", [(2048, 48000), (960, 48000), (1024, 44100), (512, 16000), (256, 48000), (64, 8000)]
)
def test_bands_tile_all_bins(n_fft, rate):
    bands = band_layout(n_fft, rate)
    starts = [s for s, _ in bands]
    assert starts[0] == 0 and all(w >= 1 for _, w in bands)
    assert all(s + w == nxt for (s, w), nxt in zip(bands, starts[1:] + [n_fft // 2 + 1], strict=True))


@pytest.mark.parametrize("n_fft, hop", [(2048, 512), (960, 480), (256, 128)])
@pytest.mark.parametrize("length", [1, 65, 4801])
def test_stft_round_trip_is_identity(n_fft, hop, length):
    stft = Stft(StftConfig(n_fft=n_fft, hop=hop))
    x = torch.randn(2, length)
    y = stft.inverse(stft(x), length)
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-5)


def test_stft_bin_of_a_sine():
    stft = Stft(StftConfig(n_fft=960, hop=480))
    n = torch.arange(48000)
    spec = stft(torch.sin(2 * torch.pi * 1000 * n / 48000)[None])
    power = spec.pow(2).sum(-1)[0, 10]
    assert power.argmax().item() == 20  # 1000 Hz / 50 Hz per bin
