import json

import numpy as np
import pytest
from pedalboard.io import AudioFile

from fastuss_fx.data.manifest import ClipStore, ManifestRow, load_clip, read_manifest, split_for, write_manifest


def test_round_trip_keeps_fields_and_extra_keys(tmp_path):
    rows = [
        ManifestRow("a.opus", "speech", "train", "GPL-2", 44100, 5.5, None, "tuxpaint", {"orig": ["x.ogg"], "text": "hi"}),
        ManifestRow("b.opus", "drums", "valid", "CC-BY-4.0", 48000, 8.0, "song-1", "groove-midi"),
    ]
    path = write_manifest(rows, tmp_path / "manifest.jsonl")
    back = read_manifest(tmp_path)  # a folder means folder/manifest.jsonl
    assert back == rows
    assert back[0].extra == {"orig": ["x.ogg"], "text": "hi"}
    assert json.loads(path.read_text().splitlines()[0])["text"] == "hi"


def test_bad_row_names_line_and_value(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps({"path": "a.wav", "role": "speech"}) + "\n" + json.dumps({"path": "b.wav", "role": "guitar"}) + "\n")
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: .*'guitar'"):
        read_manifest(path)
    path.write_text(json.dumps({"path": "a.wav", "role": "speech", "split": "test"}) + "\n")
    with pytest.raises(ValueError, match="'test'"):
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
