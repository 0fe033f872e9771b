"""MIDI → aligned drums / bass / other stems: split by channel and General MIDI program, vary, render.

Channel 10 (index 9) is drums; General MIDI programs 33–40 (indices 32–39) are basses; every
other note is ``other``. Controllers, program changes and tempo go to every stem, so the stems
keep one timeline and, rendered with one soundfont, sum to the whole song. ``mido`` (optional
dependency) reads and writes the files; ``fluidsynth`` renders them.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fastuss_fx.data.build.signal import SAMPLE_RATE
from fastuss_fx.io import decode_mono

logger = logging.getLogger(__name__)

STEMS = ("drums", "bass", "other")
DRUM_CHANNEL = 9
"""0-based index of General MIDI channel 10."""
BASS_PROGRAMS = range(32, 40)
"""0-based General MIDI programs 33–40: acoustic, electric, fretless, slap and synth basses."""
DEFAULT_TEMPO = 500_000
"""MIDI's default tempo: microseconds per quarter note (120 bpm)."""


def stem_of(channel: int, program: int) -> str:
    """The stem a note on ``channel`` (0-based) played by ``program`` (0-based) belongs to."""
    if channel == DRUM_CHANNEL:
        return "drums"
    return "bass" if program in BASS_PROGRAMS else "other"


class StemRouter:
    """Decides, message by message in time order, which stems a MIDI message goes to.

    Works on anything shaped like a ``mido`` message (``type``, ``channel``, ``note``,
    ``velocity``, ``program``). A note-off follows its note-on even when the program changed
    in between; meta and controller messages go to every stem; ``end_of_track`` to none.
    """

    def __init__(self) -> None:
        self.program: dict[int, int] = defaultdict(int)
        self.sounding: dict[tuple[int, int], str] = {}

    def route(self, msg: Any) -> tuple[str, ...]:
        kind = msg.type
        if kind == "end_of_track":
            return ()
        if kind == "program_change":
            self.program[msg.channel] = msg.program
        if kind == "note_on" and msg.velocity > 0:
            stem = stem_of(msg.channel, self.program[msg.channel])
            self.sounding[msg.channel, msg.note] = stem
            return (stem,)
        if kind in ("note_on", "note_off"):
            ended = self.sounding.pop((msg.channel, msg.note), None)
            return (ended,) if ended else ()
        if kind == "polytouch":
            held = self.sounding.get((msg.channel, msg.note))
            return (held,) if held else ()
        return STEMS


def read_midi(path: str | Path) -> Any:
    """Read a MIDI file with ``mido``; a clear error when ``mido`` is missing."""
    try:
        import mido
    except ImportError:
        raise ImportError("MIDI recipes need mido: pip install mido") from None
    return mido.MidiFile(str(path))


def split_midi(midi: Any, *, max_s: float = 120.0, tempo_factor: float = 1.0, transpose: int = 0) -> dict[str, Any]:
    """Split a ``mido.MidiFile`` into one type-0 file per stem that has notes.

    ``tempo_factor`` > 1 plays faster; ``transpose`` shifts pitched (non-drum) notes in
    semitones, clipped to 0..127. Notes starting after ``max_s`` (at the new tempo) are dropped.
    """
    import mido

    if tempo_factor <= 0:
        raise ValueError(f"tempo_factor must be > 0, got {tempo_factor!r}")
    router, events = StemRouter(), defaultdict(list)
    notes: dict[str, int] = defaultdict(int)
    tempo, seconds, tick, last = DEFAULT_TEMPO, 0.0, 0, 0
    for stem in STEMS:  # the varied tempo must hold from tick 0 even where the file sets none
        events[stem].append((0, mido.MetaMessage("set_tempo", tempo=round(DEFAULT_TEMPO / tempo_factor))))
    for msg in mido.merge_tracks(midi.tracks):
        tick += msg.time
        seconds += mido.tick2second(tick - last, midi.ticks_per_beat, round(tempo / tempo_factor))
        last = tick
        if msg.type == "set_tempo":
            tempo = msg.tempo
            msg = msg.copy(tempo=round(tempo / tempo_factor))
        starts = msg.type == "note_on" and msg.velocity > 0
        if seconds > max_s and (starts or msg.type not in ("note_on", "note_off")):
            continue
        if transpose and msg.type in ("note_on", "note_off", "polytouch") and msg.channel != DRUM_CHANNEL:
            msg = msg.copy(note=int(np.clip(msg.note + transpose, 0, 127)))
        for stem in router.route(msg):
            events[stem].append((tick, msg))
            notes[stem] += starts
    return {stem: _type0(events[stem], midi.ticks_per_beat) for stem in STEMS if notes[stem]}


def _type0(events: list[tuple[int, Any]], ticks_per_beat: int) -> Any:
    import mido

    track, prev = mido.MidiTrack(), 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - prev))
        prev = tick
    track.append(mido.MetaMessage("end_of_track", time=ticks_per_beat))  # room for release tails
    out = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    out.tracks.append(track)
    return out


def render(midi: Any, soundfont: str | Path, *, fluidsynth: str = "fluidsynth", gain: float = 0.5) -> np.ndarray:
    """Render a ``mido.MidiFile`` with ``fluidsynth`` and ``soundfont``; mono float32 at 48 kHz."""
    with tempfile.TemporaryDirectory(prefix="fastuss-midi-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        midi.save(str(mid))
        done = subprocess.run(
            [
                fluidsynth,
                "-ni",
                "-q",
                "-g",
                str(gain),
                "-F",
                str(wav),
                "-r",
                str(SAMPLE_RATE),
                str(soundfont),
                str(mid),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed on {soundfont}: {done.stderr.strip()[-300:]}")
        audio, rate = decode_mono(wav)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {SAMPLE_RATE}")
    return audio


def render_stems(stems: dict[str, Any], soundfont: str | Path, **kwargs: Any) -> dict[str, np.ndarray]:
    """Render each stem, zero-padded to a common length so that they stay aligned."""
    audio = {stem: render(midi, soundfont, **kwargs) for stem, midi in stems.items()}
    length = max((len(x) for x in audio.values()), default=0)
    return {stem: np.pad(x, (0, length - len(x))) for stem, x in audio.items()}
