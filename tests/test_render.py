"""``fastuss render`` on a local Ray: bad inputs recorded, resumable runs, outputs equal ``separate``,
engine, weights hash, one driver per folder, export warmed in the driver."""

import ast
import json
import logging
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

from fastuss_fx.cli import main
from fastuss_fx.render import LOCK_NAME, MANIFEST_NAME, Manifest, RenderLocked, expand_inputs, render_lock, weights_hash

pytestmark = pytest.mark.filterwarnings("ignore::fastuss_fx.runtime.UntrainedWeightsWarning")

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for the whole module (render joins it instead of starting its own).

    Ray's memory monitor is off: on a shared CI machine it kills our small workers for memory
    that other processes use.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_memory_monitor_refresh_ms", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def write(path, seed, channels=2, rate=16000, seconds=0.2):
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = (0.1 * np.random.default_rng(seed).standard_normal((channels, int(rate * seconds)))).astype(np.float32)
    with AudioFile(str(path), "w", rate, channels) as f:
        f.write(audio)


def read(path):
    with AudioFile(str(path)) as f:
        return f.read(f.frames)


def make_inputs(folder, count):
    """``count`` short files, some in a sub-folder and some FLAC; returns their relative paths."""
    rels = [f"{'sub/' if i % 3 == 0 else ''}clip{i}{'.flac' if i % 4 == 1 else '.wav'}" for i in range(count)]
    for i, rel in enumerate(rels):
        write(folder / rel, seed=i, channels=1 + i % 2)
    return rels


def manifest_statuses(out):
    entries = json.loads((out / MANIFEST_NAME).read_text())["entries"]
    return {e["input"].split("/in/")[-1]: (e["status"], e["error"]) for e in entries.values()}


def render_args(inputs, out, *extra):
    return [
        "render",
        *map(str, inputs),
        "-p",
        "remove_music",
        "--model",
        "tiny",
        "--allow-untrained",
        "-o",
        str(out),
        "--workers",
        "2",
        *extra,
    ]


def test_bad_input_is_recorded_and_outputs_equal_separate(tmp_path, local_ray, capsys):
    rels = make_inputs(tmp_path / "in", 8)
    (tmp_path / "in" / "sub" / "corrupt.wav").write_bytes(b"RIFF\x00\x00 not audio at all")
    (tmp_path / "in" / "empty.flac").write_bytes(b"")
    out = tmp_path / "out"
    assert main(render_args([tmp_path / "in"], out)) == 1
    captured = capsys.readouterr()
    assert "render: 8 done, 0 skipped, 2 failed" in captured.out
    assert "corrupt.wav: ValueError: cannot decode" in captured.err
    assert "empty.flac: ValueError: cannot decode" in captured.err
    statuses = manifest_statuses(out)
    assert statuses.pop("sub/corrupt.wav")[0] == statuses.pop("empty.flac")[0] == "failed"
    assert statuses == {rel: ("done", None) for rel in rels}

    single = tmp_path / "single"
    assert (
        main(
            [
                "separate",
                *(str(tmp_path / "in" / r) for r in rels),
                "-p",
                "remove_music",
                "--model",
                "tiny",
                "--allow-untrained",
                "-o",
                str(single),
            ]
        )
        == 0
    )
    for rel in rels:
        name = rel.split("/")[-1].replace(".", "_remove_music.")
        mirrored = out / rel.rsplit("/", 1)[0] / name if "/" in rel else out / name
        np.testing.assert_allclose(read(mirrored), read(single / name), rtol=0, atol=1e-6)
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


