import numpy as np
import pytest

from fastuss_fx.cli import main
from fastuss_fx.demo import EXAMPLE_SECONDS, EXAMPLE_STEMS, load_example, si_sdr_db, spectrogram_db
from fastuss_fx.io import read_audio

pytestmark = pytest.mark.filterwarnings("ignore::fastuss_fx.runtime.UntrainedWeightsWarning")


def test_bundled_example_is_the_sum_of_its_stems():
    example = load_example()
    assert example.sample_rate == 48000
    assert example.mixture.shape == (1, int(EXAMPLE_SECONDS * 48000))
    assert set(example.stems) == set(EXAMPLE_STEMS)
    np.testing.assert_allclose(example.mixture, sum(example.stems.values()), atol=1e-6)
    assert 0.1 < np.abs(example.mixture).max() < 1.0
    assert np.allclose(example.reference("musicbg"), example.music)
    assert example.reference("vocals") is None


def test_si_sdr_known_answers():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1000)
    ref -= ref.mean()
    noise = rng.standard_normal(1000)
    noise -= noise.mean()
    noise -= noise @ ref / (ref @ ref) * ref  # orthogonal to the reference
    noise *= np.linalg.norm(ref) / np.linalg.norm(noise) / 10  # 20 dB below
    assert si_sdr_db(ref, 3.0 * (ref + noise)) == pytest.approx(20.0, abs=1e-6)  # scale does not matter
    with pytest.raises(ValueError, match=r"\(1000,\) vs \(999,\)"):
        si_sdr_db(ref, ref[:999])


def test_spectrogram_of_a_sine_peaks_at_its_frequency():
    rate, n_fft = 48000, 2048
    tone = np.sin(2 * np.pi * 3000 * np.arange(rate) / rate)
    spec = spectrogram_db(tone, n_fft=n_fft, hop=512)
    assert spec.shape == (n_fft // 2 + 1, rate // 512 + 1)
    assert abs(spec[:, 40].argmax() * rate / n_fft - 3000) < rate / n_fft


def test_demo_command_writes_outputs_and_says_the_weights_are_untrained(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--model", "tiny", "--allow-untrained", "--segment-seconds", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "RANDOMLY INITIALISED" in printed and "NOT a separation" in printed
    assert "model 'tiny' (UNTRAINED random weights)" in printed
    assert str(out / "spectrograms.png") in printed and str(out / "dialog_only.wav") in printed
    for name in ("mixture.wav", "dialog_only.wav", "stems/dialogue.wav", "stems/effects.wav", "stems/music.wav"):
        audio, rate = read_audio(out / name)
        assert rate == 48000 and audio.shape == (1, int(EXAMPLE_SECONDS * 48000)), name
    assert (out / "spectrograms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    assert "SI-SDR" in printed and "dialog_only output" in printed
    assert main(args) == 0  # a second run replaces its own files


def test_demo_command_rejects_an_unknown_preset(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "-p", "no_such_preset"]) == 2
    assert "unknown preset 'no_such_preset'" in capsys.readouterr().err


def test_demo_runs_untrained_weights_only_when_asked(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--model", "tiny", "--segment-seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert "model 'tiny' has no trained weights" in err and "--allow-untrained" in err
    assert not list((tmp_path / "demo").glob("*.wav"))
