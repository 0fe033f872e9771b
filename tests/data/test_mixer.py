from dataclasses import replace

import numpy as np
import pytest

from fastuss_fx.data import augment
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig, Mixer, parse_task_weights, sample_prompts
from fastuss_fx.prompts import MUSIC_STEMS, PROMPTS, allowed_together

CHANNEL = (
    "reverb_probability",
    "lowpass_probability",
    "mix_lowpass_probability",
    "bandwidth_probability",
    "tilt_probability",
    "clip_probability",
    "babble_probability",
)
DRY = dict({name: 0.0 for name in CHANNEL}, silent_probability=0.0)
WET = dict({name: 1.0 for name in CHANNEL}, silent_probability=0.0, room_source_probability=1.0)


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
        for prompt, gain, target, silent, snr in zip(
            example.prompts, example.gains_db, example.targets, example.silent, example.snr_db, strict=True
        ):
            if snr is None:  # backgrounds with a talker are set by SNR instead (test below)
                low, high = config.background_gain_db if prompt in ("sfxbg", "musicbg") else config.gain_db
                assert low <= gain <= high
            if silent:
                assert not target.any()
                continue
            level_db = augment.loudness_db(target / example.scale, config.sample_rate)
            assert level_db == pytest.approx(config.reference_db + gain, abs=1e-3)


def test_song_stems_are_aligned(store):
    mixer = Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.5, song_probability=1.0, **DRY))
    rng = np.random.default_rng(2)
    for _ in range(10):
        example = mixer.example(rng, ["bass", "speech", "drums", "other"])
        songs = {store.rows[c].song for c, p in zip(example.clips, example.prompts, strict=True) if p != "speech"}
        assert len(songs) == 1 and None not in songs
        stem_offsets = {o for o, p in zip(example.offsets, example.prompts, strict=True) if p != "speech"}
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
    config = MixConfig(chunk_seconds=0.5, **WET)
    wet = Mixer(store, store.subset("train"), config).example(np.random.default_rng(5), ["speech", "sfx"])
    dry = Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.5, **DRY)).example(
        np.random.default_rng(5), ["speech", "sfx"]
    )
    np.testing.assert_allclose(wet.targets.sum(0), wet.mixture, atol=1e-6)
    assert wet.clips == dry.clips and wet.room is not None and wet.clip_db is not None
    assert not np.allclose(wet.targets, dry.targets, atol=1e-3)


@pytest.mark.parametrize("mode", [*CHANNEL, "all"])
def test_targets_sum_to_mixture_in_every_mode(many_talkers, mode):
    config = MixConfig(
        chunk_seconds=0.25, **(WET if mode == "all" else {**DRY, mode: 1.0, "room_source_probability": 1.0})
    )
    mixer = Mixer(many_talkers, many_talkers.subset("train"), config)
    rng = np.random.default_rng(6)
    for prompts in (["speech", "sfxbg", "musicbg"], ["speech", "speech", "sfx", "sfxbg"], ["drums", "bass", "vocals"]):
        example = mixer.example(rng, prompts)
        np.testing.assert_allclose(example.targets.sum(0), example.mixture, atol=1e-6)
        assert np.max(np.abs(example.mixture)) <= config.peak_limit + 1e-6
        assert example.targets.dtype == example.mixture.dtype == np.float32


def energy_above(audio, cutoff_hz, rate=48000):
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64), axis=-1)) ** 2
    return spectrum[..., np.fft.rfftfreq(audio.shape[-1], 1 / rate) >= cutoff_hz].sum(-1) / (spectrum.sum(-1) + 1e-30)


