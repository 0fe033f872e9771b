"""MIDI recipes: aligned drums / bass / other stems of game-music songs, and Groove MIDI drums.

Each song is rendered with a random General MIDI soundfont, tempo × 0.85–1.15 and a
transposition of −3..+3 semitones. Stems of one window share ``song``, start, length, gain and
split, so summing them gives the mix; they are not gated (that would break the alignment).
"""

from __future__ import annotations

import csv
import logging
import shutil
from functools import partial
from pathlib import Path

import numpy as np

from fastuss_fx.data.build.midi import DRUM_CHANNEL, STEMS, read_midi, render_stems, split_midi
from fastuss_fx.data.build.packages import system_or_package
from fastuss_fx.data.build.recipes.common import BuildContext, Recipe, SourceUnavailable
from fastuss_fx.data.build.signal import FRAME_S, SAMPLE_RATE, frame_db

logger = logging.getLogger(__name__)

SOUNDFONTS = {  # name: (package, file inside it, licence)
    "FluidR3_GM": ("fluid-soundfont-gm", "usr/share/sounds/sf2/FluidR3_GM.sf2", "MIT"),
    "TimGM6mb": ("timgm6mb-soundfont", "usr/share/sounds/sf2/TimGM6mb.sf2", "GPL-2"),
    "MuseScore_General": ("musescore-general-soundfont", "usr/share/sounds/sf3/MuseScore_General_Full.sf3", "MIT"),
}
SONG_PACKAGES = {"simutrans-data": "Artistic-1.0", "openttd-openmsx": "GPL-2.0"}
GROOVE_LICENCE = "CC-BY-4.0"
GROOVE_REMAP = {22: 42, 26: 46, 58: 43, 44: 42}
"""Roland TD-11 notes of the Groove MIDI Dataset that General MIDI lacks → nearest GM drum."""
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)
"""GM drum-kit programs on channel 10: standard, room, power, electronic, TR-808, jazz, brush."""
WINDOW_S = (8.0, 14.0)
WINDOWS_PER_SONG = 2


def soundfonts(ctx: BuildContext) -> dict[str, tuple[Path, str]]:
    """Available soundfonts: system-installed or unpacked into ``--pkgs``; ``name: (path, licence)``."""
    found = {}
    for name, (package, relative, licence) in SOUNDFONTS.items():
        path = system_or_package(ctx.packages, package, relative)
        if path is not None:
            found[name] = (path, licence)
    if not found:
        raise SourceUnavailable(
            f"no General MIDI soundfont: none of {', '.join(p for p, _, _ in SOUNDFONTS.values())} "
            "could be found or fetched"
        )
    return found


def _fluidsynth() -> str:
    tool = shutil.which("fluidsynth")
    if tool is None:
        raise SourceUnavailable("fluidsynth not on PATH (apt-get install fluidsynth)")
    return tool


