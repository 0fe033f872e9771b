import math

import numpy as np
import pytest

from fastuss_fx.metrics import SILENT_POWER, is_silent, si_sdr, si_sdr_db, snr


def signals(n=8000):
    rng = np.random.default_rng(0)
    target = rng.standard_normal(n)
    target -= target.mean()
    noise = rng.standard_normal(n)
    noise -= noise.mean()
    noise -= (noise @ target) / (target @ target) * target  # orthogonal to the target
    noise *= math.sqrt(0.01 * (target @ target) / (noise @ noise))  # 20 dB below
    return target, noise


def test_known_answers():
    target, noise = signals()
    assert float(si_sdr(target, 3.0 * target + 3.0 * noise)) == pytest.approx(20.0, abs=1e-6)  # scale does not matter
    assert float(si_sdr(target, target + noise + 5.0)) == pytest.approx(20.0, abs=1e-6)  # nor does an offset
    assert float(snr(target, target + noise)) == pytest.approx(20.0, abs=1e-6)
    assert float(snr(target, 0.5 * target)) == pytest.approx(20 * math.log10(2), abs=1e-6)  # scale does (it is an SNR)
    assert float(si_sdr(target, target)) > 100


def test_last_axis_and_pooled():
    target, noise = signals(4000)
    batch = np.stack([target, target + noise, target + 0.1 * noise])
    got = si_sdr(np.stack([target] * 3), batch)
    assert got.shape == (3,) and got[1] == pytest.approx(20.0, abs=1e-6) and got[2] == pytest.approx(40.0, abs=1e-6)
    stereo = np.stack([target, target])
    assert si_sdr_db(stereo, stereo + np.stack([noise, noise])) == pytest.approx(20.0, abs=1e-6)


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"\(10,\) vs \(9,\)"):
        si_sdr(np.ones(10), np.ones(9))


def test_silence_is_mean_power_at_most_minus_100_dbfs_for_arrays_and_tensors():
    torch = pytest.importorskip("torch")
    ones = np.ones(1000)
    levels = [0.0, 0.5 * SILENT_POWER, 0.99 * SILENT_POWER, 1.01 * SILENT_POWER, 1e-6]  # mean powers
    signals = np.stack([np.sqrt(p) * ones for p in levels]).reshape(5, 1, 1000)
    expected = [[True], [True], [True], [False], [False]]
    assert SILENT_POWER == pytest.approx(10 ** (-100 / 10))
    assert is_silent(signals).tolist() == expected  # [5, 1]: one answer per signal, last axis reduced
    assert is_silent(torch.from_numpy(signals).float()).tolist() == expected
    assert not is_silent(np.r_[np.zeros(999), 1e-3])  # one click in silence: mean power 1e-9, audible
