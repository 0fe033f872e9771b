import os
import warnings

import numpy as np
import pytest
from pedalboard.io import AudioFile

from fastuss_fx.cli import main
from fastuss_fx.runtime import UntrainedWeightsWarning

pytestmark = pytest.mark.filterwarnings("ignore::fastuss_fx.runtime.UntrainedWeightsWarning")


def write(path, channels=2, rate=44100, seconds=0.1):
    audio = (0.1 * np.random.default_rng(0).standard_normal((channels, int(rate * seconds)))).astype(np.float32)
    with AudioFile(str(path), "w", rate, channels) as f:
        f.write(audio)
    return audio


def read(path):
    with AudioFile(str(path)) as f:
        return f.read(f.frames), f.samplerate


@pytest.mark.parametrize("suffix, channels, rate", [(".wav", 2, 44100), (".flac", 1, 22050)])
def test_separate_keeps_rate_channels_and_length(tmp_path, suffix, channels, rate):
    src = tmp_path / f"in{suffix}"
    audio = write(src, channels, rate)
    out = tmp_path / f"out{suffix}"
    assert (
        main(["separate", str(src), "-p", "remove_music", "--model", "tiny", "--allow-untrained", "-o", str(out)]) == 0
    )
    got, got_rate = read(out)
    assert got_rate == rate and got.shape == audio.shape
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary files left


