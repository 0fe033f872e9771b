import numpy as np
import pytest

from fastuss_fx.io import check_output, find_inputs, read_audio, write_audio


def test_write_read_round_trip_is_atomic(tmp_path):
    audio = np.zeros((2, 1000), np.float32)
    path = write_audio(tmp_path / "a.wav", audio, 48000)
    got, rate = read_audio(path)
    assert rate == 48000 and got.shape == (2, 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_checks(tmp_path):
    src = tmp_path / "in.wav"
    write_audio(src, np.zeros((1, 10), np.float32), 8000)
    with pytest.raises(ValueError, match="is the input file"):
        check_output(tmp_path / "." / "in.wav", [src], overwrite=True)
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_output(src, [], overwrite=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        find_inputs([tmp_path / "empty"])
    (tmp_path / "notes.txt").write_text("x")
    assert find_inputs([tmp_path]) == [src]
