"""Synthetic voices: texts, randomised command lines for espeak-ng / flite / festival, singing scores.

Pure functions: they build texts and argument lists from a generator; the recipes run them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

OWN_SENTENCES = (
    "The ferry to the island leaves at a quarter past eight, so please arrive early.",
    "Nobody expected the little bakery on the corner to win the city prize this year.",
    "Could you speak a bit louder? The fan in this room is making a terrible noise.",
    "Tomorrow's meeting has moved to the second floor because the hall is being painted.",
    "The old map showed a path along the river that no longer exists.",
    "If it keeps raining like this, the football match will have to be cancelled.",
    "She wrote the recipe on the back of an envelope and forgot where she put it.",
    "Please check that all windows are closed before you set the alarm.",
    "Our neighbours planted twelve apple trees and a row of sunflowers along the fence.",
    "The next train to the airport departs from platform four in six minutes.",
    "He spent the whole afternoon trying to teach the parrot a single word.",
    "Thank you for waiting. Your call is important to us and will be answered shortly.",
    "Turn right after the bridge, then follow the signs to the harbour car park.",
    "The museum opens a new room of clocks and calendars from around the world.",
    "I think the printer is out of paper again, or maybe it is just tired.",
    "Mix the flour with the butter until it looks like fine breadcrumbs.",
)
LICENCE_TEXTS = ("GPL-3", "Apache-2.0", "Artistic", "MPL-2.0", "GFDL-1.3", "LGPL-2.1")
"""Plain-English sentences are also mined from these files under ``/usr/share/common-licenses``."""

ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-029", "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = (
    "",
    "+m1",
    "+m2",
    "+m3",
    "+m4",
    "+m7",
    "+f1",
    "+f2",
    "+f3",
    "+f4",
    "+f5",
    "+klatt",
    "+klatt3",
    "+Andy",
    "+Annie",
    "+Mike",
    "+belinda",
    "+iven",
    "+linda",
    "+edward",
    "+grandma",
    "+david",
    "+john",
)
FLITE_VOICES = {"kal16": 105.0, "awb": 110.0, "rms": 100.0, "slt": 170.0}
"""flite voices and their mean pitch in Hz (the pitch variation scales it)."""
FESTIVAL_VOICES = ("voice_kal_diphone", "voice_cmu_us_slt_arctic_hts", "voice_rab_diphone", "voice_ked_diphone")

NOTE_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
PENTATONIC = (0, 2, 4, 7, 9)
SYLLABLES = tuple(
    "la na oh ah love day night sky home light dream rain sun go way my heart you me we sing "
    "fly high low so blue time stay wait hold run far free fire gold sea moon star".split()
)


def sentences(licences_dir: str | Path = "/usr/share/common-licenses") -> list[str]:
    """Our own sentences plus 50–200-character plain sentences from licence texts."""
    out = list(OWN_SENTENCES)
    for name in LICENCE_TEXTS:
        path = Path(licences_dir) / name
        if not path.is_file():
            continue
        text = re.sub(r"\s+", " ", path.read_text(errors="ignore"))
        out += [
            s
            for s in re.split(r"(?<=[.;:])\s+", text)
            if 50 <= len(s) <= 200 and s[0].isupper() and re.fullmatch(r"[A-Za-z ,;:.'()\-]+", s)
        ]
    return out


def espeak_command(text: str, wav: str | Path, rng: np.random.Generator) -> list[str]:
    """``espeak-ng`` with a random English voice + variant, rate 120–200 wpm and pitch 20–80."""
    voice = str(rng.choice(ESPEAK_VOICES)) + str(rng.choice(ESPEAK_VARIANTS))
    return [
        "espeak-ng",
        "-v",
        voice,
        "-s",
        str(int(rng.integers(120, 200))),
        "-p",
        str(int(rng.integers(20, 80))),
        "-w",
        str(wav),
        text,
    ]


def flite_command(text: str, wav: str | Path, rng: np.random.Generator) -> list[str]:
    """``flite`` with a random voice, duration stretch 0.85–1.25 and mean pitch × 0.8–1.3."""
    voice = str(rng.choice(list(FLITE_VOICES)))
    pitch = FLITE_VOICES[voice] * rng.uniform(0.8, 1.3)
    return [
        "flite",
        "-voice",
        voice,
        "--setf",
        f"duration_stretch={rng.uniform(0.85, 1.25):.2f}",
        "--setf",
        f"int_f0_target_mean={pitch:.0f}",
        "-t",
        text,
        "-o",
        str(wav),
    ]


def festival_command(wav: str | Path, voice: str) -> list[str]:
    """``text2wave`` reading the text on stdin with festival ``voice`` (e.g. ``voice_kal_diphone``)."""
    return ["text2wave", "-o", str(wav), "-eval", f"({voice})"]


def note_name(midi_note: int) -> str:
    """Festival's note name of a MIDI note number, e.g. 57 → ``A3``."""
    return f"{NOTE_NAMES[midi_note % 12]}{midi_note // 12 - 1}"


def singing_score(rng: np.random.Generator) -> str:
    """A random pentatonic melody with syllables in festival's SINGING XML (``text2wave -mode singing``)."""
    root, bpm, degree = int(rng.integers(45, 53)), int(rng.integers(80, 140)), int(rng.integers(0, 5))
    notes = []
    for _ in range(int(rng.integers(18, 30))):
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, 9))
        pitch = root + 12 * (degree // 5) + PENTATONIC[degree % 5]
        beats = float(rng.choice([0.5, 0.5, 1, 1, 1, 1.5, 2]))
        notes.append(
            f'<PITCH NOTE="{note_name(pitch)}"><DURATION BEATS="{beats}">{rng.choice(SYLLABLES)}</DURATION></PITCH>'
        )
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>\n'
        f'<SINGING BPM="{bpm}">\n' + "\n".join(notes) + "\n</SINGING>\n"
    )