def test_band_limit_follows_the_lowest_native_rate(store):
    rows = [replace(row, native_rate=8000) if row.role == "speech" else row for row in store.rows]
    narrow = ClipStore(rows, store.root, cache="float32")
    for extra in ({}, {"clip_probability": 1.0}, {"reverb_probability": 1.0, "tilt_probability": 1.0}):
        mixer = Mixer(
            narrow,
            narrow.subset("train"),
            MixConfig(chunk_seconds=0.25, **{**DRY, "bandwidth_probability": 1.0, **extra}),
        )
        example = mixer.example(np.random.default_rng(7), ["speech", "sfxbg", "musicbg"])
        assert example.cutoff_hz == 4000.0
        assert energy_above(example.mixture, 4000.0) < 1e-10
        assert np.all(energy_above(example.targets, 4000.0) < 1e-10)
        assert energy_above(example.targets[1:], 3000.0).min() > 1e-4  # the noise was full band before
    full = Mixer(narrow, narrow.subset("train"), MixConfig(chunk_seconds=0.25, **{**DRY, "bandwidth_probability": 1.0}))
    assert full.example(np.random.default_rng(7), ["sfxbg", "musicbg"]).cutoff_hz is None  # all 48 kHz: nothing to do


def test_codec_band_limits(store):
    mixer = Mixer(
        store, store.subset("train"), MixConfig(chunk_seconds=0.25, **{**DRY, "mix_lowpass_probability": 1.0})
    )
    rng = np.random.default_rng(8)
    cutoffs = set()
    for _ in range(12):
        example = mixer.example(rng, ["speech", "sfxbg"])
        cutoffs.add(example.cutoff_hz)
        assert energy_above(example.mixture, example.cutoff_hz) < 1e-10
    assert cutoffs == set(MixConfig().codec_hz)


def test_full_band_speech_is_drawn_more_often(store):
    rows = [replace(row, native_rate=8000) if row.role == "speech" else row for row in store.rows]
    wide = store.subset("train")[[r.role for r in (rows[i] for i in store.subset("train"))].index("speech")]
    rows[wide] = replace(rows[wide], native_rate=44100)
    mixer = Mixer(ClipStore(rows, store.root), store.subset("train"), MixConfig(fullband_speech_weight=3.0))
    rng = np.random.default_rng(9)
    share = np.mean([mixer._pick_clips(rng, ["speech"], set()) == [wide] for _ in range(3000)])
    assert share == pytest.approx(3 / 5, abs=0.04)  # 3 clips, weights 3, 1, 1


def test_room_is_shared_by_the_sources(store, monkeypatch):
    calls = []
    convolve = augment.convolve
    monkeypatch.setattr(
        augment,
        "convolve",
        lambda audio, impulse, context=0: calls.append((audio, impulse)) or convolve(audio, impulse, context),
    )
    config = MixConfig(chunk_seconds=0.25, **{**DRY, "reverb_probability": 1.0, "room_source_probability": 1.0})
    mixer = Mixer(store, store.subset("train"), config)
    example = mixer.example(np.random.default_rng(10), ["speech", "sfx", "sfxbg"])
    assert example.in_room == [True, True, True]
    assert len(calls) == 1 and calls[0][0].shape[0] == 3 and calls[0][1] is example.room  # one impulse for all three
    assert config.rt60_s[0] * 48000 <= len(example.room) <= config.rt60_s[1] * 48000
    calls.clear()
    dry = Mixer(store, store.subset("train"), replace(config, reverb_probability=0.0)).example(
        np.random.default_rng(10), ["speech", "sfx", "sfxbg"]
    )
    assert dry.room is None and not any(dry.in_room) and not calls


def test_snr_is_drawn_in_loudness_terms(store):
    config = MixConfig(
        chunk_seconds=0.5,
        snr_db=(-5.0, 25.0),
        **{**DRY, "tilt_probability": 1.0, "reverb_probability": 1.0, "bandwidth_probability": 1.0},
    )
    mixer = Mixer(store, store.subset("train"), config)
    rng = np.random.default_rng(11)
    snrs = []
    for _ in range(30):
        example = mixer.example(rng, ["sfxbg", "speech", "musicbg"])
        if example.silent[1]:  # the window fell into silence: no talker to set an SNR against
            assert example.snr_db == [None, None, None]
            continue
        speech = augment.loudness_db(example.targets[1], config.sample_rate)
        for s in (0, 2):
            assert -5.0 <= example.snr_db[s] <= 25.0
            assert speech - augment.loudness_db(example.targets[s], config.sample_rate) == pytest.approx(
                example.snr_db[s], abs=1e-3
            )
            snrs.append(example.snr_db[s])
        assert example.snr_db[1] is None
    assert len(snrs) > 40 and min(snrs) < 5.0 and max(snrs) > 15.0