def test_killed_run_resumes_without_redoing_finished_files(tmp_path, local_ray, capsys):
    rels = make_inputs(tmp_path / "in", 6)
    out = tmp_path / "out"
    # A run that stops after 3 files: the manifest holds 3 done and 3 pending, like a killed run.
    assert main(render_args([tmp_path / "in"], out, "--limit", "3")) == 0
    assert "render: 3 done, 0 skipped, 0 failed, 3 left" in capsys.readouterr().out
    statuses = manifest_statuses(out)
    done = sorted(r for r in rels if statuses[r][0] == "done")
    pending = sorted(r for r in rels if statuses[r][0] == "pending")
    assert len(done) == 3 and len(pending) == 3
    outputs = {r: out / r.replace(".", "_remove_music.") for r in rels}
    before = {r: outputs[r].stat().st_ino for r in done}
    # What a kill leaves besides: a temporary file, and an output whose manifest entry was never updated.
    (out / ".clip9_remove_music.abc.wav").write_bytes(b"half")
    outputs[pending[0]].write_bytes(b"not finished")

    assert main(render_args([tmp_path / "in"], out)) == 0
    assert "render: 3 done, 3 skipped, 0 failed" in capsys.readouterr().out
    assert {r: outputs[r].stat().st_ino for r in done} == before  # finished files were not rewritten
    assert read(outputs[pending[0]]).shape[-1] == 3200
    assert set(manifest_statuses(out).values()) == {("done", None)}

    # Nothing left: a rerun starts no worker; a changed input is redone.
    assert main(render_args([tmp_path / "in"], out)) == 0
    assert "render: 0 done, 6 skipped, 0 failed" in capsys.readouterr().out
    write(tmp_path / "in" / rels[1], seed=99, channels=2, seconds=0.3)
    assert main(render_args([tmp_path / "in"], out)) == 0
    assert "render: 1 done, 5 skipped, 0 failed" in capsys.readouterr().out


def test_stems_equal_the_stems_command(tmp_path, local_ray):
    for name in ("a.wav", "b.flac"):
        write(tmp_path / "in" / name, seed=len(name))
    out, single = tmp_path / "out", tmp_path / "single"
    assert main(render_args([tmp_path / "in" / "*.*"], out, "--stems")) == 0
    assert (
        main(
            [
                "stems",
                str(tmp_path / "in"),
                "-p",
                "remove_music",
                "--model",
                "tiny",
                "--allow-untrained",
                "-o",
                str(single),
            ]
        )
        == 0
    )
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*.*") if p.name != MANIFEST_NAME)
    assert got == sorted(str(p.relative_to(single)) for p in single.rglob("*.*"))
    assert got == [
        "a/dialogue.wav",
        "a/effects.wav",
        "a/music.wav",
        "b/dialogue.flac",
        "b/effects.flac",
        "b/music.flac",
    ]
    for rel in got:
        np.testing.assert_allclose(read(out / rel), read(single / rel), rtol=0, atol=1e-6)


def test_engine_reaches_the_workers(tmp_path, local_ray):
    write(tmp_path / "in" / "a.wav", seed=0)
    out = tmp_path / "out"
    causal = ("--model", "tiny-causal")
    assert main(render_args([tmp_path / "in"], out, *causal, "--engine", "onnx-int8")) == 0
    got = read(out / "a_remove_music.wav")
    for engine in ("onnx-int8", "onnx"):
        assert (
            main(
                [
                    "separate",
                    str(tmp_path / "in" / "a.wav"),
                    "-p",
                    "remove_music",
                    *causal,
                    "--allow-untrained",
                    "--engine",
                    engine,
                    "-o",
                    str(tmp_path / f"{engine}.wav"),
                ]
            )
            == 0
        )
    np.testing.assert_allclose(got, read(tmp_path / "onnx-int8.wav"), rtol=0, atol=1e-6)
    assert np.abs(got - read(tmp_path / "onnx.wav")).max() > 1e-4  # the int8 graph really ran
    (entry,) = json.loads((out / MANIFEST_NAME).read_text())["entries"].values()
    assert entry["settings"]["engine"] == "onnx-int8"


def test_new_weights_rerender_finished_files(tmp_path, local_ray, capsys, monkeypatch):
    make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert main(render_args([tmp_path / "in"], out)) == 0
    entries = json.loads((out / MANIFEST_NAME).read_text())["entries"].values()
    assert {e["weights"] for e in entries} == {weights_hash("tiny")}
    assert main(render_args([tmp_path / "in"], out)) == 0
    assert "render: 0 done, 2 skipped, 0 failed" in capsys.readouterr().out
    monkeypatch.setattr("fastuss_fx.render.runner.weights_hash", lambda model: "file-sha256:retrained")
    assert main(render_args([tmp_path / "in"], out)) == 0
    assert "render: 2 done, 0 skipped, 0 failed" in capsys.readouterr().out
    entries = json.loads((out / MANIFEST_NAME).read_text())["entries"].values()
    assert {e["weights"] for e in entries} == {"file-sha256:retrained"}