def test_separate_realtime_mode_and_folder_of_inputs(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.flac"):
        write(tmp_path / "in" / name)
    out = tmp_path / "out"
    assert (
        main(
            [
                "separate",
                str(tmp_path / "in"),
                "-p",
                "denoise",
                "--model",
                "tiny-causal",
                "--allow-untrained",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["a_denoise.wav", "b_denoise.flac"]


def test_separate_with_the_int8_engine(tmp_path, capsys):
    src = tmp_path / "in.wav"
    audio = write(src)
    out = tmp_path / "out.wav"
    assert (
        main(
            [
                "separate",
                str(src),
                "-p",
                "denoise",
                "--model",
                "tiny-causal",
                "--allow-untrained",
                "--engine",
                "onnx-int8",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert read(out)[0].shape == audio.shape
    assert (
        main(
            [
                "separate",
                str(src),
                "-p",
                "remove_music",
                "--model",
                "tiny",
                "--allow-untrained",
                "--engine",
                "onnx-int8",
                "-o",
                str(tmp_path / "x.wav"),
            ]
        )
        == 2
    )
    assert "onnx-int8" in capsys.readouterr().err


def test_overwrite_is_required_and_input_is_never_overwritten(tmp_path, capsys):
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    write(src)
    out.write_bytes(b"keep me")
    args = ["separate", str(src), "-p", "dialog_only", "--model", "tiny", "--allow-untrained", "-o"]
    assert main(args + [str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(args + [str(src), "--overwrite"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert main(args + [str(out), "--overwrite"]) == 0


def test_stems_writes_one_file_per_source(tmp_path):
    src = tmp_path / "song.wav"
    audio = write(src)
    assert main(["stems", str(src), "--model", "tiny", "--allow-untrained", "-o", str(tmp_path / "stems")]) == 0
    files = sorted(p.name for p in (tmp_path / "stems" / "song").iterdir())
    assert files == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    assert read(tmp_path / "stems" / "song" / "bass.wav")[0].shape == audio.shape


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (None, ["separate", "{tmp}/missing.wav", "-p", "dialog_only", "-o", "{tmp}/o.wav"], "input not found"),
        (
            "corrupt",
            [
                "separate",
                "{tmp}/bad.wav",
                "-p",
                "dialog_only",
                "--model",
                "tiny",
                "--allow-untrained",
                "-o",
                "{tmp}/o.wav",
            ],
            "cannot decode",
        ),
        ("ok", ["separate", "{tmp}/in.wav", "-p", "nope", "-o", "{tmp}/o.wav"], "unknown preset 'nope'"),
        ("badpreset", ["separate", "{tmp}/in.wav", "-p", "{tmp}/p.yaml", "-o", "{tmp}/o.wav"], "p.yaml: key 'prompts'"),
        (
            "ok",
            [
                "separate",
                "{tmp}/in.wav",
                "-p",
                "dialog_only",
                "--model",
                "tiny",
                "--allow-untrained",
                "-o",
                "{tmp}/no/such/dir/o.wav",
            ],
            "output folder does not exist",
        ),
        ("ok", ["separate", "{tmp}/in.wav", "-p", "dialog_only", "-o", "{tmp}/o.opus"], "unsupported format"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(tmp_path, capsys, setup, args, message):
    if setup == "corrupt":
        (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wav file")
    if setup in ("ok", "badpreset"):
        write(tmp_path / "in.wav")
    if setup == "badpreset":
        (tmp_path / "p.yaml").write_text("prompts: [guitar]\n")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err and len(err.splitlines()) == 1


def test_presets_list_show_validate(tmp_path, capsys):
    assert main(["presets", "list"]) == 0
    assert "remove_music" in capsys.readouterr().out
    assert main(["presets", "show", "karaoke"]) == 0
    assert "prompts:" in capsys.readouterr().out
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("prompts: [speech]\n")
    bad.write_text("prompts: [speech]\nmix: {speech: loud}\n")
    assert main(["presets", "validate", str(good)]) == 0
    assert main(["presets", "validate", str(bad)]) == 2
    assert "bad.yaml: key 'mix'.speech" in capsys.readouterr().err


def test_a_model_without_trained_weights_needs_allow_untrained(tmp_path, capsys):
    src = tmp_path / "in.wav"
    write(src)
    for command in (["separate", "-p", "dialog_only"], ["stems"]):
        assert main([*command, str(src), "--model", "tiny", "-o", str(tmp_path / "o.wav")]) == 2
        err = capsys.readouterr().err
        assert (
            "model 'tiny' has no trained weights" in err and "--allow-untrained" in err and len(err.splitlines()) == 1
        )
    assert not (tmp_path / "o.wav").exists()


def test_one_plain_line_per_output_and_q_silences_it(tmp_path, capsys):
    src = tmp_path / "in.wav"
    write(src, seconds=0.5)
    out = tmp_path / "out.wav"
    assert (
        main(["separate", str(src), "-p", "remove_music", "--model", "tiny", "--allow-untrained", "-o", str(out)]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out} (0.5 s, preset remove_music, model tiny (UNTRAINED")
    assert lines[0].endswith(" s)") and "took " in lines[0]
    assert main(["stems", str(src), "--model", "tiny", "--allow-untrained", "-o", str(tmp_path / "stems")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"wrote {tmp_path / 'stems' / 'in' / n}.wav" for n in ("vocals", "drums", "bass", "other")
    ]
    for args in (["-q", "separate"], ["separate", "-q"]):
        assert (
            main(
                [
                    *args,
                    str(src),
                    "-p",
                    "remove_music",
                    "--model",
                    "tiny",
                    "--allow-untrained",
                    "-o",
                    str(out),
                    "--overwrite",
                ]
            )
            == 0
        )
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == ""


def test_warnings_are_one_line_without_source_code(tmp_path, capsys):
    warnings.simplefilter(
        "always", UntrainedWeightsWarning
    )  # this module ignores it elsewhere (pytest restores filters)
    src = tmp_path / "in.wav"
    write(src)
    assert (
        main(
            [
                "separate",
                str(src),
                "-p",
                "remove_music",
                "--model",
                "tiny",
                "--allow-untrained",
                "-o",
                str(tmp_path / "o.wav"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "fastuss: warning: FasTUSS model 'tiny' runs untrained (randomly initialised) weights: "
        "its output is not a separation"
    ]


def test_outputs_keep_the_input_bit_depth_unless_told(tmp_path):
    src = tmp_path / "in24.wav"
    with AudioFile(str(src), "w", 8000, 1, bit_depth=24) as f:
        f.write((0.1 * np.random.default_rng(0).standard_normal((1, 800))).astype(np.float32))
    base = ["separate", str(src), "-p", "remove_music", "--model", "tiny", "--allow-untrained", "-q", "-o"]
    for extra, name, dtype in (
        ([], "a.wav", "int24"),
        (["--bit-depth", "16"], "b.wav", "int16"),
        (["--bit-depth", "32f"], "c.wav", "float32"),
    ):
        assert main([*base, str(tmp_path / name), *extra]) == 0
        with AudioFile(str(tmp_path / name)) as f:
            assert str(f.file_dtype) == dtype, extra
    assert main(["stems", str(src), "--model", "tiny", "--allow-untrained", "-q", "-o", str(tmp_path / "st")]) == 0
    with AudioFile(str(tmp_path / "st" / "in24" / "vocals.wav")) as f:
        assert str(f.file_dtype) == "int24"
    code = main([*base, str(tmp_path / "x.flac"), "--bit-depth", "32f"])
    assert code == 2 and not (tmp_path / "x.flac").exists()


def test_a_preset_that_adds_gain_gets_headroom_and_says_so(tmp_path):
    import argparse
    from types import SimpleNamespace

    from fastuss_fx.commands._common import write_output

    src = tmp_path / "in.wav"
    write(src, 1, 8000)
    loud = np.full((1, 800), 1.4, np.float32)
    args = argparse.Namespace(bit_depth="16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_output(args, src, tmp_path / "enh.wav", loud, 8000, SimpleNamespace(mix={"dialogue": 3.0, "music": -9.0}))
        write_output(args, src, tmp_path / "raw.wav", loud, 8000, SimpleNamespace(mix={"dialogue": 0.0}))
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'enh.wav'}: turned down 3.9 dB to stay below -1 dBFS",
        f"{tmp_path / 'raw.wav'}: 800 sample(s) clipped at full scale",
    ]
    assert np.abs(read(tmp_path / "enh.wav")[0]).max() == pytest.approx(10 ** (-1 / 20), abs=1e-4)


def _no_work(*args, **kwargs):
    raise AssertionError("the separation ran before the outputs were checked")


@pytest.mark.parametrize(
    "command, setup, output, message",
    [
        ("separate", None, "no/such/dir/o.wav", "output folder does not exist: {tmp}/no/such/dir"),
        ("separate", "file", "afile/o.wav", "{tmp}/afile is a file, not a folder"),
        ("separate", None, "in.wav", "is the input file"),
        ("separate", None, "o.opus", "unsupported format '.opus'"),
        ("separate", "folder", "afolder/o.wav/", None),  # a folder output is fine; o.wav/ is created
        ("stems", "file", "afile", "output {tmp}/afile is a file"),
        ("stems", "in-file", "out", "{tmp}/out/in is a file, not a folder"),
        ("stems", "exists", "out", "output {tmp}/out/in/vocals.wav exists"),
        ("stems", "twin", "out", "several inputs would write the same output {tmp}/out/in/vocals.wav"),
    ],
)
def test_outputs_are_checked_before_any_work(tmp_path, capsys, monkeypatch, command, setup, output, message):
    from fastuss_fx.processor import FasTUSS

    monkeypatch.setattr(FasTUSS, "process", _no_work)
    monkeypatch.setattr(FasTUSS, "separate", _no_work)
    write(tmp_path / "in.wav")
    inputs = [str(tmp_path / "in.wav")]
    if setup == "file":
        (tmp_path / "afile").write_text("x")
    if setup == "folder":
        (tmp_path / "afolder").mkdir()
    if setup == "in-file":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "in").write_text("x")
    if setup == "exists":
        (tmp_path / "out" / "in").mkdir(parents=True)
        (tmp_path / "out" / "in" / "vocals.wav").write_text("x")
    if setup == "twin":
        (tmp_path / "b").mkdir()
        write(tmp_path / "b" / "in.wav")
        inputs.append(str(tmp_path / "b" / "in.wav"))
    preset = ["-p", "dialog_only"] if command == "separate" else []
    args = [command, *inputs, *preset, "--model", "tiny", "--allow-untrained", "-o", f"{tmp_path}/{output}"]
    if message is None:
        with pytest.raises(AssertionError, match="separation ran"):  # past the checks, into the work
            main(args)
        return
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message.format(tmp=tmp_path) in err and len(err.splitlines()) == 1


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user")
def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from fastuss_fx.processor import FasTUSS

    monkeypatch.setattr(FasTUSS, "separate", _no_work)
    write(tmp_path / "in.wav")
    (tmp_path / "ro").mkdir(mode=0o555)
    assert (
        main(["stems", str(tmp_path / "in.wav"), "--model", "tiny", "--allow-untrained", "-o", str(tmp_path / "ro")])
        == 2
    )
    assert f"output folder is not writable: {tmp_path / 'ro'}" in capsys.readouterr().err


def test_stems_help_says_where_the_files_go(capsys):
    with pytest.raises(SystemExit):
        main(["stems", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "OUT/NAME/STEM.EXT" in help_text and "song.wav -o stems/ gives stems/song/vocals.wav" in help_text


def _fails_with(error):
    def run(args):
        raise error

    return run


@pytest.mark.parametrize("debug", [[], ["--debug"], ["FASTUSS_DEBUG=1"]])
def test_errors_show_their_traceback_only_when_debugging(monkeypatch, capsys, debug):
    """A ``TypeError`` (also a bug's) is one line, unless ``--debug`` or ``FASTUSS_DEBUG=1`` asks for the trace."""
    monkeypatch.setattr("fastuss_fx.commands.complexity.run", _fails_with(TypeError("bad thing")))
    monkeypatch.delenv("FASTUSS_DEBUG", raising=False)
    if debug == ["FASTUSS_DEBUG=1"]:
        monkeypatch.setenv("FASTUSS_DEBUG", "1")
    assert main(["complexity", *(d for d in debug if d.startswith("--"))]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "fastuss complexity: error: bad thing"
    assert lines[0] == "Traceback (most recent call last):" if debug else len(lines) == 1


def test_a_missing_extra_is_named_with_its_install_command(monkeypatch, capsys):
    """Without torch (the base install), a command that needs it says which extra adds it."""
    missing = ModuleNotFoundError("No module named 'torch'", name="torch")
    monkeypatch.setattr("fastuss_fx.commands.complexity.run", _fails_with(missing))
    assert main(["complexity"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "fastuss complexity: error: this needs torch, which is not installed here: pip install 'fastuss-fx[torch]'\n"
    )
    monkeypatch.setattr("fastuss_fx.commands.complexity.run", _fails_with(ImportError("cannot import name 'x'")))
    assert main(["--debug", "complexity"]) == 2
    assert "Traceback" in capsys.readouterr().err
