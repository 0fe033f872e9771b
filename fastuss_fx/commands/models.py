"""``fastuss models``: list the shipped and installed models, import official TUSS checkpoints, remove one."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, import or remove models (official TUSS checkpoints run here once imported)",
        description="Models a name can refer to: the variants shipped with fastuss-fx, and models you installed "
        "with `fastuss models import` into $FASTUSS_HOME/models (default: the platform's user data folder).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="shipped and installed models with licence and size")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    listing.set_defaults(run=run_list)
    importing = actions.add_parser(
        "import",
        help="convert an official TUSS checkpoint into an installed model (nothing is downloaded)",
        description="SRC: a folder laid out like the official pretrained_models/NAME/ (hparams.yaml and "
        "checkpoints/; every *.pth or *.ckpt there is averaged, last.ckpt left out), or one .pth/.ckpt file "
        "whose hparams.yaml sits two folders up. Architecture fields that cannot be run exactly are refused by "
        "name. The official files are AGPL-3.0-or-later: they stay yours to fetch (git lfs) and are never "
        "shipped with fastuss-fx.",
    )
    importing.add_argument("src", help="official model folder, or a .pth/.ckpt file")
    importing.add_argument("--name", help="name to install under (default: the official name, else the folder's)")
    importing.add_argument("--force", action="store_true", help="replace an installed model of the same name")
    importing.set_defaults(run=run_import)
    default = actions.add_parser(
        "default",
        help="choose the model a mode runs when none is named (e.g. an installed official TUSS for offline)",
    )
    default.add_argument("name", nargs="?", help="model name (shipped or installed); omit with --clear")
    default.add_argument("--mode", choices=("offline", "realtime"), default="offline", help="default: %(default)s")
    default.add_argument("--clear", action="store_true", help="back to the shipped default")
    default.set_defaults(run=run_default)
    removing = actions.add_parser("remove", help="delete an installed model")
    removing.add_argument("name", help="installed model name (see `fastuss models list`)")
    removing.set_defaults(run=run_remove)


def model_rows() -> list[dict]:
    """One row per model a name can refer to: shipped variants with weights, then installed models."""
    from fastuss_fx.config import load_variant
    from fastuss_fx.installed import installed_info, installed_names
    from fastuss_fx.pretrained import shipped_weights_path, trained_variants

    rows = []
    for name in trained_variants():
        path = shipped_weights_path(name)
        rows.append(
            {
                "name": name,
                "source": "shipped",
                "licence": "MIT",
                "size_bytes": path.stat().st_size if path else 0,
                "causal": load_variant(name).causal,
                "description": load_variant(name).description,
            }
        )
    for name in installed_names():
        info = installed_info(name)
        rows.append(
            {
                "name": name,
                "source": "installed",
                "licence": info.get("licence", "unknown"),
                "size_bytes": info["size_bytes"],
                "causal": load_variant(name).causal,
                "description": f"official {info['official']}" if info.get("official") else info.get("kind", ""),
                "folder": info["folder"],
            }
        )
    return rows


def run_list(args: argparse.Namespace) -> int:
    from fastuss_fx.installed import models_folder

    rows = model_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<22} {'source':<10} {'licence':<18} {'size':>9}  description")
    for row in rows:
        size = f"{row['size_bytes'] / 1e6:.1f} MB"
        print(f"{row['name']:<22} {row['source']:<10} {row['licence']:<18} {size:>9}  {row['description']}")
    print(f"\ninstalled models live in {models_folder()} ($FASTUSS_HOME)")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from fastuss_fx.installed import installed_info
    from fastuss_fx.official import OFFICIAL_FILES, import_model

    folder = import_model(args.src, name=args.name, force=args.force)
    info = installed_info(folder.name)
    for entry in info["files"]:
        known = OFFICIAL_FILES.get(entry["sha256"])
        note = f"the official {known['name']} checkpoint" if known else "not an official file we know"
        print(f"read {entry['path']} (sha256 {entry['sha256'][:16]}..., {note})")
    print(f"installed {folder.name!r} in {folder} (licence: {info['licence']}, {info['size_bytes'] / 1e6:.1f} MB)")
    print(f"run it: fastuss separate in.wav -o out.wav --preset dialog_only --model {folder.name}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from fastuss_fx.config import list_variants
    from fastuss_fx.installed import remove_installed

    if args.name in list_variants():
        raise ValueError(f"{args.name!r} is a shipped variant; only installed models can be removed")
    folder = remove_installed(args.name)
    print(f"removed {args.name!r} ({folder})")
    return 0


def run_default(args: argparse.Namespace) -> int:
    from fastuss_fx.config import load_variant
    from fastuss_fx.installed import set_user_default
    from fastuss_fx.pretrained import default_model, weights_path

    if args.clear == (args.name is not None):
        raise ValueError("give a model name, or --clear (not both)")
    if args.name is not None:
        if weights_path(args.name) is None:
            raise ValueError(f"{args.name!r} has no trained weights here (see `fastuss models list`)")
        if args.mode == "realtime" and not load_variant(args.name).causal:
            raise ValueError(f"mode 'realtime' needs a causal model; {args.name!r} is not causal")
    path = set_user_default(args.mode, args.name)
    print(f"{args.mode} runs {default_model(args.mode)!r} when no model is named (saved in {path})")
    return 0
