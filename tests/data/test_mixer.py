import numpy as np
import pytest

from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig, Mixer, sample_prompts
from fastuss_fx.prompts import MUSIC_STEMS, PROMPTS, allowed_together

DRY = dict(reverb_probability=0.0, lowpass_probability=0.0, mix_lowpass_probability=0.0, silent_probability=0.0)


@pytest.fixture(scope="module")
def store(corpus):
    return ClipStore.from_manifest(corpus, cache="float32")


def test_prompts_obey_co_occurrence_and_repeat_rules():
    rng = np.random.default_rng(0)
    seen_repeat = seen_musicbg = False
    for _ in range(2000):
        prompts = sample_prompts(rng, int(rng.integers(2, 5)), PROMPTS, ("speech",))
        assert allowed_together(prompts)
        assert not ("musicbg" in prompts and set(prompts) & MUSIC_STEMS)
        repeated = {p for p in prompts if prompts.count(p) > 1}
        assert repeated <= {"speech"}
        seen_repeat |= bool(repeated)
        seen_musicbg |= "musicbg" in prompts
    assert seen_repeat and seen_musicbg


def test_prompts_limited_by_available_clips():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="cannot draw 3 prompts"):
        sample_prompts(rng, 3, ["speech"], ("speech",), {"speech": 2})


def test_gains_follow_their_ranges_and_targets_sum_to_mixture(store):
    config = MixConfig(chunk_seconds=0.5, **DRY)
    mixer = Mixer(store, store.subset("train"), config)
    rng = np.random.default_rng(1)
    for _ in range(40):
        example = mixer.example(rng, mixer.random_prompts(rng, int(rng.integers(2, 5))))
        np.testing.assert_allclose(example.targets.sum(0), example.mixture, atol=1e-6)
        assert np.max(np.abs(example.mixture)) <= config.peak_limit + 1e-6
        for prompt, gain, target, silent in zip(example.prompts, example.gains_db, example.targets, example.silent):
            low, high = config.background_gain_db if prompt in ("sfxbg", "musicbg") else config.gain_db
            assert low <= gain <= high
            if silent:
                assert not target.any()
                continue
            level_db = 20 * np.log10(np.sqrt(np.mean(target.astype(np.float64) ** 2)) / example.scale)
            assert level_db == pytest.approx(config.reference_db + gain, abs=1e-3)


def test_song_stems_are_aligned(store):
    mixer = Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.5, song_probability=1.0, **DRY))
    rng = np.random.default_rng(2)
    for _ in range(10):
        example = mixer.example(rng, ["bass", "speech", "drums", "other"])
        songs = {store.rows[c].song for c, p in zip(example.clips, example.prompts) if p != "speech"}
        assert len(songs) == 1 and None not in songs
        stem_offsets = {o for o, p in zip(example.offsets, example.prompts) if p != "speech"}
        assert len(stem_offsets) == 1


def test_repeated_speech_uses_distinct_clips(store):
    mixer = Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.5, **DRY))
    rng = np.random.default_rng(3)
    for _ in range(10):
        example = mixer.example(rng, ["speech", "speech", "speech"])
        assert len(set(example.clips)) == 3


def test_silent_targets_keep_one_source_audible(store):
    mixer = Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.5, **{**DRY, "silent_probability": 1.0}))
    rng = np.random.default_rng(4)
    for _ in range(10):
        example = mixer.example(rng, ["speech", "sfxbg", "musicbg"])
        assert example.silent.count(False) <= 1
        assert sum(bool(t.any()) for t in example.targets) <= 1


def test_augmented_targets_stay_consistent(store):
    config = MixConfig(chunk_seconds=0.5, reverb_probability=1.0, lowpass_probability=1.0, mix_lowpass_probability=1.0, silent_probability=0.0)
    wet = Mixer(store, store.subset("train"), config).example(np.random.default_rng(5), ["speech", "sfx"])
    dry = Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.5, **DRY)).example(np.random.default_rng(5), ["speech", "sfx"])
    np.testing.assert_allclose(wet.targets.sum(0), wet.mixture, atol=1e-6)
    assert wet.clips == dry.clips
    assert not np.allclose(wet.targets, dry.targets, atol=1e-3)


def test_bad_config_names_the_value():
    with pytest.raises(ValueError, match="'guitar'"):
        MixConfig(repeatable=("guitar",))
    with pytest.raises(ValueError, match=r"gain_db.*\(0.0, -10.0\)"):
        MixConfig(gain_db=(0.0, -10.0))
