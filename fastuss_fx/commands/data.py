"""``fastuss data``: corpus tools (``build`` the corpus from its recipes, ``stats`` of a manifest, ``pack`` a compact subset, ``synth`` a test corpus)."""

from __future__ import annotations

import argparse
from collections import defaultdict


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="corpus tools: build, stats, pack, synth")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _register_build(actions)
    stats = actions.add_parser("stats", help="minutes per role and split, sources and licences of a manifest")
    stats.add_argument("manifest", help="corpus folder or manifest.jsonl")
    stats.set_defaults(run=run_stats)
    pack = actions.add_parser("pack", help="a compact Opus subset of a corpus that fits MAX_MIB (for offline GPU boxes)")
    pack.add_argument("manifest", help="corpus folder or manifest.jsonl")
    pack.add_argument("out", help="output folder")
    pack.add_argument("--max-mib", type=float, default=50.0, help="size budget (default: %(default)s)")
    pack.add_argument("--compression-level", type=float, default=0.8, help="libsndfile Opus level, 0..1 (default: %(default)s)")
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
    from fastuss_fx.data.build.config import BuildConfig

    defaults = BuildConfig(out=".")
    build = actions.add_parser("build", help="build the training corpus from the allowed sources (Debian packages, MIDI, TTS, noise)")
    build.add_argument("--out", help="corpus folder (clips + manifest.jsonl); keep it outside the repository")
    build.add_argument("--sources", nargs="+", default=[], metavar="NAME", help="recipes to run (default: all; --list shows them)")
    build.add_argument("--max-minutes-per-source", type=float, default=defaults.max_minutes_per_source,
                       help="minutes per source and role (default: %(default)s)")
    build.add_argument("--seed", type=int, default=defaults.seed)
    build.add_argument("--pkgs", default=str(defaults.pkgs), help="folder of unpacked Debian packages, filled by apt-get download + dpkg-deb -x (default: %(default)s)")
    build.add_argument("--no-fetch", action="store_true", help="use only packages already in --pkgs (no apt-get)")
    build.add_argument("--groove", default=str(defaults.groove_dir), help="Groove MIDI Dataset folder (default: %(default)s)")
    build.add_argument("--pack", metavar="DIR", help="also write a compact Opus subset of the new corpus to DIR")
    build.add_argument("--max-mib", type=float, default=50.0, help="size budget of --pack (default: %(default)s)")
    build.add_argument("--list", action="store_true", help="list the sources (roles, packages, tools, licence) and exit")
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
    config = BuildConfig(out=args.out, sources=tuple(args.sources), max_minutes_per_source=args.max_minutes_per_source, seed=args.seed,
                         pkgs=args.pkgs, fetch=not args.no_fetch, groove_dir=args.groove)
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


def run_stats(args: argparse.Namespace) -> int:
    from fastuss_fx.data.manifest import read_manifest

    rows = read_manifest(args.manifest)
    minutes: dict[tuple[str, str], float] = defaultdict(float)
    licences: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        minutes[row.role, row.split] += row.duration_s / 60
        licences[row.role].add(f"{row.source or '?'} ({row.licence})")
    print(f"{'role':<10}{'train min':>10}{'valid min':>10}  sources (licence)")
    for role in sorted({r.role for r in rows}):
        print(f"{role:<10}{minutes[role, 'train']:10.1f}{minutes[role, 'valid']:10.1f}  {', '.join(sorted(licences[role]))}")
    print(f"{'total':<10}{sum(v for (_, s), v in minutes.items() if s == 'train'):10.1f}{sum(v for (_, s), v in minutes.items() if s == 'valid'):10.1f}  {len(rows)} clips")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from fastuss_fx.data.pack import pack_corpus

    path = pack_corpus(args.manifest, args.out, max_mib=args.max_mib, compression_level=args.compression_level, seed=args.seed, progress=True)
    print(f"wrote {path}")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from fastuss_fx.data.synthetic import write_synthetic_corpus

    path = write_synthetic_corpus(args.out, clips_per_role=args.clips, valid_per_role=args.valid, seconds=args.seconds, seed=args.seed)
    print(f"wrote {path}")
    return 0
