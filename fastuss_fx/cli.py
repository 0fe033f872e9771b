"""The ``fastuss`` command line: a thin layer over the public API.

Each sub-command lives in ``fastuss_fx/commands/<name>.py`` with ``register(subparsers)``;
this module only wires them, sets up logging, shows Python warnings as one plain line each
(no source line; none with ``-q``) and turns expected errors into one-line messages with a
non-zero exit code; ``--debug`` (or ``FASTUSS_DEBUG=1``) prints their traceback first. A module
of an optional extra that is not installed (torch without ``[torch]``) is named with the
``pip install`` that adds it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

COMMAND_MODULES = (
    "separate",
    "stems",
    "presets",
    "complexity",
    "models",
    "export",
    "bench",
    "train",
    "eval",
    "data",
    "render",
    "demo",
    "serve",
)
"""Sub-command modules under ``fastuss_fx.commands``, in the order ``--help`` lists them."""

EXTRAS = {"torch": "torch", "onnx": "torch", "soundfile": "train", "mido": "train", "ray": "render"}
"""Top-level modules that only an optional extra installs, and that extra (``pyproject.toml``)."""


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastuss", description="Prompt-driven sound separation (FasTUSS).")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only (no per-file lines, no warnings)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (also: FASTUSS_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"fastuss_fx.commands.{name}").register(subparsers)
    for sub in subparsers.choices.values():  # -q also after the command; SUPPRESS keeps a -q given before it
        if "-q" not in sub._option_string_actions:
            sub.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")
        if "--debug" not in sub._option_string_actions:
            sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failed work, 2 usage or input error)."""
    args = get_parser().parse_args(argv)
    level = (
        logging.ERROR
        if args.quiet
        else (logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING)
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    with warnings.catch_warnings():  # restores the warning hooks and filters when the command ends
        warnings.showwarning = _show_warning
        if args.quiet:
            warnings.simplefilter("ignore")
        return _run(args)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: Any = None,
) -> None:
    """A warning as one plain line on stderr: ``fastuss: warning: <message>`` (no source code)."""
    text = " ".join(str(message).split())
    print(f"fastuss: warning: {text}", file=file or sys.stderr)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args) or 0)
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
        FileExistsError,
        ImportError,
    ) as err:
        if args.debug or os.environ.get("FASTUSS_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        print(f"fastuss {args.command}: error: {_describe(err)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _describe(err: Exception) -> str:
    """The one-line message of an error; a missing module of an extra says how to install it."""
    missing = err.name if isinstance(err, ModuleNotFoundError) else None
    if missing in EXTRAS:
        return f"this needs {missing}, which is not installed here: pip install 'fastuss-fx[{EXTRAS[missing]}]'"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())
