"""Build the bundled demo example: a 6-s, 48 kHz mono scene of speech, music and effects.

Every sound is made here, from material we own or generate:

- speech: espeak-ng (text below) -- the program is GPL-3, its audio output is ours;
- music: three MIDI parts written below (drums, bass, chords), rendered with FluidSynth and
  the FluidR3 General MIDI soundfont (Debian ``fluid-soundfont-gm``, MIT licence);
- effects: two knocks, a whoosh and an impact synthesised from seeded noise and sines.

Writes the five true stems to ``fastuss_fx/assets/``: ``speech.ogg``, ``sfx.ogg``,
``drums.ogg``, ``bass.ogg``, ``other.ogg`` (music = drums + bass + other), plus ``README.md``
with the provenance and licences. The mixture is the sum of the decoded stems
(``fastuss_fx.demo.load_example``), so the stems are exact references for it.

Needs (Debian/Ubuntu)::

    apt-get install espeak-ng fluidsynth fluid-soundfont-gm

Run from the repository root: ``python scripts/make_demo_example.py``.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

RATE = 48000
SECONDS = 6.0  # one offline window of the default model (segment_seconds=6): one model call
N = int(RATE * SECONDS)
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TEXT = "Welcome to the fast uss demo. Speech, music and effects, in one mix."
SPEECH_START_S = 0.9
OGG_QUALITY = "128 kbps"  # nominal; 15-50 kB per 6-s mono stem (~150 kB in all)

# -- MIDI -------------------------------------------------------------------------------------

TEMPO_BPM = 120  # 3 bars of 4/4 = 6 s
PPQ = 480


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(notes: list[tuple[float, float, int, int]], channel: int, program: int | None) -> bytes:
    """A type-0 standard MIDI file; ``notes`` are ``(start_beat, length_beats, pitch, velocity)``."""
    events: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03" + (60_000_000 // TEMPO_BPM).to_bytes(3, "big"))]
    if program is not None:
        events.append((0, bytes([0xC0 | channel, program])))
    for start, length, pitch, velocity in notes:
        on, off = round(start * PPQ), round((start + length) * PPQ)
        events += [(on, bytes([0x90 | channel, pitch, velocity])), (off, bytes([0x80 | channel, pitch, 0]))]
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # note-offs before note-ons at a tick
    track, now = b"", 0
    for tick, data in events:
        track += _varlen(tick - now) + data
        now = tick
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ) + b"MTrk" + struct.pack(">I", len(track)) + track


def drum_part() -> list[tuple[float, float, int, int]]:
    kick, snare, hat = 36, 38, 42
    notes = []
    for bar in range(3):
        b = 4 * bar
        notes += [(b + t, 0.25, kick, 110) for t in (0, 1.5, 2)]
        notes += [(b + t, 0.25, snare, 100) for t in (1, 3)]
        notes += [(b + t / 2, 0.25, hat, 70 if t % 2 else 90) for t in range(8)]
    return notes


# A minor -> F major -> G major, one bar each (roots for the bass, triads for the chords).
CHORDS = [(45, (57, 60, 64)), (41, (57, 60, 65)), (43, (55, 59, 62))]


def bass_part() -> list[tuple[float, float, int, int]]:
    notes = []
    for bar, (root, _) in enumerate(CHORDS):
        b = 4 * bar
        notes += [
            (b, 1.5, root, 100),
            (b + 1.5, 0.5, root, 80),
            (b + 2, 1.0, root + 12, 90),
            (b + 3, 1.0, root + 7, 90),
        ]
    return notes


def chord_part() -> list[tuple[float, float, int, int]]:
    return [(4 * bar + beat, 0.9, p, 70) for bar, (_, triad) in enumerate(CHORDS) for beat in (0, 2) for p in triad]


PARTS = {  # stem -> (notes, MIDI channel, GM program)
    "drums": (drum_part(), 9, None),
    "bass": (bass_part(), 0, 33),  # Electric Bass (finger)
    "other": (chord_part(), 1, 4),  # Electric Piano 1
}

# -- rendering --------------------------------------------------------------------------------


def read_mono(path: Path) -> np.ndarray:
    with AudioFile(str(path)).resampled_to(RATE) as f:
        return f.read(f.frames).mean(axis=0).astype(np.float64)


def fit(audio: np.ndarray, start: int = 0) -> np.ndarray:
    """Place ``audio`` at ``start`` in an ``N``-sample buffer (cut at the end)."""
    out = np.zeros(N)
    audio = audio[: N - start]
    out[start : start + audio.shape[0]] = audio
    return out


def fade_out(audio: np.ndarray, seconds: float = 0.3) -> np.ndarray:
    n = int(seconds * RATE)
    audio = audio.copy()
    audio[-n:] *= np.linspace(1, 0, n)
    return audio


def render_speech(work: Path) -> np.ndarray:
    wav = work / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-p", "45", "-w", str(wav), TEXT], check=True)
    speech = read_mono(wav)
    loud = np.flatnonzero(np.abs(speech) > 1e-3)
    return fit(speech[loud[0] : loud[-1] + 1], int(SPEECH_START_S * RATE))


def render_part(work: Path, name: str) -> np.ndarray:
    notes, channel, program = PARTS[name]
    mid, wav = work / f"{name}.mid", work / f"{name}.wav"
    mid.write_bytes(midi_file(notes, channel, program))
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-q",
            "-R",
            "0",
            "-C",
            "0",
            "-g",
            "0.6",
            "-r",
            str(RATE),
            "-F",
            str(wav),
            str(SOUNDFONT),
            str(mid),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return fade_out(fit(read_mono(wav)))


def render_sfx(rng: np.random.Generator) -> np.ndarray:
    """Two knocks, then a whoosh (band-passed noise sweeping up) that ends on an impact."""
    t = np.arange(N) / RATE
    sfx = np.zeros(N)
    for at in (0.15, 0.42):  # knocks: damped 180 Hz + 420 Hz partials with a noise click
        k = t >= at
        d = t[k] - at
        sfx[k] += np.exp(-d / 0.025) * (0.8 * np.sin(2 * np.pi * 180 * d) + 0.4 * np.sin(2 * np.pi * 420 * d))
        sfx[k] += np.exp(-d / 0.003) * 0.5 * rng.standard_normal(k.sum())
    start, length = 4.25, 0.95  # whoosh: shape noise in the STFT domain with a moving band
    n = int(length * RATE)
    noise = rng.standard_normal(n)
    frame = 1024
    hop = frame // 4
    window = np.hanning(frame)
    whoosh = np.zeros(n + frame)
    freqs = np.fft.rfftfreq(frame, 1 / RATE)
    for pos in range(0, n - frame, hop):
        progress = pos / n
        centre = 300 * (12**progress)  # 300 Hz -> 3.6 kHz
        band = np.exp(-0.5 * (np.log(np.maximum(freqs, 1) / centre) / 0.35) ** 2)
        spec = np.fft.rfft(noise[pos : pos + frame] * window) * band
        whoosh[pos : pos + frame] += np.fft.irfft(spec) * window
    envelope = np.sin(np.pi * np.linspace(0, 1, n)) ** 2
    whoosh = whoosh[:n] * envelope
    sfx[int(start * RATE) : int(start * RATE) + n] += 1.5 * whoosh / np.abs(whoosh).max()
    at = start + length  # impact: a falling 70 -> 40 Hz thump with a noise burst
    k = t >= at
    d = t[k] - at
    sfx[k] += np.exp(-d / 0.18) * np.sin(2 * np.pi * (40 * d + 30 * 0.1 * (1 - np.exp(-d / 0.1))))
    sfx[k] += np.exp(-d / 0.04) * 0.6 * rng.standard_normal(k.sum())
    return fade_out(sfx, 0.05)


def rms_db(x: np.ndarray) -> float:
    active = x[np.abs(x) > 1e-4]
    return 10 * np.log10(np.mean(active**2) + 1e-20)


def set_level(x: np.ndarray, target_db: float) -> np.ndarray:
    return x * 10 ** ((target_db - rms_db(x)) / 20)


def build(out: Path) -> dict[str, np.ndarray]:
    for tool in ("espeak-ng", "fluidsynth"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found; apt-get install espeak-ng fluidsynth fluid-soundfont-gm")
    if not SOUNDFONT.is_file():
        raise SystemExit(f"{SOUNDFONT} not found; apt-get install fluid-soundfont-gm")
    rng = np.random.default_rng(20240607)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stems = {"speech": set_level(render_speech(work), -20.0)}
        music = {name: render_part(work, name) for name in PARTS}
    scale = 10 ** ((-28.0 - rms_db(sum(music.values()))) / 20)  # music sits under the dialogue
    stems.update({name: part * scale for name, part in music.items()})
    stems["sfx"] = set_level(render_sfx(rng), -22.0)
    mixture = sum(stems.values())
    gain = 0.89 / np.abs(mixture).max()  # peak at -1 dBFS, every stem scaled alike
    stems = {name: (s * gain).astype(np.float32) for name, s in stems.items()}
    out.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        with AudioFile(str(out / f"{name}.ogg"), "w", RATE, 1, quality=OGG_QUALITY) as f:
            f.write(audio[None])
    (out / "README.md").write_text(README)
    return stems


README = f"""# The demo example