def song_windows(
    stems: dict[str, np.ndarray], rng: np.random.Generator, count: int, window_s: tuple[float, float] = WINDOW_S
) -> list[tuple[int, int]]:
    """Up to ``count`` non-overlapping windows where the bass and other stems (or what exists) both play most."""
    length = max(len(x) for x in stems.values())
    size = int(rng.uniform(*window_s) * SAMPLE_RATE)
    if length < size:
        return []
    frame = int(FRAME_S * SAMPLE_RATE)
    active = {s: (db > db.max() - 35) for s, db in ((s, frame_db(x, frame)) for s, x in stems.items()) if len(db)}
    main: list[str] = [s for s in ("bass", "other") if s in active] or list(active)
    starts = np.arange(0, length - size + 1, SAMPLE_RATE // 2)
    score = np.array([min(active[s][a // frame : (a + size) // frame].mean() for s in main) for a in starts])
    good = [int(a) for a in starts[score >= 0.6]] or [int(a) for a in starts[np.argsort(score)[-3:]]]
    picked: list[tuple[int, int]] = []
    for a in rng.permutation(good):
        if len(picked) < count and all(a + size <= b or a >= c for b, c in picked):
            picked.append((int(a), int(a) + size))
    return sorted(picked)


def run_songs(ctx: BuildContext, package: str) -> None:
    fonts, fluidsynth, writer = soundfonts(ctx), _fluidsynth(), ctx.writer
    files = ctx.packages.files(package, "**/*.mid")
    other_cap_s = (
        2 * 60 * ctx.config.quota_minutes(package, "other")
    )  # songs without bass must not keep the loop going forever
    for index in ctx.rng(package, "order").permutation(len(files)):
        if all(writer.full(s, package) for s in ("bass", "other")) or writer.seconds[package, "other"] >= other_cap_s:
            return
        path, orig = files[index]
        split = writer.split(orig, package)  # group: the song file
        if all(writer.full(s, package, split) for s in ("bass", "other")):
            continue
        rng = ctx.rng(package, orig)
        font = sorted(fonts)[int(rng.integers(len(fonts)))]
        tempo, transpose = float(rng.uniform(0.85, 1.15)), int(rng.integers(-3, 4))
        try:
            stems = split_midi(read_midi(path), max_s=ctx.config.max_song_s, tempo_factor=tempo, transpose=transpose)
        except Exception as err:  # a malformed MIDI file is skipped, not fatal
            logger.info("%s: skip %s (%s)", package, orig, err)
            continue
        if not stems:
            continue
        audio = render_stems(stems, fonts[font][0], fluidsynth=fluidsynth)
        licence = f"{SONG_PACKAGES[package]}; rendered with {font} ({fonts[font][1]})"
        extra = {"soundfont": font, "tempo_factor": round(tempo, 3), "transpose": transpose}
        for k, (a, b) in enumerate(song_windows(audio, rng, WINDOWS_PER_SONG)):
            window = {s: x[a:b] for s, x in audio.items() if frame_db(x[a:b], SAMPLE_RATE // 20).max() > -60}
            if not window:
                continue
            gain = 0.9 * rng.uniform(0.6, 1.0) / (max(float(np.max(np.abs(x))) for x in window.values()) + 1e-9)
            song = f"{orig}#{k}"
            for stem, x in window.items():
                writer.write(
                    stem,
                    package,
                    f"{path.stem}_{k}_{stem}",
                    x,
                    orig=orig,
                    native_rate=SAMPLE_RATE,
                    licence=licence,
                    gain=gain,
                    song=song,
                    split=split,
                    group=orig,
                    extra={**extra, "start_s": round(a / SAMPLE_RATE, 3)},
                )


def _groove_midi(path: Path, kit: int) -> object:
    """Groove MIDI file remapped to General MIDI drums on channel 10 with drum kit ``kit``."""
    import mido

    midi = read_midi(path)
    for track in midi.tracks:
        for i, msg in enumerate(track):
            if msg.type in ("note_on", "note_off"):
                track[i] = msg.copy(note=GROOVE_REMAP.get(msg.note, msg.note), channel=DRUM_CHANNEL)
    midi.tracks[0].insert(0, mido.Message("program_change", channel=DRUM_CHANNEL, program=kit, time=0))
    return midi


def run_groove(ctx: BuildContext) -> None:
    source, root, writer = "groove-midi", ctx.config.groove_dir, ctx.writer
    if not (root / "info.csv").is_file():
        raise SourceUnavailable(f"no Groove MIDI Dataset at {root} (expected info.csv); pass --groove DIR")
    fonts, fluidsynth = soundfonts(ctx), _fluidsynth()
    with open(root / "info.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["beat_type"] == "beat" and float(r["duration"]) >= 12]
    for index in ctx.rng(source, "order").permutation(len(rows)):
        if writer.full("drums", source):
            return
        row = rows[index]
        rng, orig = ctx.rng(source, row["midi_filename"]), f"groove-midi/{row['midi_filename']}"
        group = row["session"]  # one drummer's session: its takes share a split
        if writer.full("drums", source, writer.split(group, source)):
            continue
        kit, font, tempo = (
            int(rng.choice(DRUM_KITS)),
            sorted(fonts)[int(rng.integers(len(fonts)))],
            float(rng.uniform(0.85, 1.15)),
        )
        stems = split_midi(
            _groove_midi(root / row["midi_filename"], kit), max_s=ctx.config.max_song_s, tempo_factor=tempo
        )
        if "drums" not in stems:
            continue
        audio = render_stems({"drums": stems["drums"]}, fonts[font][0], fluidsynth=fluidsynth)["drums"]
        size = int(rng.uniform(9.0, 13.0) * SAMPLE_RATE)
        start = int(rng.uniform(0, max(len(audio) - size - SAMPLE_RATE, 1)))
        writer.emit(
            "drums",
            source,
            f"{row['drummer']}_{row['style']}_{row['bpm']}",
            audio[start : start + size],
            rng,
            orig=orig,
            group=group,
            native_rate=SAMPLE_RATE,
            licence=f"{GROOVE_LICENCE}; rendered with {font} ({fonts[font][1]})",
            extra={"soundfont": font, "drum_kit_program": kit, "tempo_factor": round(tempo, 3)},
        )


def midi_recipes() -> list[Recipe]:
    songs = [
        Recipe(name, STEMS, licence, partial(run_songs, package=name), packages=(name,), tools=("fluidsynth",))
        for name, licence in SONG_PACKAGES.items()
    ]
    return songs + [
        Recipe(
            "groove-midi",
            ("drums",),
            GROOVE_LICENCE,
            run_groove,
            tools=("fluidsynth",),
            note="../shared/data/groove-midi (not a Debian package)",
        )
    ]
