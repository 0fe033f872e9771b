"""``fastuss data``: corpus tools.

``build`` the corpus from its recipes, ``stats`` of a manifest, ``pack`` a compact subset, ``synth`` a test corpus.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="corpus tools: build, stats, pack, synth")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _register_build(actions)
    stats = actions.add_parser("stats", help="minutes per role and split, sources and licences of a manifest")
    stats.add_argument("manifest", help="corpus folder or manifest.jsonl")
    stats.set_defaults(run=run_stats)
    pack = actions.add_parser(
        "pack", help="a compact Opus subset of a corpus that fits MAX_MIB (for offline GPU boxes)"
    )
    pack.add_argument("manifest", help="corpus folder or manifest.jsonl")
    pack.add_argument("out", help="output folder")
    pack.add_argument("--max-mib", type=float, default=50.0, help="size budget (default: %(default)s)")
    pack.add_argument(
        "--compression-level", type=float, default=0.8, help="libsndfile Opus level, 0..1 (default: %(default)s)"
    )
    pack.add_argument("--seed", type=int, default=0)
    pack.set_defaults(run=run_pack)
    synth = actions.add_parser("synth", help="write a small synthetic corpus (tests, smoke runs)")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--clips", type=int, default=4, help="train clips per role (default: %(default)s)")
    synth.add_argument("--valid", type=int, default=2, help="valid clips per role (default: %(default)s)")
    synth.add_argument("--seconds", type=float, default=4.0, help="clip length (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=run_synth)


def _register_build(actions: argparse._SubParsersAction) -> None:
    from pathlib import Path

    from fastuss_fx.data.build.config import BuildConfig

    defaults = BuildConfig(out=Path("."))
    build = actions.add_parser(
        "build", help="build the training corpus from the allowed sources (Debian packages, MIDI, TTS, noise)"
    )
    build.add_argument("--out", help="corpus folder (clips + manifest.jsonl); keep it outside the repository")
    build.add_argument(
        "--sources", nargs="+", default=[], metavar="NAME", help="recipes to run (default: all; --list shows them)"
    )
    build.add_argument(
        "--max-minutes-per-source",
        type=float,
        default=defaults.max_minutes_per_source,
        help="minutes per source and role (default: %(default)s)",
    )
    build.add_argument(
        "--quota",
        nargs="+",
        default=[],
        metavar="KEY=MIN",
        help=(
            "per-source/role minutes overriding --max-minutes-per-source; KEY is SOURCE:ROLE, SOURCE or ROLE "
            "(e.g. speech=600 espeak-ng=10)"
        ),
    )
    build.add_argument(
        "--train-quota",
        nargs="+",
        default=[],
        metavar="KEY=MIN",
        help=(
            "minutes of the train split alone, keyed like --quota (e.g. musicbg=120): more training clips while "
            "valid and test keep the clips of --quota, so scores on them stay comparable with earlier builds"
        ),
    )
    build.add_argument(
        "--valid-fraction",
        type=float,
        default=defaults.valid_fraction,
        help="share of groups in valid (default: %(default)s)",
    )
    build.add_argument(
        "--test-fraction",
        type=float,
        default=defaults.test_fraction,
        help="share of groups in test (default: %(default)s)",
    )
    build.add_argument(
        "--holdout",
        nargs="*",
        default=list(defaults.holdout),
        metavar="SOURCE",
        help="sources written wholly to the holdout split, never trained on (default: %(default)s)",
    )
    build.add_argument("--seed", type=int, default=defaults.seed)
    build.add_argument(
        "--pkgs",
        default=str(defaults.pkgs),
        help="folder of unpacked Debian packages, filled by apt-get download + dpkg-deb -x (default: %(default)s)",
    )
    build.add_argument(
        "--jobs",
        type=int,
        default=defaults.jobs,
        metavar="N",
        help="recipes run side by side in N processes; the corpus is the same for any N (default: %(default)s)",
    )
    build.add_argument("--no-fetch", action="store_true", help="use only packages already in --pkgs (no apt-get)")
    build.add_argument(
        "--groove", default=str(defaults.groove_dir), help="Groove MIDI Dataset folder (default: %(default)s)"
    )
    build.add_argument("--pack", metavar="DIR", help="also write a compact Opus subset of the new corpus to DIR")
    build.add_argument("--max-mib", type=float, default=50.0, help="size budget of --pack (default: %(default)s)")
    build.add_argument(
        "--list", action="store_true", help="list the sources (roles, packages, tools, licence) and exit"
    )
    build.set_defaults(run=run_build)


def run_build(args: argparse.Namespace) -> int:
    from fastuss_fx.data.build import BuildConfig, build_corpus

    if args.list:
        from fastuss_fx.data.build.recipes import RECIPES

        for recipe in RECIPES.values():
            needs = ", ".join([*recipe.packages, *(f"{t} (tool)" for t in recipe.tools)]) or "-"
            print(f"{recipe.name:<30}{'/'.join(recipe.roles):<20}{needs}  [{recipe.licence}]")
        return 0
    if not args.out:
        raise ValueError("data build needs --out CORPUS_DIR (a folder outside the repository)")
    config = BuildConfig(
        out=args.out,
        sources=tuple(args.sources),
        max_minutes_per_source=args.max_minutes_per_source,
        seed=args.seed,
        pkgs=args.pkgs,
        fetch=not args.no_fetch,
        groove_dir=args.groove,
        quotas=parse_quotas(args.quota),
        train_quotas=parse_quotas(args.train_quota, "--train-quota"),
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        holdout=tuple(args.holdout),
        jobs=args.jobs,
    )
    report = build_corpus(config)
    print(report.table())
    if report.manifest is None:
        print("no clips written")
        return 1
    print(f"wrote {report.manifest}")
    if args.pack:
        from fastuss_fx.data.pack import pack_corpus

        print(f"wrote {pack_corpus(report.manifest, args.pack, max_mib=args.max_mib, seed=args.seed, progress=True)}")
    return 0


def parse_quotas(items: list[str], flag: str = "--quota") -> dict[str, float]:
    """``["speech=600", "espeak-ng=10"]`` → ``{"speech": 600.0, "espeak-ng": 10.0}``.

    Raises:
        ValueError: an item without ``=`` or with a non-numeric value.
    """
    quotas = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            quotas[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ValueError(f"{flag} takes KEY=MINUTES (KEY: SOURCE:ROLE, SOURCE or ROLE), got {item!r}")
    return quotas


def run_stats(args: argparse.Namespace) -> int:
    from fastuss_fx.data.manifest import read_manifest
    from fastuss_fx.data.stats import corpus_stats

    print(corpus_stats(read_manifest(args.manifest)).table())
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from fastuss_fx.data.pack import pack_corpus

    path = pack_corpus(
        args.manifest,
        args.out,
        max_mib=args.max_mib,
        compression_level=args.compression_level,
        seed=args.seed,
        progress=True,
    )
    print(f"wrote {path}")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from fastuss_fx.data.synthetic import write_synthetic_corpus

    path = write_synthetic_corpus(
        args.out, clips_per_role=args.clips, valid_per_role=args.valid, seconds=args.seconds, seed=args.seed
    )
    print(f"wrote {path}")
    return 0
