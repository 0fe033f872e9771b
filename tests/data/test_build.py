"""The corpus builder on small fixtures: MIDI stem routing, gate, cuts, resampling, manifest, splits.

No network and no apt: package recipes are not run; fluidsynth / espeak-ng parts skip when the
binary is missing, mido parts when mido is not installed.
"""

import itertools
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from fastuss_fx.data.build import BuildConfig, build_corpus
from fastuss_fx.data.build.builder import select
from fastuss_fx.data.build.midi import STEMS, StemRouter, stem_of
from fastuss_fx.data.build.noise import NOISE_KINDS, noise
from fastuss_fx.data.build.packages import PackageStore
from fastuss_fx.data.build.recipes.midi_stems import song_windows
from fastuss_fx.data.build.signal import SAMPLE_RATE, cut_points, gate_segments, to_48k, trim
from fastuss_fx.data.build.tts import note_name, singing_score
from fastuss_fx.data.build.writer import CorpusWriter
from fastuss_fx.data.manifest import ClipStore, read_manifest, split_for
from fastuss_fx.io import decode_mono as decode

SR = SAMPLE_RATE


def msg(type, channel=0, note=60, velocity=100, program=0):
    return SimpleNamespace(type=type, channel=channel, note=note, velocity=velocity, program=program)


