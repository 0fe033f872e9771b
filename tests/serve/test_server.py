"""``fastuss serve`` over HTTP: the API, the separation path, export, and the safety cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from serve_helpers import RATE, Client, start, tone

from fastuss_fx.io import read_audio, write_audio
from fastuss_fx.serve import ServeConfig
from fastuss_fx.serve.api import App
from fastuss_fx.serve.jobs import mix_stems

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def wav_bytes(audio: np.ndarray, tmp_path: Path, name: str = "up.wav") -> bytes:
    return write_audio(tmp_path / name, audio, RATE).read_bytes()


def test_page_and_static_files_are_served(client: Client):
    status, page = client.get("/")
    assert status == 200 and b'<script src="static/mixer.js">' in page and b"http" not in page.split(b"<body>")[1]
    for name in ("mixer.js", "style.css"):
        assert client.get(f"/static/{name}")[0] == 200
    assert client.get("/static/nope.js")[0] == 404
    status, presets = client.get("/api/presets")
    assert "dialog_only" in [p["name"] for p in presets["presets"]]
    assert client.get("/api/files")[1] == {"files": ["clip.wav"]}
    vocabulary = ["speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other", "musicbg"]
    assert client.get("/api/config")[1] == {
        "max_upload_bytes": 2_000_000,
        "folder": True,
        "max_prompts": 8,
        "prompts": vocabulary,
    }


def test_upload_separate_stems_and_export_match_the_library(client: Client, server, tmp_path: Path):
    audio = tone()
    status, up = client.upload(wav_bytes(audio, tmp_path), "my clip.wav")
    assert status == 200 and up["channels"] == 1 and up["rate"] == RATE
    status, job = client.post("/api/jobs", {"file": up["file"], "preset": "dialog_only"})
    assert status == 200, job
    job = client.wait(job["id"])
    assert job["state"] == "done" and job["stems"] == ["dialogue", "effects", "music"] and job["model"] == "tiny"
    stems = {}
    for name in job["stems"]:
        status, raw = client.get(f"/api/jobs/{job['id']}/audio/{name}.wav")
        assert status == 200
        (tmp_path / f"{name}.wav").write_bytes(raw)
        stems[name] = read_audio(tmp_path / f"{name}.wav")[0]
        assert stems[name].shape == audio.shape
    # the stems are what FasTUSS.separate gives for the same file (the code path of `fastuss stems`); the
    # untrained tiny model has random weights, so the reference runs on the server's own processor
    reference = server.app.jobs.processor("dialog_only", None).separate(read_audio(tmp_path / "up.wav")[0], RATE)
    for name in job["stems"]:
        np.testing.assert_allclose(stems[name], reference[name], atol=1e-4)
    # the same request twice is served from the cache
    assert client.post("/api/jobs", {"file": up["file"], "preset": "dialog_only"})[1]["id"] == job["id"]
    # export: muting a stem removes it from the mix
    gains = {"dialogue": 1.0, "effects": 0.0, "music": 0.5}
    status, out = client.post(f"/api/jobs/{job['id']}/export", {"gains": gains, "format": "wav"})
    assert status == 200, out
    status, raw = client.get(out["url"])
    assert status == 200
    (tmp_path / "mix.wav").write_bytes(raw)
    mix, rate = read_audio(tmp_path / "mix.wav")
    assert rate == RATE
    np.testing.assert_allclose(mix, mix_stems(stems, gains), atol=1e-4)
    assert not np.allclose(mix, mix_stems(stems, {**gains, "effects": 1.0}), atol=1e-3)
    status, flac = client.post(f"/api/jobs/{job['id']}/export", {"gains": gains, "format": "flac"})
    assert status == 200 and flac["name"].endswith(".flac")


def test_pick_from_folder(client: Client):
    status, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    assert status == 200, job
    assert client.wait(job["id"])["state"] == "done"


@pytest.mark.parametrize("name", ["../clip.wav", "/etc/passwd", "notes.txt", "..", "served/clip.wav", "link.wav"])
def test_pick_outside_the_listing_is_refused(client: Client, folder: Path, tmp_path: Path, name: str):
    write_audio(tmp_path / "outside.wav", tone(), RATE)
    (folder / "link.wav").symlink_to(tmp_path / "outside.wav")  # a link leading out of FOLDER is not listed
    assert client.get("/api/files")[1] == {"files": ["clip.wav"]}
    status, body = client.post("/api/jobs", {"pick": name, "preset": "dialog_only"})
    assert status == 404 and "no audio file" in body["error"]


def test_preset_must_be_a_shipped_name_not_a_path(client: Client, tmp_path: Path):
    (tmp_path / "evil.yaml").write_text("prompts: [speech]\n")
    for preset in (str(tmp_path / "evil.yaml"), "../evil.yaml", "nope"):
        status, body = client.post("/api/jobs", {"pick": "clip.wav", "preset": preset})
        assert status == 400 and "unknown preset" in body["error"]


def test_free_prompts_run_without_a_preset(client: Client, server, folder: Path):
    from fastuss_fx.serve.prompts import free_preset

    status, job = client.post("/api/jobs", {"pick": "clip.wav", "prompts": ["speech", "sfx", "speech"]})
    assert status == 200, job
    assert job["preset"] == "prompts:speech+sfx+speech" and job["prompts"] == ["speech", "sfx", "speech"]
    job = client.wait(job["id"])
    assert job["state"] == "done" and job["stems"] == ["speech_1", "sfx", "speech_2"]
    # the stems are FasTUSS.separate with those prompts (the server's processor: untrained weights)
    processor = server.app.jobs.processor(free_preset(["speech", "sfx", "speech"]), None)
    reference = processor.separate(read_audio(folder / "clip.wav")[0], RATE)
    raw = client.get(f"/api/jobs/{job['id']}/audio/sfx.wav")[1]
    (folder.parent / "sfx.wav").write_bytes(raw)
    np.testing.assert_allclose(read_audio(folder.parent / "sfx.wav")[0], reference["sfx"], atol=1e-4)
    # the same prompts twice come from the cache; other prompts are another job
    assert client.post("/api/jobs", {"pick": "clip.wav", "prompts": ["speech", "sfx", "speech"]})[1]["id"] == job["id"]
    assert client.post("/api/jobs", {"pick": "clip.wav", "prompts": ["speech"]})[1]["id"] != job["id"]
    # checked by the preset schema, with its messages
    for request, message in [
        ({"prompts": ["speech", "nope"]}, "unknown prompt 'nope'; choose from speech, sfx"),
        ({"prompts": []}, "non-empty list"),
        ({"prompts": "speech"}, "list of prompt names"),
        ({"prompts": ["speech"] * 9}, "at most 8 prompts"),
        ({"prompts": [3]}, "list of prompt names"),
        ({"prompts": ["speech"], "preset": "dialog_only"}, "either"),
        ({}, "either"),
    ]:
        status, body = client.post("/api/jobs", {"pick": "clip.wav", **request})
        assert status == 400 and message in body["error"], (request, body)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/api/jobs/../../etc/passwd",
        "/api/exports/..%2f..%2fserved%2fclip.wav",
        "/api/jobs/0123456789abcdef/exports/..%2f..%2fserved%2fclip.wav",
        "/api/jobs/0123456789abcdef/audio/..%2foriginal.wav",
    ],
)
def test_paths_outside_are_not_served(client: Client, path: str):
    status, body = client.get(path)
    assert status in (404, 405) and isinstance(body, dict) and "error" in body


def test_bad_uploads_give_clear_errors_and_leave_nothing(client: Client, server, tmp_path: Path):
    uploads = server.app.work / "uploads"
    nan = tone()
    nan[0, 10:20] = np.nan
    cases = {
        "empty.wav": (b"", "is empty"),
        "text.wav": (b"this is not audio at all" * 10, "cannot decode"),
        "nan.wav": (wav_bytes(nan, tmp_path, "nan.wav"), "NaN"),
        "huge.wav": (b"\0" * 2_000_001, "too large"),
    }
    for name, (data, message) in cases.items():
        status, body = client.upload(data, name)
        assert status in (400, 413) and message in body["error"], (name, body)
        assert str(server.app.work) not in body["error"]
    assert list(uploads.iterdir()) == []
    assert client.get("/api/files")[0] == 200  # still serving


def test_uploaded_name_is_never_a_path(client: Client, server, tmp_path: Path):
    status, up = client.upload(wav_bytes(tone(), tmp_path), "../../escape.wav")
    assert status == 200 and up["name"] == "escape.wav"
    [stored] = (server.app.work / "uploads").iterdir()
    assert stored.name == f"{up['file']}.wav"
    assert not (tmp_path / "escape.wav").exists() and not (server.app.work / "escape.wav").exists()


def test_export_checks_its_request(client: Client):
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    client.wait(job["id"])
    for request, message in [
        ({"gains": {"nope": 1}}, "unknown stem"),
        ({"gains": {"music": -1}}, "gain"),
        ({"gains": {}, "format": "exe"}, "format"),
        ({"gains": {}, "format": "../x.wav"}, "format"),
    ]:
        status, body = client.post(f"/api/jobs/{job['id']}/export", request)
        assert status == 400 and message in body["error"], body
    assert client.get("/api/jobs/ffffffffffffffff")[0] == 404


def test_cancel_a_queued_job(client: Client, server, tmp_path: Path):
    long = np.tile(tone(), 20)
    _, up = client.upload(wav_bytes(long, tmp_path, "long.wav"), "long.wav")
    _, first = client.post("/api/jobs", {"file": up["file"], "preset": "dialog_only"})
    _, second = client.post("/api/jobs", {"file": up["file"], "preset": "music_stems"})
    assert client.post(f"/api/jobs/{second['id']}/cancel", {})[0] == 200
    client.post(f"/api/jobs/{first['id']}/cancel", {})
    assert client.wait(second["id"])["state"] == "cancelled"
    assert client.wait(first["id"])["state"] in ("cancelled", "done")
    assert not (server.app.work / "jobs" / second["id"]).exists()


def test_other_hosts_need_the_token(folder: Path, tmp_path: Path):
    server, thread = start(ServeConfig(folder=folder, work=tmp_path / "w", host="0.0.0.0", port=0))
    try:
        token = server.app.config.token
        assert token and f"token={token}" in server.url()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        status, body = Client(base).get("/api/files")
        assert status == 403 and "token" in body["error"]
        assert Client(base, "wrong").get("/api/files")[0] == 403
        assert Client(base, token).get("/api/files")[0] == 200
        assert Client(base).get("/static/mixer.js")[0] == 200  # the page loads; its API calls carry the token
        assert Client(base).get("/api/jobs/0123456789abcdef")[0] == 403
    finally:
        server.shutdown()
        server.close()
        thread.join(5)


def test_serve_command_is_registered():
    from fastuss_fx.cli import get_parser

    args = get_parser().parse_args(["serve", "somewhere", "--port", "0", "--max-upload-mb", "5"])
    assert args.folder == "somewhere" and args.host == "127.0.0.1" and args.max_upload_mb == 5


def test_export_is_a_wav_file(client: Client):
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    client.wait(job["id"])
    _, out = client.post(f"/api/jobs/{job['id']}/export", {"gains": {"dialogue": 1.0}})
    _, raw = client.get(out["url"])
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"


def test_preset_editor_saves_yaml_that_the_cli_accepts(client: Client, server, tmp_path: Path):
    from fastuss_fx.presets import load_preset

    text = (
        "name: my_mix\nprompts: [speech, sfx, musicbg]\nstems: [dialogue, effects, music]\n"
        "mix: {dialogue: 0.0, music: -6.0}\n"
    )
    status, saved = client.post("/api/presets", {"yaml": text})
    assert status == 200 and saved["name"] == "my_mix", saved
    status, raw = client.get(saved["url"])
    assert status == 200
    (tmp_path / "my_mix.yaml").write_bytes(raw)
    assert dict(load_preset(tmp_path / "my_mix.yaml").mix) == {"dialogue": 0.0, "music": -6.0}
    assert "my_mix" in [p["name"] for p in client.get("/api/presets")[1]["presets"]]
    status, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "my_mix"})
    assert status == 200 and client.wait(job["id"])["state"] == "done"
    for bad, message in [
        ("prompts: [nope]", "prompts"),
        ("name: dialog_only\nprompts: [speech]", "exists"),
        ("name: ../x\nprompts: [speech]", "name"),
        ("prompts: [speech\n", "YAML syntax"),
        (text, "exists"),
    ]:
        status, body = client.post("/api/presets", {"yaml": bad})
        assert status in (400, 409) and message in body["error"], (bad, body)
    assert sorted(p.name for p in (tmp_path / "work" / "presets").iterdir()) == ["my_mix.yaml"]
    again = App(server.app.config)  # a later server on the same work folder knows the saved preset
    try:
        assert list(again.saved_presets) == ["my_mix"]
    finally:
        again.close()


def test_export_keeps_the_input_bit_depth(client: Client, tmp_path: Path):
    from pedalboard.io import AudioFile

    path = write_audio(tmp_path / "pcm16.wav", tone(), RATE, "16")
    _, up = client.upload(path.read_bytes(), "pcm16.wav")
    _, job = client.post("/api/jobs", {"file": up["file"], "preset": "dialog_only"})
    client.wait(job["id"])
    for fmt in ("wav", "flac"):
        _, out = client.post(f"/api/jobs/{job['id']}/export", {"gains": {"dialogue": 1.0}, "format": fmt})
        _, raw = client.get(out["url"])
        (tmp_path / f"out.{fmt}").write_bytes(raw)
        with AudioFile(str(tmp_path / f"out.{fmt}")) as f:
            assert str(f.file_dtype) == "int16" and f.samplerate == RATE


def test_two_clients_at_once(client: Client, server):
    import threading

    results = []

    def one() -> None:
        status, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "music_stems"})
        results.append(client.wait(job["id"])["state"] if status == 200 else job)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["done", "done"]


def test_notebook_mixer_serves_given_stems(tmp_path: Path):
    from urllib.parse import parse_qs, urlsplit

    from fastuss_fx.serve import notebook

    speech, music = tone(), 0.5 * tone()[:, ::-1].copy()
    frame = notebook.mixer({"speech": speech, "music": music}, RATE)
    url = urlsplit(frame.src)
    job_id = parse_qs(url.query)["job"][0]
    client = Client(f"{url.scheme}://{url.netloc}")
    job = client.get(f"/api/jobs/{job_id}")[1]
    assert job["state"] == "done" and job["stems"] == ["speech", "music"] and job["rate"] == RATE
    raw = client.get(f"/api/jobs/{job_id}/audio/original.wav")[1]
    (tmp_path / "o.wav").write_bytes(raw)
    np.testing.assert_allclose(read_audio(tmp_path / "o.wav")[0], speech + music, atol=1e-6)
    assert notebook.server() is notebook.server()  # one server per kernel


def test_export_all_stems_equal_the_served_stems(client: Client, tmp_path: Path):
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    job = client.wait(job["id"])
    status, out = client.post(f"/api/jobs/{job['id']}/export-stems", {"format": "wav"})
    assert status == 200 and len(out["files"]) == 3
    for stem, file in zip(job["stems"], out["files"], strict=True):
        assert f"_{stem}_" in file["name"]
        (tmp_path / "a.wav").write_bytes(client.get(file["url"])[1])
        (tmp_path / "b.wav").write_bytes(client.get(f"/api/jobs/{job['id']}/audio/{stem}.wav")[1])
        np.testing.assert_allclose(read_audio(tmp_path / "a.wav")[0], read_audio(tmp_path / "b.wav")[0], atol=1e-6)


def test_realtime_mode_needs_a_causal_model(client: Client):
    status, body = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only", "mode": "realtime"})
    assert status == 400 and "causal" in body["error"]
    status, body = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only", "mode": "live"})
    assert status == 400 and "mode" in body["error"]
