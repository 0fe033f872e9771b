import json
import os

import numpy as np
import pytest
from pedalboard.io import AudioFile

from fastuss_fx.data import manifest
from fastuss_fx.data.manifest import (
    ClipStore,
    ManifestRow,
    leaked_groups,
    load_clip,
    read_manifest,
    split_for,
    write_manifest,
)


def test_round_trip_keeps_fields_and_extra_keys(tmp_path):
    rows = [
        ManifestRow(
            "a.opus", "speech", "train", "GPL-2", 44100, 5.5, None, "tuxpaint", {"orig": ["x.ogg"], "text": "hi"}
        ),
        ManifestRow("b.opus", "drums", "valid", "CC-BY-4.0", 48000, 8.0, "song-1", "groove-midi"),
    ]
    path = write_manifest(rows, tmp_path / "manifest.jsonl")
    back = read_manifest(tmp_path)  # a folder means folder/manifest.jsonl
    assert back == rows
    assert back[0].extra == {"orig": ["x.ogg"], "text": "hi"}
    assert json.loads(path.read_text().splitlines()[0])["text"] == "hi"


def test_bad_row_names_line_and_value(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(
        json.dumps({"path": "a.wav", "role": "speech"}) + "\n" + json.dumps({"path": "b.wav", "role": "guitar"}) + "\n"
    )
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: .*'guitar'"):
        read_manifest(path)
    path.write_text(json.dumps({"path": "a.wav", "role": "speech", "split": "bogus"}) + "\n")
    with pytest.raises(ValueError, match="'bogus'"):
        read_manifest(path)


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest"):
        read_manifest(tmp_path)


def test_split_is_deterministic_and_roughly_five_percent():
    splits = [split_for(f"pkg/file_{i}.ogg") for i in range(2000)]
    assert splits == [split_for(f"pkg/file_{i}.ogg") for i in range(2000)]
    assert 50 < splits.count("valid") < 150


def test_load_clip_resamples_and_downmixes(tmp_path):
    t = np.arange(24000) / 24000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1) * 0.5
    with AudioFile(str(tmp_path / "x.wav"), "w", 24000, 2) as f:
        f.write(stereo.T.astype(np.float32))
    audio = load_clip(tmp_path / "x.wav", 48000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 48000) <= 64
    rms = np.sqrt(np.mean(audio[2000:-2000] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_int16_cache_matches_float32(corpus):
    exact = ClipStore.from_manifest(corpus, cache="float32")
    small = ClipStore.from_manifest(corpus, cache="int16")
    assert np.max(np.abs(exact.audio(0) - small.audio(0))) <= 1.0 / 32767
    assert small._audio[0].dtype == np.int16
    assert len(small.subset("valid")) == 16 and len(small.subset("train")) == 24
    with pytest.raises(ValueError, match="'bogus'"):
        ClipStore.from_manifest(corpus, cache="bogus")


def test_old_rows_without_group_default_to_the_source(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(
        json.dumps({"path": "a.flac", "role": "speech", "source": "tuxpaint"})
        + "\n"
        + json.dumps({"path": "b.flac", "role": "sfx"})
        + "\n"
        + json.dumps({"path": "c.flac", "role": "speech", "source": "fotaq", "group": "fotaq:joe", "split": "test"})
        + "\n"
    )
    a, b, c = read_manifest(path)
    assert (a.group, b.group, c.group, c.split) == ("tuxpaint", "b.flac", "fotaq:joe", "test")
    write_manifest([a, b, c], path)
    assert [r.group for r in read_manifest(path)] == ["tuxpaint", "b.flac", "fotaq:joe"]


def test_group_split_three_ways_deterministic():
    keys = [f"src:speaker{i}" for i in range(3000)]
    splits = [split_for(k, 0.1, 0.1) for k in keys]
    assert splits == [split_for(k, 0.1, 0.1) for k in keys]
    assert 0.08 < splits.count("valid") / 3000 < 0.12 and 0.08 < splits.count("test") / 3000 < 0.12
    assert [split_for(k, 0.1) for k in keys] == [
        s if s != "test" else "train" for s in splits
    ]  # test comes out of train only
    with pytest.raises(ValueError, match="sum < 1"):
        split_for("x", 0.6, 0.5)


def test_leaked_groups_finds_a_group_in_two_splits():
    rows = [
        ManifestRow("a", "speech", "train", group="s:1"),
        ManifestRow("b", "speech", "train", group="s:1"),
        ManifestRow("c", "speech", "test", group="s:2"),
        ManifestRow("d", "speech", "valid", group="s:1"),
    ]
    assert leaked_groups(rows) == {"s:1": {"train", "valid"}}
    assert leaked_groups(rows[:3]) == {}


def test_stats_hours_per_split_and_tts_share(capsys):
    from fastuss_fx.data.stats import corpus_stats

    def row(path, role, split, source, seconds, group=None, **extra):
        return ManifestRow(path, role, split, "x", 48000, seconds, None, source, extra, group or f"{source}:g")

    rows = [
        row("a", "speech", "train", "fotaq", 3600, "fotaq:joe"),
        row("b", "speech", "test", "fotaq", 1800, "fotaq:talk02"),
        row("c", "speech", "holdout", "drascula", 900),
        row("d", "speech", "valid", "espeak-ng", 600, generator="espeak-ng -v en"),
        row("e", "musicbg", "train", "naev-data", 1200),
        row("f", "musicbg", "valid", "naev-data", 300, "naev-data:x"),
    ]
    stats = corpus_stats(rows)
    assert stats.hours["speech", "train"] == pytest.approx(1.0) and stats.hours["speech", "holdout"] == pytest.approx(
        0.25
    )
    assert stats.role_hours("musicbg") == pytest.approx(0.4167, abs=1e-3)
    assert stats.speech_hours(synthetic=True) == pytest.approx(600 / 3600)
    assert stats.speech_hours(synthetic=False) == pytest.approx(1.75)
    assert stats.real_speech_sources() == ["drascula", "fotaq"] and stats.real_speech_sources(
        ["train", "valid", "test"]
    ) == ["fotaq"]
    text = stats.table()
    assert (
        "holdout sources: drascula" in text
        and "synthetic 0.17 h = 8.7 %" in text
        and "groups in more than one split: 0" in text
    )
    assert "naev-data" in text and "espeak-ng (synthetic)" in text
    leaky = corpus_stats(rows + [row("g", "musicbg", "test", "naev-data", 60, "naev-data:x")])
    assert "groups in more than one split: 1" in leaky.table()


def test_mmap_cache_decodes_once_and_matches_memory_cache(tmp_path, monkeypatch):
    from fastuss_fx.data.synthetic import write_synthetic_corpus

    folder = write_synthetic_corpus(tmp_path / "corpus", clips_per_role=1, valid_per_role=1, seconds=0.5)
    memory = ClipStore.from_manifest(folder, cache="int16")
    mapped = ClipStore.from_manifest(folder, cache="mmap", cache_dir=tmp_path / "clips")
    for index in range(len(memory)):
        np.testing.assert_array_equal(mapped.audio(index), memory.audio(index))
    files = sorted((tmp_path / "clips").rglob("*.npy"))
    assert len(files) == len(memory) and all(f.stat().st_mode & 0o777 == 0o644 for f in files)
    monkeypatch.setattr(manifest, "load_clip", _no_decoding)  # a second store reads the cache
    again = ClipStore.from_manifest(folder, cache="mmap", cache_dir=tmp_path / "clips")
    np.testing.assert_array_equal(again.audio(0), memory.audio(0))


def _no_decoding(path, sample_rate):
    raise AssertionError(f"decoded {path} again")


def test_mmap_cache_of_a_rebuilt_corpus_holds_the_new_audio(tmp_path):
    """A clip rewritten at the same path with the same length, file size and modification time
    is decoded anew, and its stale copy leaves the cache."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_manifest([ManifestRow("a.wav", "speech")], corpus / "manifest.jsonl")
    clip = corpus / "a.wav"
    old, new = (0.5 * np.sin(np.linspace(0, f, 4800, dtype=np.float32)) for f in (100, 300))
    for audio in (old, new):
        stat = clip.stat() if clip.exists() else None
        with AudioFile(str(clip), "w", 48000, 1) as f:
            f.write(audio[None])
        if stat is not None:  # the rebuild keeps size and mtime: only the bytes tell the clips apart
            os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            assert clip.stat().st_size == stat.st_size
        store = ClipStore.from_manifest(corpus, cache="mmap", cache_dir=tmp_path / "clips")
        np.testing.assert_allclose(store.audio(0), audio, atol=2 / 32767)
    assert len(list((tmp_path / "clips").iterdir())) == 1


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    from fastuss_fx.atomic import atomic_path

    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o644