def tone(seconds, freq=440.0, rate=SR, level=0.5):
    return (level * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


# --------------------------------------------------------------------------- MIDI routing (pure)
@pytest.mark.parametrize(
    "channel, program, stem",
    [
        (9, 0, "drums"),
        (9, 33, "drums"),
        (0, 32, "bass"),
        (3, 39, "bass"),
        (0, 31, "other"),
        (0, 40, "other"),
        (1, 0, "other"),
    ],
)
def test_stem_of_channel_10_and_gm_bass_programs(channel, program, stem):
    assert stem_of(channel, program) == stem


def test_router_follows_program_changes_and_note_offs():
    router = StemRouter()
    assert router.route(msg("program_change", channel=2, program=34)) == STEMS  # controllers/programs go everywhere
    assert router.route(msg("note_on", channel=2, note=40)) == ("bass",)
    assert router.route(msg("program_change", channel=2, program=0)) == STEMS
    assert router.route(msg("note_on", channel=2, note=64)) == ("other",)
    assert router.route(msg("note_off", channel=2, note=40)) == ("bass",)  # off follows its on, not the new program
    assert router.route(msg("note_on", channel=2, note=64, velocity=0)) == ("other",)  # velocity-0 note-on is an off
    assert router.route(msg("note_off", channel=2, note=64)) == ()  # nothing sounding
    assert router.route(msg("note_on", channel=9, note=36)) == ("drums",)
    assert router.route(msg("set_tempo")) == STEMS
    assert router.route(msg("end_of_track")) == ()


@pytest.fixture
def song_midi():
    """Two bars: kick on channel 10, a fingered bass (program 33), a piano (program 1) that becomes a bass mid-way."""
    mido = pytest.importorskip("mido", reason="MIDI file handling needs mido")
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    drums, bass, keys = mido.MidiTrack(), mido.MidiTrack(), mido.MidiTrack()
    drums.append(mido.MetaMessage("set_tempo", tempo=600_000))
    bass.append(mido.Message("program_change", channel=1, program=33))
    keys.append(mido.Message("program_change", channel=0, program=0))
    for beat in range(8):
        drums += [
            mido.Message("note_on", channel=9, note=36, velocity=100, time=0 if beat == 0 else 240),
            mido.Message("note_off", channel=9, note=36, time=240),
        ]
        bass += [
            mido.Message("note_on", channel=1, note=40, velocity=90),
            mido.Message("note_off", channel=1, note=40, time=480),
        ]
    keys += [
        mido.Message("note_on", channel=0, note=60, velocity=80),
        mido.Message("note_off", channel=0, note=60, time=960),
        mido.Message("program_change", channel=0, program=38),
        mido.Message("note_on", channel=0, note=43, velocity=80),
        mido.Message("note_off", channel=0, note=43, time=960),
    ]
    midi.tracks += [drums, bass, keys]
    return midi


def _notes(midi):
    return [(m.channel, m.note) for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]


def _onsets(midi):
    """Seconds of each note-on (``mido`` yields messages with ``time`` in seconds)."""
    out, now = [], 0.0
    for m in midi:
        now += m.time
        if m.type == "note_on" and m.velocity > 0:
            out.append((round(now, 6), m.channel, m.note))
    return out


def test_split_midi_notes_go_to_their_stems(song_midi):
    from fastuss_fx.data.build.midi import split_midi

    stems = split_midi(song_midi)
    assert set(stems) == {"drums", "bass", "other"}
    assert _notes(stems["drums"]) == [(9, 36)] * 8
    assert sorted(_notes(stems["bass"])) == [(0, 43)] + [(1, 40)] * 8  # the program-38 note joins the basses
    assert _notes(stems["other"]) == [(0, 60)]
    assert sorted(sum((_onsets(m) for m in stems.values()), [])) == sorted(
        _onsets(song_midi)
    )  # one timeline, no note lost


def test_split_midi_tempo_and_transpose(song_midi):
    from fastuss_fx.data.build.midi import split_midi

    plain, varied = split_midi(song_midi), split_midi(song_midi, tempo_factor=2.0, transpose=3)
    assert _notes(varied["drums"]) == _notes(plain["drums"])  # drums are never transposed
    assert _notes(varied["bass"]) == [(c, n + 3) for c, n in _notes(plain["bass"])]
    assert varied["bass"].length == pytest.approx(plain["bass"].length / 2, rel=0.01)
    short = split_midi(song_midi, max_s=1.0)
    assert len(_notes(short["drums"])) < 8
    with pytest.raises(ValueError, match="tempo_factor must be > 0, got 0"):
        split_midi(song_midi, tempo_factor=0)


def test_render_stems_with_fluidsynth(song_midi):
    from fastuss_fx.data.build.midi import render_stems, split_midi

    fluidsynth = shutil.which("fluidsynth")
    fonts = [
        p
        for p in ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
        if shutil.os.path.isfile(p)
    ]
    if fluidsynth is None or not fonts:
        pytest.skip("fluidsynth or a GM soundfont is not installed")
    audio = render_stems(split_midi(song_midi, max_s=2.0), fonts[0], fluidsynth=fluidsynth)
    assert set(audio) == set(STEMS)
    assert len({len(x) for x in audio.values()}) == 1 and len(audio["bass"]) > SR
    assert all(np.abs(x).max() > 1e-3 for x in audio.values())


# --------------------------------------------------------------------------- signal steps
def test_gate_cuts_long_silence_keeps_short_pauses():
    quiet = np.zeros(2 * SR, np.float32)
    x = np.concatenate([quiet, tone(3), np.zeros(SR // 2, np.float32), tone(2), quiet, tone(5), quiet])
    segments = gate_segments(x, pad_s=0.1)
    assert len(segments) == 2  # the 0.5 s pause stays inside the first segment
    (a, b), (c, d) = segments
    assert abs(a - int(1.9 * SR)) <= SR // 20 and abs(b - int(7.6 * SR)) <= SR // 20
    assert abs(c - int(9.4 * SR)) <= SR // 20 and abs(d - int(14.6 * SR)) <= SR // 20
    assert gate_segments(np.zeros(SR, np.float32)) == []
    assert gate_segments(tone(1)) == [(0, SR)]


def test_cut_points_lengths_and_remainder():
    rng = np.random.default_rng(0)
    for seconds in (3.9, 4.0, 19.5, 20.1, 63.3, 200.0):
        pieces = cut_points(int(seconds * SR), rng)
        assert all(4 * SR <= b - a <= 20 * SR for a, b in pieces)
        assert all(b == c for (_, b), (c, _) in itertools.pairwise(pieces))
        assert (seconds * SR - (pieces[-1][1] if pieces else 0)) < 4 * SR
    with pytest.raises(ValueError, match="min_s=5"):
        cut_points(SR, rng, min_s=5, target_s=(4, 6))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_to_48k_keeps_length_and_pitch(rate):
    y = to_48k(tone(2, 440, rate), rate)
    assert abs(len(y) - 2 * SR) <= SR // 100
    spectrum = np.abs(np.fft.rfft(y[SR // 4 : -SR // 4]))
    assert np.argmax(spectrum) * SR / len(y[SR // 4 : -SR // 4]) == pytest.approx(440, abs=3)
    with pytest.raises(ValueError, match="-1"):
        to_48k(y, -1)


def test_decode_resample_and_trim_a_file(tmp_path):
    from pedalboard.io import AudioFile

    path = tmp_path / "stereo.wav"
    audio = np.stack([tone(1.5, rate=22050), tone(1.5, rate=22050)])
    audio[:, :11025] = 0  # 0.5 s of leading silence
    with AudioFile(str(path), "w", 22050, 2) as f:
        f.write(audio)
    mono, rate = decode(path)
    assert rate == 22050 and mono.shape == (33075,)
    part, _ = decode(path, start_s=1.0, duration_s=0.25)
    assert part.shape == (5512,)
    y = trim(to_48k(mono, rate))
    assert abs(len(y) - SR) < 0.05 * SR


def test_noise_kinds_and_spectral_tilt():
    rng = np.random.default_rng(1)
    bands = {}
    for kind in NOISE_KINDS:
        x = noise(kind, rng, 2.0)
        assert x.dtype == np.float32 and x.shape == (2 * SR,) and np.isfinite(x).all()
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        bands[kind] = spectrum[100:1000].sum() / spectrum[10000:40000].sum()  # 50–500 Hz vs 5–20 kHz
    assert bands["brown"] > bands["pink"] > bands["white"] > bands["blue"]
    with pytest.raises(ValueError, match="'purple'"):
        noise("purple", rng, 1.0)


def test_song_windows_where_bass_and_other_play():
    rng = np.random.default_rng(0)
    silent, loud = np.zeros(20 * SR, np.float32), tone(20)
    stems = {
        "bass": np.concatenate([silent, loud, loud]),
        "other": np.concatenate([silent, loud, loud]),
        "drums": np.concatenate([loud] * 3),
    }
    windows = song_windows(stems, rng, count=2, window_s=(8, 8))
    assert len(windows) == 2 and all(
        a >= (20 - 0.4 * 8) * SR and b - a == 8 * SR for a, b in windows
    )  # >= 60 % of it playing
    assert windows[0][1] <= windows[1][0]
    assert song_windows({"bass": tone(3)}, rng, 1) == []


def test_singing_score_is_festival_xml():
    score = singing_score(np.random.default_rng(0))
    assert score.startswith("<?xml") and "<SINGING BPM=" in score and score.count("<PITCH") >= 18
    assert note_name(57) == "A3" and note_name(61) == "Cs4"


# --------------------------------------------------------------------------- writer, manifest, splits
def test_writer_emits_gated_clips_and_manifest(tmp_path):
    config = BuildConfig(out=tmp_path / "corpus", max_minutes_per_source=0.5, valid_fraction=0.0, test_fraction=0.0)
    writer = CorpusWriter(config)
    x = np.concatenate([tone(9, rate=SR), np.zeros(3 * SR, np.float32), tone(25, 220)])
    count = writer.emit(
        "speech",
        "fixture",
        "long take",
        x,
        np.random.default_rng(0),
        orig="fixture/a.wav",
        native_rate=16000,
        licence="CC0-1.0",
    )
    assert count == 3 and writer.full("speech", "fixture")  # 9 s + a 25 s run cut in two, then the quota (30 s) is full
    assert (
        writer.emit(
            "speech",
            "fixture",
            "more",
            tone(10),
            np.random.default_rng(0),
            orig="fixture/b.wav",
            native_rate=16000,
            licence="CC0-1.0",
        )
        == 0
    )
    manifest = writer.finish()
    rows = read_manifest(manifest)
    assert [r.path for r in rows] == [f"speech/fixture/long-take_{k:02d}.flac" for k in (1, 2, 3)]
    assert {r.split for r in rows} == {"train"}
    assert all(
        r.native_rate == 16000
        and r.licence == "CC0-1.0"
        and r.source == "fixture"
        and r.extra["orig"] == ["fixture/a.wav"]
        for r in rows
    )
    store = ClipStore.from_manifest(manifest)
    assert all(4.0 <= r.duration_s <= 20.0 for r in rows)
    assert abs(len(store.audio(0)) - 9 * SR) < 0.2 * SR and 0.4 < np.abs(store.audio(0)).max() <= 0.9
    assert writer.summary()["speech"]["fixture"] == pytest.approx(sum(r.duration_s for r in rows) / 60)


def test_valid_and_test_splits_get_their_share_of_the_quota(tmp_path):
    writer = CorpusWriter(
        BuildConfig(out=tmp_path, max_minutes_per_source=1.0, valid_fraction=0.05, test_fraction=0.05)
    )
    common = dict(orig="x", native_rate=SR, licence="CC0-1.0", gain=1.0)
    writer.write("sfxbg", "src", "a", tone(55), split="train", **common)  # train's share: 90 % of 60 s
    assert (
        writer.full("sfxbg", "src", "train")
        and not writer.full("sfxbg", "src", "valid")
        and not writer.full("sfxbg", "src")
    )
    assert (
        writer.emit("sfxbg", "src", "b", tone(10), np.random.default_rng(0), split="train", **common) == 0
    )  # train has enough
    assert (
        writer.emit("sfxbg", "src", "c", tone(5), np.random.default_rng(0), split="valid", **common) == 1
    )  # one valid clip at least
    assert not writer.full("sfxbg", "src") and writer.full("sfxbg", "src", "holdout")  # a source that is not held out
    assert writer.emit("sfxbg", "src", "d", tone(5), np.random.default_rng(0), split="test", **common) == 1
    assert writer.full("sfxbg", "src") and [r.split for r in writer.rows] == ["train", "valid", "test"]


def test_holdout_source_goes_wholly_to_holdout(tmp_path):
    writer = CorpusWriter(BuildConfig(out=tmp_path, max_minutes_per_source=0.2, holdout=("held",)))
    assert {writer.split(f"speaker{i}", "held") for i in range(50)} == {"holdout"}
    assert {writer.split(f"speaker{i}", "other") for i in range(200)} == {"train", "valid", "test"}
    assert (
        writer.full("speech", "held", "train")
        and writer.full("speech", "held", "valid")
        and not writer.full("speech", "held")
    )
    row = writer.write("speech", "held", "a", tone(5), orig="held/a.wav", group="hero", native_rate=11025, licence="x")
    assert (row.split, row.group) == ("holdout", "held:hero")


def test_split_is_a_deterministic_hash_of_the_original_path():
    paths = [f"pkg/usr/share/sounds/{i}.ogg" for i in range(2000)]
    first = [split_for(p) for p in paths]
    assert first == [split_for(p) for p in paths]
    assert 0.03 < first.count("valid") / len(first) < 0.07


def test_select_unknown_source_lists_the_known():
    assert select(("generated-noise",)) == ["generated-noise"]
    with pytest.raises(ValueError, match="'nope'.*espeak-ng"):
        select(("nope",))


def test_unavailable_package_is_skipped_not_fatal(tmp_path):
    store = PackageStore(tmp_path / "pkgs", fetch=False)
    assert store.ensure("naev-data") is None and "fetching is off" in store.failed["naev-data"]
    assert store.files("naev-data", "**/*.ogg") == []
    report = build_corpus(
        BuildConfig(
            out=tmp_path / "corpus",
            sources=("naev-data", "generated-noise"),
            max_minutes_per_source=0.2,
            pkgs=tmp_path / "pkgs",
            fetch=False,
            groove_dir=tmp_path / "none",
        )
    )
    assert "naev-data" in report.skipped and "unavailable" in report.skipped["naev-data"]
    assert report.minutes["sfxbg"]["generated-noise"] >= 0.2 and "generated-noise" in report.table()


def test_build_noise_corpus_end_to_end_is_deterministic(tmp_path):
    kwargs = dict(
        sources=("generated-noise",), max_minutes_per_source=0.25, seed=3, fetch=False, pkgs=tmp_path / "pkgs"
    )
    first = build_corpus(BuildConfig(out=tmp_path / "a", **kwargs))
    second = build_corpus(BuildConfig(out=tmp_path / "b", **kwargs))
    rows_a, rows_b = (first.manifest.read_text().splitlines(), second.manifest.read_text().splitlines())
    assert rows_a == rows_b and len(rows_a) >= 2
    row = json.loads(rows_a[0])
    assert row["role"] == "sfxbg" and row["licence"].startswith("CC0") and row["native_rate"] == SR
    a, b = ClipStore.from_manifest(first.manifest), ClipStore.from_manifest(second.manifest)
    np.testing.assert_array_equal(a.audio(0), b.audio(0))


def test_build_espeak_when_installed(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    report = build_corpus(
        BuildConfig(
            out=tmp_path / "corpus",
            sources=("espeak-ng",),
            max_minutes_per_source=0.1,
            fetch=False,
            pkgs=tmp_path / "pkgs",
        )
    )
    rows = read_manifest(report.manifest)
    assert (
        {r.role for r in rows} == {"speech"} and rows[0].extra["text"] and "espeak-ng -v" in rows[0].extra["generator"]
    )
    assert report.skipped == {}


def test_cli_build_lists_and_runs(tmp_path, capsys):
    from fastuss_fx.cli import main

    assert main(["data", "build", "--list"]) == 0
    assert "openttd-openmsx" in capsys.readouterr().out
    assert (
        main(
            [
                "data",
                "build",
                "--out",
                str(tmp_path / "c"),
                "--sources",
                "generated-noise",
                "--max-minutes-per-source",
                "0.1",
                "--no-fetch",
                "--pkgs",
                str(tmp_path / "pkgs"),
                "--jobs",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "sfxbg" in out and "generated-noise" in out and (tmp_path / "c" / "manifest.jsonl").is_file()
    assert main(["data", "build", "--out", str(tmp_path / "d"), "--sources", "bogus"]) == 2


# --------------------------------------------------------------------------- game archives, groups, holdout
def queen_file(entries):
    """Bytes of a queen.1c-like file: QTBL header, 21-byte table entries, then the data."""
    import struct

    offset, table, blob = 15 + 21 * len(entries), b"", b""
    for name, data in entries:
        table += struct.pack(">12sBII", name.encode(), 1, offset, len(data))
        blob += data
        offset += len(data)
    return b"QTBL" + b"CEM10" + b"\0\0\0" + bytes([1]) + struct.pack(">H", len(entries)) + table + blob


def test_queen_table_parser():
    from fastuss_fx.data.build.archives import queen_table

    data = queen_file([("ROOM1.BBK", b"x" * 10), ("020006P1.SB", b"\xff\xe3abc"), ("JOE00011.SB", b"\xff\xe3")])
    compression, entries = queen_table(data)
    assert compression == 1 and [e.name for e in entries] == ["ROOM1.BBK", "020006P1.SB", "JOE00011.SB"]
    assert data[entries[1].offset : entries[1].offset + entries[1].size] == b"\xff\xe3abc" and entries[0].bundle == 1
    with pytest.raises(ValueError, match="QTBL"):
        queen_table(b"RIFF" + data[4:])
    with pytest.raises(ValueError, match="runs past the end"):
        queen_table(data[:-1])


@pytest.mark.parametrize(
    "name, group",
    [
        ("JOE01424.SB", "joe"),
        ("020006J1.SB", "joe"),
        ("48SSSSJ1.SB", "joe"),
        ("C69I_142.SB", "joe"),
        ("020006P1.SB", "talk02"),
        ("35XXXXP2.SB", "talk35"),
        ("UNTITLED.SB", "other-UNTI"),
    ],
)
def test_fotaq_speaker_groups(name, group):
    from fastuss_fx.data.build.archives import fotaq_speaker

    assert fotaq_speaker(name) == group


def test_drascula_raw_reader_and_speakers(tmp_path):
    from fastuss_fx.data.build.archives import drascula_speaker
    from fastuss_fx.data.build.signal import read_raw_u8

    (tmp_path / "I1.ALS").write_bytes(bytes([128, 255, 0, 64, 192]))
    np.testing.assert_array_equal(read_raw_u8(tmp_path / "I1.ALS"), np.array([0, 127 / 128, -1, -0.5, 0.5], np.float32))
    assert [drascula_speaker(n) for n in ("I12.ALS", "12.ALS", "VB3.ALS", "d4.als")] == ["I", "hero", "VB", "D"]


def test_extract_pk3_members(tmp_path):
    import zipfile

    from fastuss_fx.data.build.archives import extract_members

    with zipfile.ZipFile(tmp_path / "0snd.pk3", "w") as zf:
        zf.writestr("sound/ambience/wind.ogg", b"a")
        zf.writestr("sound/ambience/readme.txt", b"b")
        zf.writestr("sound/weapons/gun.ogg", b"c")
    paths = extract_members(tmp_path / "0snd.pk3", "sound/ambience/", tmp_path / "out")
    assert paths == [tmp_path / "out/sound/ambience/wind.ogg"] and paths[0].read_bytes() == b"a"


def _fake_package(pkgs, package, files):
    tree = pkgs / package
    for relative, data in files.items():
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_bytes(data)
    (tree / ".unpacked").write_text("fake\n")


def test_fotaq_build_groups_by_character_without_leaks(tmp_path):
    sf = pytest.importorskip("soundfile", reason="writing the MP3 fixture needs soundfile")
    import io

    from fastuss_fx.data.build.recipes.games import FOTAQ, FOTAQ_FILE
    from fastuss_fx.data.manifest import leaked_groups

    def mp3(freq):
        buffer = io.BytesIO()
        sf.write(buffer, tone(1.8, freq, 11025), 11025, format="MP3")
        return buffer.getvalue()

    names = [f"{key}000{k}P1.SB" for key in ("02", "11", "35", "47") for k in range(3)] + [
        f"JOE0{k}001.SB" for k in range(3)
    ]
    _fake_package(
        tmp_path / "pkgs",
        FOTAQ,
        {FOTAQ_FILE: queen_file([(n, mp3(200 + 20 * i)) for i, n in enumerate(names)] + [("A.BBK", b"x")])},
    )
    kwargs = dict(
        sources=(FOTAQ,),
        max_minutes_per_source=5,
        valid_fraction=0.3,
        test_fraction=0.3,
        fetch=False,
        pkgs=tmp_path / "pkgs",
    )
    report = build_corpus(BuildConfig(out=tmp_path / "a", **kwargs))
    rows = read_manifest(report.manifest)
    assert (
        {r.role for r in rows} == {"speech"}
        and {r.native_rate for r in rows} == {11025}
        and rows[0].licence.startswith("Flight")
    )
    assert {r.group for r in rows} == {f"{FOTAQ}:{g}" for g in ("joe", "talk02", "talk11", "talk35", "talk47")}
    assert leaked_groups(rows) == {} and len({r.split for r in rows}) >= 2
    assert all(r.split == split_for(r.group, 0.3, 0.3) for r in rows)
    assert build_corpus(BuildConfig(out=tmp_path / "b", **kwargs)).manifest.read_text() == report.manifest.read_text()


def _fake_drascula(pkgs):
    """Eight 2.5-s voice files of a fake drascula package: three hero lines, three of "I", two skipped "S"."""
    from fastuss_fx.data.build.recipes.games import DRASCULA

    def als(freq):
        return np.round(tone(2.5, freq, 11025) * 127 + 128).astype(np.uint8).tobytes()

    files = {
        f"usr/share/scummvm/drascula/en/{n}.ALS": als(150 + 30 * i)
        for i, n in enumerate(["1", "2", "3", "I1", "I2", "I3", "S1", "S2"])
    }
    _fake_package(pkgs, DRASCULA, files)
    return DRASCULA


def test_drascula_build_is_held_out(tmp_path):
    source = _fake_drascula(tmp_path / "pkgs")
    report = build_corpus(BuildConfig(out=tmp_path / "c", sources=(source,), fetch=False, pkgs=tmp_path / "pkgs"))
    rows = read_manifest(report.manifest)
    assert {r.split for r in rows} == {"holdout"} and {r.group for r in rows} == {"drascula:hero", "drascula:I"}
    assert {r.native_rate for r in rows} == {11025} and not any(
        "S1" in o or "S2" in o for r in rows for o in r.extra["orig"]
    )
    assert sum(r.duration_s for r in rows) == pytest.approx(
        6 * 2.5, abs=1.5
    )  # six voice files, gaps added, edges trimmed


def test_jobs_build_the_same_corpus_as_one_process(tmp_path):
    source = _fake_drascula(tmp_path / "pkgs")
    reports = {
        jobs: build_corpus(
            BuildConfig(
                out=tmp_path / f"jobs{jobs}",
                sources=(source, "naev-data", "generated-noise"),  # naev-data: unavailable, fetching is off
                max_minutes_per_source=0.25,
                fetch=False,
                pkgs=tmp_path / "pkgs",
                jobs=jobs,
            )
        )
        for jobs in (1, 2)
    }
    one, two = reports[1], reports[2]
    assert one.manifest.read_text() == two.manifest.read_text()
    assert one.minutes == two.minutes and set(one.minutes) == {"speech", "sfxbg"}
    assert one.skipped.keys() == two.skipped.keys() == {"naev-data"} and one.clips == two.clips
    for row in read_manifest(one.manifest):
        assert (one.manifest.parent / row.path).read_bytes() == (two.manifest.parent / row.path).read_bytes()


def test_writer_absorbs_the_clips_of_other_sources_only(tmp_path):
    config = BuildConfig(out=tmp_path)
    first, second = CorpusWriter(config), CorpusWriter(config)
    first.write("sfxbg", "a", "x", tone(1.0, 220.0), orig="a/x", native_rate=SR, licence="CC0", gain=0.5)
    second.write("sfxbg", "b", "x", tone(1.0, 330.0), orig="b/x", native_rate=SR, licence="CC0", gain=0.5)
    first.absorb(second)
    assert [r.source for r in first.rows] == ["a", "b"] and first.summary()["sfxbg"].keys() == {"a", "b"}
    with pytest.raises(ValueError, match="both writers hold clips of b"):
        first.absorb(second)
    with pytest.raises(ValueError, match="another corpus folder"):
        first.absorb(CorpusWriter(BuildConfig(out=tmp_path / "other")))


def test_package_store_fetches_a_package_once_when_builds_run_side_by_side(tmp_path, monkeypatch):
    import threading
    import time

    calls = []

    def fake_fetch(self, package):
        calls.append(package)
        time.sleep(0.2)  # long enough for the other caller to arrive while this fetch holds the lock
        (self.tree(package) / ".unpacked").parent.mkdir(parents=True, exist_ok=True)
        (self.tree(package) / ".unpacked").write_text("fake\n")

    monkeypatch.setattr(PackageStore, "_fetch", fake_fetch)
    stores = [PackageStore(tmp_path / "pkgs") for _ in range(2)]  # one per build process
    trees = []
    threads = [threading.Thread(target=lambda s=s: trees.append(s.ensure("naev-data"))) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["naev-data"] and trees == [tmp_path / "pkgs" / "naev-data"] * 2


def test_quotas_by_source_role_and_cli_parsing(tmp_path):
    from fastuss_fx.commands.data import parse_quotas

    quotas = parse_quotas(["speech=600", "espeak-ng=10", "megaglest-data:sfx=2.5"])
    assert quotas == {"speech": 600.0, "espeak-ng": 10.0, "megaglest-data:sfx": 2.5}
    config = BuildConfig(out=tmp_path, max_minutes_per_source=12, quotas=quotas)
    assert [
        config.quota_minutes(s, r)
        for s, r in [
            ("fotaq", "speech"),
            ("espeak-ng", "speech"),
            ("megaglest-data", "sfx"),
            ("megaglest-data", "sfxbg"),
            ("naev-data", "musicbg"),
        ]
    ] == [600, 10, 2.5, 12, 12]
    for bad in (["speech"], ["=3"], ["speech=lots"]):
        with pytest.raises(ValueError, match="KEY=MINUTES"):
            parse_quotas(bad)
    with pytest.raises(ValueError, match="> 0"):
        BuildConfig(out=tmp_path, quotas={"speech": 0})
    with pytest.raises(ValueError, match="> 0"):
        BuildConfig(out=tmp_path, train_quotas={"musicbg": -1})
    with pytest.raises(ValueError, match="clip_min_s <= clip_max_s"):
        BuildConfig(out=tmp_path, clip_min_s=5.0, clip_max_s=4.0)
    for jobs in (0, 1.5):
        with pytest.raises(ValueError, match="jobs must be a whole number >= 1"):
            BuildConfig(out=tmp_path, jobs=jobs)
    with pytest.raises(ValueError, match="--train-quota takes KEY=MINUTES"):
        parse_quotas(["musicbg"], "--train-quota")


@pytest.mark.parametrize(
    "package, orig, group",
    [
        (
            "hydrogen-drumkits",
            "hydrogen-drumkits/usr/share/hydrogen/data/drumkits/ForzeeStereo/China-3.wav",
            "ForzeeStereo",
        ),
        ("qabcs-data", "qabcs-data/usr/share/qabcs/abcs/pl/sounds/words/dom.ogg", "pl"),
        ("fillets-ng-data-cs", "fillets-ng-data-cs/usr/share/games/fillets-ng/sound/city/cs/vit-hs-klid1.ogg", "hs"),
        ("gcin-voice", "gcin-voice/usr/share/gcin-voice/ogg/x/5.ogg", "5"),
        (
            "megaglest-data",
            "megaglest-data/usr/share/games/megaglest/techs/megapack/factions/norsemen/units/spearman/sounds/ghost_armor_select3.wav",
            "ghost_armor",
        ),
    ],
)
def test_package_group_regexes_see_past_the_package_name(package, orig, group):
    from fastuss_fx.data.build.recipes.files import PACKAGE_SOURCES, _group_of

    spec = next(s for s in PACKAGE_SOURCES[package][1] if s.role in ("speech", "drums"))
    assert _group_of(spec.group, orig) == group


def test_a_train_quota_adds_training_clips_and_leaves_valid_and_test_alone(tmp_path):
    writer = CorpusWriter(BuildConfig(out=tmp_path, max_minutes_per_source=1.0, train_quotas={"src:sfxbg": 3.0}))
    common = dict(orig="x", native_rate=SR, licence="CC0-1.0", gain=1.0)
    for name in "abc":
        writer.write("sfxbg", "src", name, tone(55), split="train", **common)  # 165 s: past the quota's 48 s share
    assert not writer.full("sfxbg", "src", "train")  # room for 180 s of train
    writer.write("sfxbg", "src", "d", tone(16), split="train", **common)
    assert writer.full("sfxbg", "src", "train")
    writer.write("sfxbg", "src", "e", tone(6), split="valid", **common)  # valid's share of the 1-min quota: 6 s
    assert writer.full("sfxbg", "src", "valid") and not writer.full("sfxbg", "src", "test")
    other = CorpusWriter(BuildConfig(out=tmp_path, max_minutes_per_source=1.0, train_quotas={"src:sfxbg": 3.0}))
    other.write("sfx", "src", "a", tone(50), split="train", **common)  # another role keeps the quota's share
    assert other.full("sfx", "src", "train")


def test_held_out_windows_of_long_files_do_not_change_with_the_train_quota(tmp_path):
    """Music and ambience: the valid and test clips of a build with a train quota are those without."""
    from pedalboard.io import AudioFile

    from fastuss_fx.data.build.recipes.common import BuildContext, long_windows

    names = [f"pkg/music/song{i}.ogg" for i in range(200)]
    split_of = CorpusWriter(BuildConfig(out=tmp_path)).split
    picked = {split: [n for n in names if split_of(n, "pkg") == split][:count] for split, count in SPLIT_COUNTS.items()}
    files = []
    for index, orig in enumerate(sum(picked.values(), [])):
        path = tmp_path / "in" / f"{index}.wav"
        path.parent.mkdir(exist_ok=True)
        audio = tone(30, 110.0 * (index + 1), rate=16000)
        with AudioFile(str(path), "w", 16000, 1) as f:
            f.write(audio[None])
        files.append((path, orig))

    def build(out, **changes):
        config = BuildConfig(out=out, max_minutes_per_source=0.5, **changes)
        writer = CorpusWriter(config)
        long_windows(BuildContext(config, writer, None, tmp_path), "musicbg", "pkg", files, "CC0-1.0")
        held = {r.path: (r.split, r.duration_s, (out / r.path).read_bytes()) for r in writer.rows if r.split != "train"}
        return held, sum(r.duration_s for r in writer.rows if r.split == "train")

    held, train_s = build(tmp_path / "a")
    more_held, more_train_s = build(tmp_path / "b", train_quotas={"musicbg": 1.5})
    assert {split for split, _, _ in held.values()} == {"valid", "test"}
    assert more_held == held
    assert more_train_s > 2 * train_s


SPLIT_COUNTS = {"train": 5, "valid": 2, "test": 2}
