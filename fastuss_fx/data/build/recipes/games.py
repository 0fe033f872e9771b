"""Recipes for game data that is not a folder of audio files: FOTAQ's resource file, drascula's
raw voice files, UFO:AI's ambience inside a ``.pk3`` zip."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fastuss_fx.data.build.archives import drascula_speaker, extract_members, fotaq_speaker, queen_speech
from fastuss_fx.data.build.recipes.common import BuildContext, Recipe, SourceUnavailable, long_windows, sequences
from fastuss_fx.data.build.signal import read_raw_u8

FOTAQ = "flight-of-the-amazon-queen"
FOTAQ_LICENCE = (
    "Flight-of-the-Amazon-Queen licence (free redistribution and modification; selling the game itself excluded)"
)
FOTAQ_FILE = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
DRASCULA = "drascula"
DRASCULA_LICENCE = "Drascula licence (same wording as FOTAQ: free redistribution and modification)"
DRASCULA_RATE = 11025
DRASCULA_SFX = r"^S\d+$"
"""``S<n>.ALS`` are sound effects, not voices."""
UFOAI = "ufoai-sound"
UFOAI_LICENCE = "CC-BY-3.0/CC-BY-SA-3.0/GPL-2+ (per file, see /usr/share/doc/ufoai-sound/copyright)"
UFOAI_ARCHIVE = "usr/share/games/ufoai/base/0snd.pk3"


def _tree(ctx: BuildContext, package: str, relative: str) -> Path:
    tree = ctx.packages.ensure(package)
    if tree is None or not (tree / relative).exists():
        raise SourceUnavailable(f"{package}: {relative} not found")
    return tree / relative


def run_fotaq(ctx: BuildContext) -> None:
    """English voice acting (6,745 MP3 lines at 11.025 kHz), grouped by character."""
    path = _tree(ctx, FOTAQ, FOTAQ_FILE)
    files = [(data, f"{FOTAQ}/queen.1c/{name}") for name, data in queen_speech(path)]
    sequences(
        ctx, "speech", FOTAQ, files, FOTAQ_LICENCE, group=lambda orig: fotaq_speaker(orig.rsplit("/", 1)[-1]), min_s=0.3
    )


def _read_als(path: Path | bytes) -> tuple[np.ndarray, int]:
    return read_raw_u8(path), DRASCULA_RATE


def run_drascula(ctx: BuildContext) -> None:
    """English voice acting (raw 8-bit unsigned 11.025 kHz ``en/*.ALS``), grouped by character."""
    folder = _tree(ctx, DRASCULA, "usr/share/scummvm/drascula/en")
    files = [
        (p, f"{DRASCULA}/en/{p.name}")
        for p in sorted(folder.iterdir())
        if p.suffix.upper() == ".ALS" and not re.match(DRASCULA_SFX, p.stem, re.IGNORECASE)
    ]
    sequences(
        ctx,
        "speech",
        DRASCULA,
        files,
        DRASCULA_LICENCE,
        group=lambda orig: drascula_speaker(orig),
        min_s=0.3,
        reader=_read_als,
    )


def run_ufoai(ctx: BuildContext) -> None:
    """Ambience loops (fire, wind, rain, machinery) from ``base/0snd.pk3`` → ``sfxbg`` windows."""
    archive = _tree(ctx, UFOAI, UFOAI_ARCHIVE)
    paths = extract_members(archive, "sound/ambience/", ctx.tmp / UFOAI)
    files = [(p, f"{UFOAI}/0snd.pk3/{p.relative_to(ctx.tmp / UFOAI).as_posix()}") for p in paths]
    long_windows(
        ctx, "sfxbg", UFOAI, files, UFOAI_LICENCE, window_s=(8.0, 14.0), per_file=3, skip_start_s=0.0, min_s=4.0
    )


def game_recipes() -> list[Recipe]:
    return [
        Recipe(FOTAQ, ("speech",), FOTAQ_LICENCE, run_fotaq, packages=(FOTAQ,), note="queen.1c MP3 speech, 11.025 kHz"),
        Recipe(
            DRASCULA,
            ("speech",),
            DRASCULA_LICENCE,
            run_drascula,
            packages=(DRASCULA,),
            note="raw 8-bit 11.025 kHz; held out by default (split holdout)",
        ),
        Recipe(
            UFOAI, ("sfxbg",), UFOAI_LICENCE, run_ufoai, packages=(UFOAI,), note="zip base/0snd.pk3, sound/ambience"
        ),
    ]
