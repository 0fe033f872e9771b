"""``fastuss train``: train or continue training a model on a manifest corpus (CPU, CUDA, torchrun DDP).

Every ``TrainConfig`` field is a flag (``--batch-size``, ``--mix-chunk-seconds``, ...) whose
default is the dataclass default; ``--config FILE.yaml`` sets many at once, flags win.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import json
import signal
import textwrap
import types
import typing
from typing import Any, cast

from fastuss_fx.data.mixer import MixConfig


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the fields of dataclass ``cls``, by field name, on one line each."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source at hand (frozen app): flags keep their bare defaults
        return {}
    body = cast(ast.ClassDef, tree.body[0]).body
    docs = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.replace("``", "").split())
    return docs


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: tuple[str, ...] = ()
) -> None:
    """One flag per field of dataclass ``cls``, its help the field's docstring; unset flags stay out
    of the namespace (``SUPPRESS``)."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip or dataclasses.is_dataclass(hints[field.name]):
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif callable(field.default_factory):
            default = field.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{field.name} has no default, so it cannot be an optional flag")
        kind = hints[field.name]
        dest = prefix.replace("-", "_") + field.name
        shown = "none" if default in (None, "") else default
        text = f"{docs[field.name]} (default: {shown})" if field.name in docs else f"default: {shown}"
        options: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": text.replace("%", "%%")}
        if kind is bool:
            parser.add_argument(_flag(prefix, field.name), action=argparse.BooleanOptionalAction, **options)
            continue
        args = typing.get_args(kind)
        if typing.get_origin(kind) is tuple:
            options.update(nargs="+" if args[-1] is Ellipsis else len(args), type=args[0])
        elif typing.get_origin(kind) in (typing.Union, types.UnionType):
            options["type"] = next(a for a in args if a is not type(None))
        else:
            options["type"] = kind
        parser.add_argument(_flag(prefix, field.name), **options)


def register(subparsers: argparse._SubParsersAction) -> None:
    from fastuss_fx.train.config import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help="train a model on a corpus (resumes from RUN/last.pt)",
        description="Train with dynamic mixing. --time-budget MIN ends the run (final evaluation, last.pt, "
        "averaged and EMA weights) before MIN minutes; SIGTERM/SIGINT save last.pt and exit 143/130. "
        "--teacher MODEL (a shipped or installed model, e.g. an imported official TUSS) adds "
        "--distill-weight x a loss against its outputs on the same mixtures. "
        "Multi-GPU: torchrun --nproc_per_node=N -m fastuss_fx.cli train ...",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML file of training options (flags override it)")
    add_dataclass_arguments(parser, TrainConfig)
    add_dataclass_arguments(parser, MixConfig, prefix="mix-")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` that the flags (and ``--config``) describe."""
    from fastuss_fx.train.config import TrainConfig, load_train_config, train_config_from_dict

    fields = {f.name for f in dataclasses.fields(TrainConfig)} | {
        f"mix_{f.name}" for f in dataclasses.fields(MixConfig)
    }
    given = {k: v for k, v in vars(args).items() if k in fields}  # not the CLI's own options (-v, --debug, ...)
    mix = {k.removeprefix("mix_"): given.pop(k) for k in list(given) if k.startswith("mix_")}
    if args.config:
        return load_train_config(args.config, **given, mix=mix)
    return train_config_from_dict({**given, "mix": mix}, "command line")


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when the run ended (steps or time budget), 128 + N when signal N stopped it (``last.pt`` saved)."""
    from fastuss_fx.train.loop import train

    summary = train(config_from_args(args))
    print(json.dumps(summary, indent=2))
    stopped = summary.get("stopped")
    if isinstance(stopped, str) and stopped in signal.Signals.__members__:
        return 128 + signal.Signals[stopped].value
    return 0
