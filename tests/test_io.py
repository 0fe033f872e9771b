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


def _dtype(path):
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as f:
        return str(f.file_dtype)


def test_bit_depth_float_default_mode_0644_and_clipping_is_reported(tmp_path):
    import os
    import stat
    import warnings

    from fastuss_fx.io import source_bit_depth

    quiet = np.full((1, 100), 0.25, np.float32)
    assert _dtype(write_audio(tmp_path / "f.wav", quiet, 8000)) == "float32"  # float in, float out
    assert _dtype(write_audio(tmp_path / "i.wav", quiet, 8000, "24")) == "int24"
    assert source_bit_depth(tmp_path / "i.wav") == "24" and source_bit_depth(tmp_path / "f.wav") == "32f"
    assert _dtype(write_audio(tmp_path / "like.wav", quiet, 8000, like=tmp_path / "i.wav")) == "int24"
    assert _dtype(write_audio(tmp_path / "like.flac", quiet, 8000, like=tmp_path / "f.wav")) == "int24"
    assert _dtype(write_audio(tmp_path / "a.flac", quiet, 8000)) == "int24"  # best FLAC holds
    with pytest.raises(ValueError, match="bit depth 32f"):
        write_audio(tmp_path / "b.flac", quiet, 8000, "32f")
    with pytest.raises(ValueError, match="bit depth must be one of"):
        write_audio(tmp_path / "c.wav", quiet, 8000, "8")
    old = os.umask(0o022)
    try:
        assert stat.S_IMODE(os.stat(write_audio(tmp_path / "m.wav", quiet, 8000)).st_mode) == 0o644
    finally:
        os.umask(old)
    loud = quiet.copy()
    loud[0, :7] = 1.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_audio(tmp_path / "loud.wav", loud, 8000, "16")
    assert [str(w.message) for w in caught] == [f"{tmp_path / 'loud.wav'}: 7 sample(s) clipped at full scale"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_empty_and_nan_files_name_the_file_and_the_problem(tmp_path):
    from pedalboard.io import AudioFile

    empty = tmp_path / "empty.wav"
    with AudioFile(str(empty), "w", 8000, 1) as f:
        f.write(np.zeros((1, 0), np.float32))
    with pytest.raises(ValueError, match=r"empty\.wav holds no audio samples \(valid header, 0 frames\)"):
        read_audio(empty)
    bad = np.zeros((2, 800), np.float32)
    bad[1, 400] = np.nan
    nan = write_audio(tmp_path / "nan.wav", bad, 8000, "32f")
    with pytest.raises(ValueError, match=r"nan\.wav contains 1 NaN/inf sample\(s\), first at channel 1, sample 400"):
        read_audio(nan)


def test_render_manifest_and_figures_are_written_0644(tmp_path):
    import os
    import stat

    from fastuss_fx.render.manifest import Manifest

    old = os.umask(0o022)
    try:
        manifest = Manifest(tmp_path / "m.json")
        manifest.set("separate:/x.wav", status="done")
        manifest.save()
        assert stat.S_IMODE(os.stat(tmp_path / "m.json").st_mode) == 0o644
        pytest.importorskip("matplotlib")
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        from fastuss_fx.demo import save_figure

        path = save_figure(Figure(figsize=(1, 1)), tmp_path / "f.png")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644 and path.read_bytes()[:4] == b"\x89PNG"
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "m.json"]
