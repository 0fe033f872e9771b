"""Generated sources: text-to-speech (espeak-ng, flite, festival), festival singing, noise."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fastuss_fx.data.build import tts
from fastuss_fx.data.build.noise import NOISE_KINDS, noise
from fastuss_fx.data.build.recipes.common import BuildContext, Recipe, SourceUnavailable
from fastuss_fx.data.build.signal import SAMPLE_RATE, to_48k
from fastuss_fx.io import decode_mono

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2000
"""A generator that keeps failing stops after this many tries instead of looping forever."""


def _run(cmd: list[str], stdin: str | None = None) -> bool:
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        logger.debug("%s failed: %s", cmd[0], done.stderr.strip()[-200:])
    return done.returncode == 0


def voice_of(cmd: list[str]) -> str:
    """The voice a TTS command line asks for: the split group.

    The ``-v``/``-voice`` value, or festival's ``(voice_...)``.
    """
    for flag in ("-v", "-voice", "-eval"):
        if flag in cmd[:-1]:
            return cmd[cmd.index(flag) + 1].strip("()")
    return "default"


def _speak(
    ctx: BuildContext, source: str, command: Callable[[str, Path, np.random.Generator], tuple[list[str], str | None]]
) -> None:
    """Two random sentences per utterance until the quota is full; the voice is the split group."""
    texts, writer = tts.sentences(), ctx.writer
    for i in range(MAX_ATTEMPTS):
        if writer.full("speech", source):
            return
        orig = f"{source}/{i:05d}"
        rng = ctx.rng(source, i)
        text = " ".join(texts[j] for j in rng.choice(len(texts), 2, replace=False))
        wav = ctx.tmp / f"{source}-{i}.wav"
        cmd, stdin = command(text, wav, rng)
        voice = voice_of(cmd)
        split = writer.split(voice, source)
        if writer.full("speech", source, split):
            continue
        if not _run(cmd, stdin) or not wav.is_file():
            continue
        audio, rate = decode_mono(wav)
        wav.unlink()
        writer.emit(
            "speech",
            source,
            f"{source}{i:04d}",
            to_48k(audio, rate),
            rng,
            orig=orig,
            native_rate=rate,
            group=voice,
            split=split,
            licence=TTS_LICENCE[source],
            extra={"generator": " ".join(a for a in cmd if a not in (text, str(wav), "-o", "-w")), "text": text},
        )


def _festival_voices() -> list[str]:
    """The festival voices that load here (each needs its festvox-* package)."""
    ok = []
    for voice in tts.FESTIVAL_VOICES:
        if _run(["festival", "--batch", f"({voice})"]):
            ok.append(voice)
    return ok


def run_espeak(ctx: BuildContext) -> None:
    _speak(ctx, "espeak-ng", lambda text, wav, rng: (tts.espeak_command(text, wav, rng), None))


def run_flite(ctx: BuildContext) -> None:
    _speak(ctx, "flite", lambda text, wav, rng: (tts.flite_command(text, wav, rng), None))


def run_festival(ctx: BuildContext) -> None:
    voices = _festival_voices()
    if not voices:
        raise SourceUnavailable(
            f"festival loads none of {', '.join(tts.FESTIVAL_VOICES)}: apt-get install festvox-kallpc16k"
        )
    logger.info("festival voices: %s", ", ".join(voices))
    _speak(ctx, "festival", lambda text, wav, rng: (tts.festival_command(wav, str(rng.choice(voices))), text))


def run_singing(ctx: BuildContext) -> None:
    """festival singing mode (kal diphone); a resampling shift of 0.9–1.6× moves pitch and formants."""
    source, writer = "festival-singing", ctx.writer
    for i in range(MAX_ATTEMPTS // 10):
        if writer.full("vocals", source):
            return
        orig = f"{source}/{i:03d}"  # one synthetic voice (kal): each song is its own group
        if writer.full("vocals", source, writer.split(orig, source)):
            continue
        rng = ctx.rng(source, i)
        score, wav = ctx.tmp / f"sing-{i}.xml", ctx.tmp / f"sing-{i}.wav"
        score.write_text(tts.singing_score(rng))
        if not _run(["text2wave", "-mode", "singing", str(score), "-o", str(wav)]) or not wav.is_file():
            continue
        audio, rate = decode_mono(wav)
        wav.unlink()
        shift = float(rng.uniform(0.9, 1.6))
        writer.emit(
            "vocals",
            source,
            f"song{i:03d}",
            to_48k(audio, rate * shift),
            rng,
            orig=orig,
            native_rate=rate,
            licence=TTS_LICENCE["festival"],
            extra={"generator": f"festival singing kal_diphone shift={shift:.2f}"},
        )


def run_noise(ctx: BuildContext) -> None:
    source, writer = "generated-noise", ctx.writer
    for i in range(MAX_ATTEMPTS):
        if writer.full("sfxbg", source):
            return
        kind, rng = NOISE_KINDS[i % len(NOISE_KINDS)], ctx.rng(source, i)
        if writer.full("sfxbg", source, writer.split(f"{source}/{kind}/{i}", source)):
            continue
        audio = to_48k(noise(kind, rng, rng.uniform(8.0, 15.0)), SAMPLE_RATE)
        writer.emit(
            "sfxbg",
            source,
            kind,
            audio,
            rng,
            orig=f"{source}/{kind}/{i}",
            native_rate=SAMPLE_RATE,
            licence="CC0-1.0 (generated)",
            extra={"generator": kind},
        )


TTS_LICENCE = {
    "espeak-ng": "GPL-3+ (espeak-ng data; generated)",
    "flite": "BSD-like flite licence (generated)",
    "festival": "festival/festvox BSD-like (generated)",
}


def synth_recipes() -> list[Recipe]:
    return [
        Recipe("espeak-ng", ("speech",), TTS_LICENCE["espeak-ng"], run_espeak, tools=("espeak-ng",)),
        Recipe("flite", ("speech",), TTS_LICENCE["flite"], run_flite, tools=("flite",)),
        Recipe("festival", ("speech",), TTS_LICENCE["festival"], run_festival, tools=("festival", "text2wave")),
        Recipe(
            "festival-singing",
            ("vocals",),
            TTS_LICENCE["festival"],
            run_singing,
            tools=("text2wave",),
            note="synthetic singing, 16 kHz native: band-limited",
        ),
        Recipe("generated-noise", ("sfxbg",), "CC0-1.0 (generated)", run_noise),
    ]
