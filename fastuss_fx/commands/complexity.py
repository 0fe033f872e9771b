"""``fastuss complexity``: parameters, GMAC/s and latency of each model variant."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("complexity", help="parameters, GMAC/s and latency per model variant")
    parser.add_argument("variants", nargs="*", help="variant names or YAML files (default: all shipped)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--no-breakdown", action="store_true", help="omit the per-module breakdown")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.complexity import all_variants, complexity, format_table
    from fastuss_fx.config import load_variant

    rows = [complexity(load_variant(v)) for v in args.variants] if args.variants else all_variants()
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(format_table(rows, breakdown=not args.no_breakdown))
    return 0