def test_a_second_driver_on_the_same_folder_is_refused(tmp_path, local_ray, capsys):
    write(tmp_path / "in" / "a.wav", seed=0)
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import sys\nfrom fastuss_fx.render import render_lock\n"
        "with render_lock(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(render_args([tmp_path / "in"], out)) == 1
        err = capsys.readouterr().err
        held = f"another fastuss render is writing to {out.resolve()} (lock held by pid {holder.pid} on "
        assert f"fastuss render: error: {held}" in err
        assert not (out / MANIFEST_NAME).exists()  # refused before it touched anything
        holder.kill()  # dies holding the lock: its lock file stays behind, but the lock goes with it
        holder.wait()
        assert (out / LOCK_NAME).exists()
        assert main(render_args([tmp_path / "in"], out)) == 0
        assert "render: 1 done, 0 skipped, 0 failed" in capsys.readouterr().out
        assert not (out / LOCK_NAME).exists()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# -- without Ray -------------------------------------------------------------------------------


def test_render_lock_is_exclusive_and_released(tmp_path):
    with render_lock(tmp_path) as path:
        assert path == tmp_path / LOCK_NAME
        assert path.read_text().startswith(f"pid {os.getpid()} on ")
        message = f"another fastuss render is writing to {tmp_path} (lock held by pid {os.getpid()} "
        with pytest.raises(RenderLocked, match=re.escape(message)), render_lock(tmp_path):
            pass
        assert path.exists()  # the refused attempt left the holder's lock alone
    assert not path.exists()
    with render_lock(tmp_path):  # free again
        pass


def test_weights_hash_is_the_file_hash_or_the_state_hash(tmp_path, monkeypatch):
    from fastuss_fx import weights
    from fastuss_fx.pretrained import file_sha256, shipped_weights_path

    shipped = shipped_weights_path("fastuss-causal")
    assert weights_hash("fastuss-causal") == f"file-sha256:{file_sha256(shipped)}"
    tiny = weights_hash("tiny")
    assert tiny.startswith("state-sha256:") and tiny == weights_hash("tiny")  # the seeded random init is stable
    assert weights_hash("tiny-causal") != tiny

    real = weights.load_model

    def nudged(variant):
        model, trained = real(variant)
        with torch.no_grad():
            next(model.parameters()).add_(1e-3)
        return model, trained

    monkeypatch.setattr(weights, "load_model", nudged)
    assert weights_hash("tiny") != tiny  # other weights, other hash
    file = tmp_path / "tiny.safetensors"
    file.write_bytes(b"one")
    monkeypatch.setattr("fastuss_fx.render.weights_id.weights_path", lambda variant: file)
    first = weights_hash("tiny")
    file.write_bytes(b"two")
    assert first.startswith("file-sha256:") and weights_hash("tiny") != first


@pytest.mark.parametrize("engine, exported", [("onnx", True), ("torch", False)])
def test_the_driver_exports_the_graphs_before_workers_start(tmp_path, monkeypatch, engine, exported):
    from fastuss_fx.render import runner

    cache = tmp_path / "cache"
    monkeypatch.setenv("FASTUSS_CACHE", str(cache))
    variant = tmp_path / "tiny-here.yaml"  # a model no other test loaded: its graphs are not cached yet
    variant.write_text(resources.files("fastuss_fx.variants").joinpath("tiny.yaml").read_text())
    write(tmp_path / "in" / "a.wav", seed=0)
    seen = []
    monkeypatch.setattr(runner, "_run_on_ray", lambda *args: seen.append(sorted(cache.glob("*/manifest.json"))))
    runner.render(
        [tmp_path / "in"],
        tmp_path / "out",
        "remove_music",
        model=str(variant),
        engine=engine,
        allow_untrained=True,
        progress=False,
    )
    assert len(seen) == 1 and len(seen[0]) == (1 if exported else 0)