{SECONDS:g} s at {RATE} Hz, mono: the five true stems of a short scene, Ogg Vorbis: `speech`,
`sfx` (effects), and the music as `drums` + `bass` + `other`. The demo's mixture is the sum of
the decoded stems (`fastuss_fx.demo.load_example()`), so they are exact references for it.

Made by `scripts/make_demo_example.py` from material we own or generate; nothing recorded or
downloaded:

- speech: espeak-ng 1.51 (en-us voice) reading our own sentence, "{TEXT}";
- music: three MIDI parts written in the script (3 bars, {TEMPO_BPM} bpm, A minor / F / G),
  rendered with FluidSynth and the FluidR3_GM soundfont (Debian `fluid-soundfont-gm`,
  MIT licence, Copyright Frank Wen);
- effects: knocks, a whoosh and an impact synthesised from seeded noise and sines.

Licence: the same as the project (MIT).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("fastuss_fx/assets"), help="output folder")
    args = parser.parse_args()
    stems = build(args.out)
    for name, audio in stems.items():
        size = (args.out / f"{name}.ogg").stat().st_size
        print(f"{name:8s} rms {rms_db(audio):6.1f} dBFS  peak {np.abs(audio).max():.2f}  {size / 1000:.0f} kB")


if __name__ == "__main__":
    main()