@pytest.fixture(scope="module")
def many_talkers(store):
    """The corpus with every speech row listed three times (9 train talkers: enough for babble)."""
    rows = store.rows + [row for row in store.rows if row.role == "speech"] * 2
    return ClipStore(rows, store.root, cache="float32")


def test_babble_is_made_of_other_training_talkers(many_talkers):
    config = MixConfig(chunk_seconds=0.25, babble_talkers=(4, 10), **{**DRY, "babble_probability": 1.0})
    mixer = Mixer(many_talkers, many_talkers.subset("train"), config)
    train_speech = {i for i in many_talkers.subset("train") if many_talkers.rows[i].role == "speech"}
    rng = np.random.default_rng(12)
    for _ in range(5):
        example = mixer.example(rng, ["speech", "sfxbg"])
        talkers = example.babble[1]
        assert example.clips[1] == -1 and 4 <= len(talkers) <= 8 and len(set(talkers)) == len(talkers)
        assert set(talkers) <= train_speech and example.clips[0] not in talkers
        assert example.targets[1].any()
    few = Mixer(many_talkers, many_talkers.subset("valid"), replace(config, babble_talkers=(6, 10))).example(
        rng, ["speech", "sfxbg"]
    )
    assert not few.babble and few.clips[1] >= 0  # 6 valid talkers minus the target: too few, plain sfxbg


def test_task_weights_favour_speech_against_background(store):
    mixer = Mixer(store, store.subset("train"), MixConfig())
    rng = np.random.default_rng(13)
    batches = [mixer.batch_prompts(rng, 2) for _ in range(1000)]
    assert all(len(b[0]) == len(b[1]) for b in batches)
    versus = np.mean([("speech" in b[0]) and bool({"sfxbg", "musicbg"} & set(b[0])) for b in batches])
    assert versus >= 0.5
    assert any(sorted(b[0]) == ["musicbg", "sfx", "speech"] and b[0] != b[1] for b in batches)  # dialog, shuffled
    small = Mixer(store, store.subset("train"), MixConfig(max_sources=2, task_weights=("dialog=1", "denoise=1")))
    assert [t for t, _ in small.tasks] == [("speech", "sfxbg")]  # dialog (3 sources) does not fit
    assert parse_task_weights(["speech+sfxbg=2", "random=1"]) == [(("speech", "sfxbg"), 2.0), (None, 1.0)]
    for bad in (["dialog"], ["dialog=-1"], ["speech+guitar=1"], ["musicbg+drums=1"], ["random=0"]):
        with pytest.raises(ValueError, match="task"):
            MixConfig(task_weights=tuple(bad))


def test_mixtures_are_deterministic(many_talkers):
    mixer = Mixer(many_talkers, many_talkers.subset("train"), MixConfig(chunk_seconds=0.25, **WET))
    a, b = (mixer.example(np.random.default_rng(14), ["speech", "sfxbg", "musicbg"]) for _ in range(2))
    assert np.array_equal(a.mixture, b.mixture) and np.array_equal(a.targets, b.targets) and a.babble == b.babble


def test_bad_config_names_the_value():
    with pytest.raises(ValueError, match="'guitar'"):
        MixConfig(repeatable=("guitar",))
    with pytest.raises(ValueError, match=r"gain_db.*\(0.0, -10.0\)"):
        MixConfig(gain_db=(0.0, -10.0))
    with pytest.raises(ValueError, match=r"rt60_s must be positive, got \(0.0, 1.0\)"):
        MixConfig(rt60_s=(0.0, 1.0))
    with pytest.raises(ValueError, match="fullband_speech_weight"):
        MixConfig(fullband_speech_weight=0.0)