def test_render_never_imports_the_command_line():
    """Imports point downwards: ``commands`` uses ``render`` (and ``fastuss_fx.outputs``), never the reverse."""
    import fastuss_fx.render

    for file in sorted(Path(fastuss_fx.render.__file__).parent.glob("*.py")):
        tree = ast.parse(file.read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        upward = sorted(n for n in names if n.split(".")[:2] in (["fastuss_fx", "commands"], ["fastuss_fx", "cli"]))
        assert not upward, f"render/{file.name} imports {upward}"


def test_bad_engine_fails_before_any_work(tmp_path, capsys):
    write(tmp_path / "in" / "a.wav", seed=0)
    assert main(render_args([tmp_path / "in"], tmp_path / "out", "--engine", "onnx-int8")) == 2
    assert "engine 'onnx-int8' needs a causal model" in capsys.readouterr().err
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_expand_inputs_mirrors_relative_paths_and_skips_the_output_folder(tmp_path):
    for rel in ("a.wav", "x/b.flac", "x/y/c.mp3", "x/.hidden.wav", "x/notes.txt", "out/old.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = expand_inputs([tmp_path], exclude=tmp_path / "out")
    assert [str(rel) for _, rel in found] == ["a.wav", "x/b.flac", "x/y/c.mp3"]
    found = expand_inputs([f"{tmp_path}/x/**/*.*"])
    assert [str(rel) for _, rel in found] == ["b.flac", "y/c.mp3"]
    found = expand_inputs([tmp_path / "x" / "b.flac", tmp_path / "x" / "y" / "c.mp3"])
    assert [str(rel) for _, rel in found] == ["b.flac", "y/c.mp3"]


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        (["missing.wav"], FileNotFoundError, "input not found: .*missing.wav"),
        (["x/*.ogg"], ValueError, "glob '.*x/\\*.ogg' matches no audio files"),
        (["empty"], ValueError, "folder .*empty holds no audio files"),
        (["x", "y"], ValueError, "inputs .*x/a.wav and .*y/a.wav would write the same outputs"),
    ],
)
def test_expand_inputs_errors_name_the_input(tmp_path, inputs, error, message):
    for rel in ("x/a.wav", "y/a.wav", "empty/readme.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    with pytest.raises(error, match=message):
        expand_inputs([f"{tmp_path}/{p}" for p in inputs])


def test_manifest_round_trip_and_bad_manifest(tmp_path):
    m = Manifest.load(tmp_path)
    m.set("k", input="/a.wav", status="done", outputs=["a_p.wav"])
    m.save()
    assert Manifest.load(tmp_path).entries == {"k": {"input": "/a.wav", "status": "done", "outputs": ["a_p.wav"]}}
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]
    with pytest.raises(ValueError, match="status must be one of"):
        m.set("k", status="finished")
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=f"{MANIFEST_NAME}: cannot read render manifest"):
        Manifest.load(tmp_path)


def test_foreign_output_is_not_overwritten(tmp_path, capsys):
    write(tmp_path / "in" / "a.wav", seed=0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_remove_music.wav").write_bytes(b"keep me")
    assert main(render_args([tmp_path / "in"], tmp_path / "out")) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "a_remove_music.wav").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    "cpus, workers, threads, jobs, expected",
    [(2, None, 1, 10, 2), (2, 1, 1, 10, 1), (2, 4, 1, 10, 2), (8, None, 2, 10, 4), (8, None, 1, 3, 3)],
)
def test_worker_count_fits_the_cluster(cpus, workers, threads, jobs, expected):
    from fastuss_fx.render.runner import _worker_count

    assert _worker_count(cpus, workers, threads, jobs) == expected


def test_bad_worker_settings_fail_before_any_work(tmp_path, capsys):
    from fastuss_fx.render.runner import _worker_count

    with pytest.raises(RuntimeError, match="offers 1 CPUs; a worker needs threads=2"):
        _worker_count(1, None, 2, 5)
    write(tmp_path / "in" / "a.wav", seed=0)
    assert main(render_args([tmp_path / "in"], tmp_path / "out", "--workers", "0")) == 2
    assert "workers must be at least 1, got 0" in capsys.readouterr().err
