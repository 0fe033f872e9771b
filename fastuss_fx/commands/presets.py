"""``fastuss presets``: list, show and validate presets."""

from __future__ import annotations

import argparse

import yaml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("presets", help="list, show or validate presets")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="shipped presets with their descriptions")
    show = actions.add_parser("show", help="print a preset as YAML (all fields resolved)")
    show.add_argument("name", help="shipped preset name or .yaml file")
    validate = actions.add_parser("validate", help="check preset files; exit code 2 on the first invalid one")
    validate.add_argument("files", nargs="+", metavar="FILE")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.presets import list_presets, load_preset

    if args.action == "list":
        presets = [load_preset(name) for name in list_presets()]
        width = max(len(p.name) for p in presets)
        for p in presets:
            print(f"{p.name:<{width}}  {p.mode:<8}  {p.description}")
    elif args.action == "show":
        print(yaml.safe_dump(load_preset(args.name).to_dict(), sort_keys=False).rstrip())
    else:
        for path in args.files:
            preset = load_preset(path if path.endswith((".yaml", ".yml")) or "/" in path else f"./{path}")
            print(f"ok: {path} ({preset.name}: {', '.join(preset.stems)})")
    return 0
