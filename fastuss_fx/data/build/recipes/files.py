"""Recipes that read audio files out of Debian data packages (real speech, game music, effects).

Each source is a row of ``PACKAGE_SOURCES``: the package, its licence (from
``/usr/share/doc/<package>/copyright``, the stanza covering the audio) and one ``FileSpec``
per role it feeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastuss_fx.data.build.recipes.common import BuildContext, Recipe, long_windows, sequences
from fastuss_fx.io import audio_duration


@dataclass(frozen=True)
class FileSpec:
    """Files of a package for one role.

    ``kind`` is ``"long"`` (random windows of long files) or ``"short"`` (utterances or
    one-shots strung into sequences). ``group`` is a regex on the original path whose first
    group keeps files of one speaker/language/kit together; ``split_by`` says whether that group
    (``"group"``: speakers) or each file (``"file"``: effects) decides the split; ``exclude`` is a
    regex of paths to skip; ``min_s``/``max_s`` bound the file duration (``min_trim_s`` the
    trimmed length of a short file, which drops grunts); ``licence`` overrides the package's.
    """

    role: str
    pattern: str
    kind: str = "long"
    group: str | None = None
    exclude: str | None = None
    min_s: float = 0.0
    max_s: float = float("inf")
    min_rate: int = 0
    gap_s: tuple[float, float] = (0.12, 0.6)
    split_by: str = "group"
    min_trim_s: float = 0.05
    licence: str | None = None


SPEECH = partial(FileSpec, "speech", kind="short")
MUSIC = partial(FileSpec, "musicbg", kind="long")
SFX = partial(FileSpec, "sfx", kind="short", gap_s=(0.05, 0.7), split_by="file")
AMBIENCE = partial(FileSpec, "sfxbg", kind="long")
STAMP_SPEECH = r"_(desc|[a-z]{2,3}(_[A-Z]{2})?(@\w+)?)\.ogg$"
MEGAGLEST_VOICE = r"/units/[^/]+/sounds/[^/]*_(select|ack)\d*\.wav$"
"""MegaGlest unit voices ("select" and "acknowledge" replies); attack and die sounds are grunts, left to sfx."""
HEDGEWARS_GRUNTS = r"/(Hmm|Jump|Laugh|Nooo|Ooff|Ouch|Ow|Poison\w*|Firepunch)\d*\.ogg$"
GCIN_LICENCE = {"3": "GPL-3 or LGPL-3 (Edward Der-Hua Liu)", "5": "CC-BY-3.0 (ChionMeilin, voice of Chu Lo)"}
"""gcin-voice: each syllable is recorded by two speakers, ``3.ogg`` and ``5.ogg``, under different licences."""

PACKAGE_SOURCES: dict[str, tuple[str, tuple[FileSpec, ...]]] = {
    # files are <level>/cs/<level>-<speaker>-<line>.ogg: the speaker code (m, v = the two fish, others per level)
    # is the group
    "fillets-ng-data-cs": ("GPL-2+", (SPEECH("**/*.ogg", group=r"/[^/-]+-([^-/]+)-[^/]*\.ogg$"),)),
    "tuxpaint-stamps-default": (
        "GPL-2",
        (
            SPEECH("**/*_desc*.ogg", group=r"_desc_?([A-Za-z_@]*)\.ogg$", min_rate=22050),
            SFX("**/*.ogg", exclude=STAMP_SPEECH + "|/symbols/", group=r"stamps/([^/]+)/"),
        ),
    ),
    **{
        f"asterisk-core-sounds-{lang}-wav": ("CC-BY-SA-3.0", (SPEECH("**/*.wav", group=r"sounds/([^/]+)/"),))
        for lang in ("en", "es", "fr", "it", "ru")
    },
    "hedgewars-data": (
        "GPL-2",
        (
            MUSIC("**/Data/Music/**/*.ogg"),
            SPEECH(
                "**/Data/Sounds/voices/*/*.ogg",
                group=r"voices/([^/]+)/",
                exclude=HEDGEWARS_GRUNTS,
                min_trim_s=0.3,
                licence="GFDL-1.3",
            ),
        ),
    ),
    "gcin-voice": (
        "GPL-3 or LGPL-3 / CC-BY-3.0 (per speaker)",
        (SPEECH("usr/share/gcin-voice/ogg/*/*.ogg", group=r"/(\d)\.ogg$", gap_s=(0.1, 0.4)),),
    ),
    "festvox-ru": (
        "BSD-like (festvox-ru recordings, Nickolay V. Shmyrev)",
        (SPEECH("usr/share/festival/voices/russian/*/wav/*.wav", group=r"voices/russian/([^/]+)/"),),
    ),
    "klettres-data": (
        "GPL-2+",
        (SPEECH("usr/share/klettres/*/*/*.ogg", group=r"klettres/([^/]+)/", gap_s=(0.2, 0.6)),),
    ),
    "ktuberling-data": ("GPL-2+", (SPEECH("usr/share/ktuberling/sounds/*/*.ogg", group=r"sounds/([a-z]+)"),)),
    "qabcs-data": (
        "GPL-3+",
        (SPEECH("usr/share/qabcs/abcs/*/sounds/**/*.ogg", group=r"/abcs/([^/]+)/sounds/", exclude=r"/abcs/all/"),),
    ),
    "warzone2100-music": ("GPL-2+", (MUSIC("**/*.opus"),)),
    "naev-data": ("GPL-2+/GPL-3/CC-BY-3.0 (per file, see copyright)", (MUSIC("**/snd/music/*.ogg"),)),
    "supertux-data": ("GPL-3+", (MUSIC("**/music/**/*.ogg"),)),
    "singularity-music": ("CC-BY-SA-3.0", (MUSIC("**/*.ogg"),)),
    "colobot-common-sounds": ("GPL-3+", (MUSIC("**/music/*.ogg"),)),
    "megaglest-data": (
        "CC-BY-SA-3.0",
        (
            SFX("**/*.wav", exclude=MEGAGLEST_VOICE),
            AMBIENCE("usr/share/games/megaglest/tilesets/*/sounds/*.ogg"),
            # the same voice files serve several units and factions: the file-name prefix is the voice
            SPEECH(
                "usr/share/games/megaglest/techs/*/factions/*/units/*/sounds/*.wav",
                group=r"/([a-z]+(?:_[a-z]+)*?)_(?:select|ack)\d*\.wav$",
                exclude=r"^(?!.*_(select|ack)\d*\.wav$)",
                min_trim_s=0.5,
            ),
        ),
    ),
    "redeclipse-data": (
        "Red-Eclipse/CC-BY-SA-3.0 (per file, see copyright)",
        (
            SFX("usr/share/games/redeclipse/data/sounds/**/*.ogg", exclude="/ambience/", max_s=30.0),
            AMBIENCE("usr/share/games/redeclipse/data/sounds/ambience/**/*.ogg"),
        ),
    ),
    "supertuxkart-data": ("GPL-3+", (SFX("**/sfx/**/*.ogg", max_s=6.0), AMBIENCE("**/sfx/**/*.ogg", min_s=6.0))),
    "tuxpaint-data": ("GPL-2+", (SFX("**/sounds/**/*.wav"),)),
    "hydrogen-drumkits": (
        "per kit, see HYDROGEN_KIT_LICENCE",
        (
            FileSpec(
                "drums",
                "**/drumkits/*/*.*",
                kind="short",
                group=r"/drumkits/([^/]+)/",
                exclude=r"GuitarStrums|\.(xml|txt|png)$",
                split_by="group",
            ),
        ),
    ),
}

HYDROGEN_KIT_LICENCE = {
    "ColomboAcousticDrumkit": "GPL-2+ with composition exception",
    "circAfrique v4": "CC-BY-SA-3.0",
    "BJA_Pacific": "CC-BY-SA-3.0-us",
    "rumpf_kit_z01_h2": "CC-BY-3.0",
    "Audiophob": "CC0-1.0",
    "ElectricEmpireKit": "GPL-2+",
    "HardElectro1": "GPL-2+",
    "VariBreaks": "GPL-2+",
    "Millo-Drums_v.1": "GPL-2",
    "Millo_MultiLayered2": "GPL-2",
    "Millo_MultiLayered3": "GPL-2",
    "Gimme A Hand 1.0": "GPL-2",
    "The Black Pearl 1.0": "GPL-2",
    "ForzeeStereo": "GPL-2",
}


def _group_of(pattern: str | None, orig: str) -> str:
    match = re.search(pattern, orig) if pattern else None
    return (match.group(1) if match and match.groups() else match.group(0) if match else "") or "all"


def _licence_of(package: str, licence: str, spec: FileSpec, orig: str) -> str:
    if package == "hydrogen-drumkits":
        return HYDROGEN_KIT_LICENCE.get(_group_of(spec.group, orig), "see /usr/share/doc/hydrogen-drumkits/copyright")
    if package == "gcin-voice":
        return GCIN_LICENCE.get(_group_of(spec.group, orig), licence)
    return spec.licence or licence


def _duration(path: Path) -> float:
    """Seconds of ``path``, or NaN (fails every range test) when it cannot be read."""
    try:
        return audio_duration(path)
    except Exception:
        return float("nan")


def run_package(ctx: BuildContext, package: str) -> None:
    """Write every role of ``package`` listed in ``PACKAGE_SOURCES``."""
    package_licence, specs = PACKAGE_SOURCES[package]
    for spec in specs:
        licence = spec.licence or package_licence
        files = [
            (p, o)
            for p, o in ctx.packages.files(package, spec.pattern)
            if not (spec.exclude and re.search(spec.exclude, o))
        ]
        if spec.kind == "long":
            long_windows(
                ctx,
                spec.role,
                package,
                files,
                licence,
                min_s=max(spec.min_s, 4.0),
                max_s=spec.max_s,
                skip_start_s=5.0 if spec.role == "musicbg" else 0.0,
                window_s=(11.0, 15.0) if spec.role == "musicbg" else (8.0, 14.0),
            )
        else:
            if spec.min_s > 0 or spec.max_s < float("inf"):
                files = [(p, o) for p, o in files if spec.min_s <= _duration(p) <= spec.max_s]
            sequences(
                ctx,
                spec.role,
                package,
                files,
                partial(_licence_of, package, licence, spec),
                group=partial(_group_of, spec.group),
                split_by=spec.split_by,
                gap_s=spec.gap_s,
                min_rate=spec.min_rate,
                min_s=spec.min_trim_s,
                gain_range=(0.4, 1.0) if spec.role != "speech" else (1.0, 1.0),
            )


def package_recipes() -> list[Recipe]:
    return [
        Recipe(
            name,
            tuple(dict.fromkeys(s.role for s in specs)),
            "; ".join(dict.fromkeys([licence, *(s.licence for s in specs if s.licence)])),
            partial(run_package, package=name),
            packages=(name,),
        )
        for name, (licence, specs) in PACKAGE_SOURCES.items()
    ]
