from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader

from fastuss_fx.data.dataset import MixtureStream, draw_batch, validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig, Mixer
from fastuss_fx.data.tasks import get_tasks


@pytest.fixture(scope="module")
def mixer(corpus):
    store = ClipStore.from_manifest(corpus, cache="float32")
    return Mixer(store, store.subset("train"), MixConfig(chunk_seconds=0.25))


def equal(a, b):
    return torch.equal(a.mixture, b.mixture) and torch.equal(a.targets, b.targets) and a.prompts == b.prompts


def test_batches_share_source_count_not_prompts(mixer):
    batch = draw_batch(mixer, seed=0, index=7, batch_size=6)
    count = batch.targets.shape[1]
    assert batch.mixture.shape == (6, 12000) and batch.targets.shape == (6, count, 12000)
    assert 2 <= count <= 4 and all(len(p) == count for p in batch.prompts)
    assert equal(batch, draw_batch(mixer, seed=0, index=7, batch_size=6))
    prompts = [tuple(draw_batch(mixer, 0, i, 4).prompts[j]) for i in range(5) for j in range(4)]
    assert len(set(prompts)) > 5


def test_stream_resumes_and_splits_ranks(mixer):
    stream = iter(MixtureStream(mixer, 2, seed=3, step=5))
    assert equal(next(stream), draw_batch(mixer, 3, 5, 2))
    assert equal(next(stream), draw_batch(mixer, 3, 6, 2))
    rank1 = iter(MixtureStream(mixer, 2, seed=3, step=4, rank=1, world_size=2))
    assert equal(next(rank1), draw_batch(mixer, 3, 9, 2))


def test_workers_give_the_same_order(mixer):
    loader = DataLoader(MixtureStream(mixer, 2, seed=1), batch_size=None, num_workers=2)
    got = [b for _, b in zip(range(4), loader, strict=False)]
    for step, batch in enumerate(got):
        assert equal(batch, draw_batch(mixer, 1, step, 2))


def test_validation_set_is_fixed_and_audible(corpus):
    store = ClipStore.from_manifest(corpus, cache="float32")
    tasks = get_tasks(["dialog", "music_stems", "two_talkers"])
    first = validation_batches(store, tasks, MixConfig(chunk_seconds=0.25), examples=3, batch_size=2)
    again = validation_batches(store, tasks, MixConfig(chunk_seconds=0.25), examples=3, batch_size=2)
    assert [b.name for b in first] == ["dialog", "dialog", "music_stems", "music_stems", "two_talkers", "two_talkers"]
    assert all(equal(a, b) for a, b in zip(first, again, strict=True))
    for batch in first:
        assert batch.targets.pow(2).sum(-1).min() > 0
        assert all(p == list(tasks[[t.name for t in tasks].index(batch.name)].prompts) for p in batch.prompts)


def test_validation_needs_enough_clips(corpus):
    store = ClipStore.from_manifest(corpus, cache="float32")
    task = get_tasks(["two_talkers"])[0].__class__("three_talkers", ("speech",) * 3, ("speech",))
    with pytest.raises(ValueError, match="three_talkers.*speech"):
        validation_batches(store, [task], MixConfig(chunk_seconds=0.25), examples=1)
    with pytest.raises(ValueError, match="'karaoke'"):
        get_tasks(["karaoke"])


def test_a_batch_is_one_task_in_shuffled_order(mixer):
    mixer = Mixer(mixer.store, mixer.store.subset("train"), MixConfig(chunk_seconds=0.1, task_weights=("dialog=1",)))
    for index in range(3):
        batch = draw_batch(mixer, 0, index, 4)
        assert all(sorted(p) == ["musicbg", "sfx", "speech"] for p in batch.prompts)
        torch.testing.assert_close(batch.targets.sum(1), batch.mixture, atol=1e-6, rtol=0)


def test_validation_gets_a_fixed_realistic_channel_unless_asked_not_to(mixer):
    store = mixer.store
    tasks = get_tasks(["denoise", "dialog"])
    wet = [
        validation_batches(store, tasks, MixConfig(chunk_seconds=0.25, reverb_probability=1.0), examples=2)
        for _ in range(2)
    ]
    dry = validation_batches(
        store, tasks, MixConfig(chunk_seconds=0.25, reverb_probability=1.0, valid_channel=False), examples=2
    )
    assert all(equal(a, b) for a, b in zip(*wet, strict=True))
    assert not any(torch.allclose(a.mixture, b.mixture, atol=1e-3) for a, b in zip(wet[0], dry, strict=True))
    for batch in wet[0]:
        torch.testing.assert_close(batch.targets.sum(1), batch.mixture, atol=1e-6, rtol=0)


def test_holdout_mixes_held_out_speech_with_test_backgrounds(corpus):
    store = ClipStore.from_manifest(corpus, cache="float32")
    valid = [r.split == "valid" for r in store.rows]
    store.rows = [
        replace(r, split="holdout" if r.role == "speech" else "test") if v else r
        for r, v in zip(store.rows, valid, strict=True)
    ]
    tasks, config = get_tasks(["dialog"]), MixConfig(chunk_seconds=0.25)
    batches = validation_batches(store, tasks, config, examples=2, batch_size=2, split="holdout")
    assert [b.name for b in batches] == ["dialog"] and batches[0].targets.pow(2).sum(-1).min() > 0
    rows = store.rows
    for moved in ("holdout", "test"):  # without held-out speech, or without test backgrounds: too few clips
        store.rows = [replace(r, split="train") if r.split == moved else r for r in rows]
        with pytest.raises(ValueError, match="the holdout split has too few clips"):
            validation_batches(store, tasks, config, examples=2, batch_size=2, split="holdout")
