"""Quality smoke test of the shipped weights: each must improve speech over the mixture.

Two mixtures (fixed seed) re-mixed from the bundled example's true stems: the 6-s scene with
its speech as it is (pauses included, as in real dialogue) at -5..0 dB against its music and
effects, each shifted in time by a random amount. Catches a broken, random or badly regressed
weights file in a few seconds of CPU; the real scores come from ``fastuss eval`` (model card).

Shorter crops (2 s) were tried and rejected: on them the early weights gain about 0 dB on
average, with half the crops slightly worse, so a pass or fail would depend on the seed.
"""

import numpy as np
import pytest

from fastuss_fx import FasTUSS
from fastuss_fx.config import load_variant
from fastuss_fx.demo import load_example
from fastuss_fx.metrics import si_sdr_db
from fastuss_fx.pretrained import RANKING, trained_variants

MIXTURES = 2
SNR_DB = (-5.0, 0.0)


def dialog_mixtures(seed=0):
    """``(speech, mixture)``, each ``(MIXTURES, N)`` float32 at the example's rate, and the rate."""
    example = load_example()
    speech, music, sfx = example.stems["speech"][0], example.music[0], example.stems["sfx"][0]
    rng = np.random.default_rng(seed)
    targets, mixes = [], []
    for _ in range(MIXTURES):
        background = np.roll(music, rng.integers(music.size)) + np.roll(sfx, rng.integers(sfx.size))
        gain = np.sqrt(np.mean(background**2) / np.mean(speech**2)) * 10 ** (rng.uniform(*SNR_DB) / 20)
        targets.append(gain * speech)
        mixes.append(gain * speech + background)
    return np.array(targets, np.float32), np.array(mixes, np.float32), int(example.sample_rate)


def speech_gains_db(fx):
    """SI-SDR improvement of ``fx``'s speech stem over the mixture, per mixture (dB)."""
    targets, mixes, rate = dialog_mixtures()
    speech = fx.separate(mixes, rate)["speech"]  # mixtures as channels: one batch
    assert np.isfinite(speech).all()
    return np.array([si_sdr_db(t, s) - si_sdr_db(t, x) for t, s, x in zip(targets, speech, mixes, strict=True)])


def test_the_mixtures_are_fixed_and_hard_enough():
    targets, mixes, rate = dialog_mixtures()
    np.testing.assert_array_equal(mixes, dialog_mixtures()[1])
    assert rate == 48000 and mixes.shape == (MIXTURES, 6 * rate)
    before = [si_sdr_db(t, x) for t, x in zip(targets, mixes, strict=True)]
    assert all(-5.5 < b < 0.5 for b in before), before  # speech at -5..0 dB against the background


@pytest.mark.parametrize("variant", trained_variants())
def test_shipped_weights_improve_speech_over_the_mixture(variant):
    fx = FasTUSS(["speech"], model=variant, engine="torch")  # torch: no export, so quick on a fresh cache
    assert fx.weights == "trained"
    gains = speech_gains_db(fx)
    assert (gains > 0).all(), f"{variant}: speech SI-SDR improvement per mixture {np.round(gains, 2)} dB"


def test_every_shipped_model_is_ranked_for_a_mode():
    assert trained_variants(), "no trained weights ship"
    ranked = {v for variants in RANKING.values() for v in variants}
    assert set(trained_variants()) <= ranked, "rank new weights in fastuss_fx.pretrained.RANKING"
    assert all(load_variant(v).causal for v in RANKING["realtime"])
