"""``fastuss models import``: an official TUSS checkpoint folder or file -> an installed model.

SRC is laid out like the official ``pretrained_models/NAME/`` (``hparams.yaml`` beside a
``checkpoints/`` folder whose ``*.pth`` or ``*.ckpt`` files are averaged, ``last.ckpt`` left
out, as the reference does), or is one ``.pth``/``.ckpt`` file whose ``hparams.yaml`` sits two
folders up. Nothing is downloaded; the weights stay under their owner's licence
(AGPL-3.0-or-later for the official files) and are never shipped with this package.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from fastuss_fx.config import config_to_dict, list_variants
from fastuss_fx.installed import (
    INFO_FILE,
    NOTICE_FILE,
    VARIANT_FILE,
    WEIGHTS_FILE,
    check_name,
    installed_folder,
    models_folder,
)
from fastuss_fx.model.reference import UnsupportedCheckpoint, config_from_hparams, convert_state_dict
from fastuss_fx.model.tuss import TUSS
from fastuss_fx.pretrained import file_sha256
from fastuss_fx.weights import save_weights

logger = logging.getLogger(__name__)

OFFICIAL_FILES: dict[str, dict[str, Any]] = {
    "112174a8c894b008cfd676052e8a3d60c876bc2ba063c77a3a4700a257655eec": {
        "name": "tuss.medium.2-4src",
        "size": 44_864_630,
    },
    "1ed66c06944ef197c9f0ff585c1643ffec25a9925641c02ad6c108a88dfe5acd": {
        "name": "tuss.large.2-4src",
        "size": 153_210_470,
    },
}
"""SHA-256 -> the official checkpoint it is (``merlresearch/unified-source-separation`` release 1.0.0,
``pretrained_models/<name>/checkpoints/model.pth``, Git LFS objects)."""

SOURCE_REPOSITORY = "https://github.com/merlresearch/unified-source-separation"
OFFICIAL_LICENSE = "AGPL-3.0-or-later"
_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
_NOTICE = """\
{name}: TUSS weights imported with `fastuss models import` from {source}.

{licence_line}
These files were converted on this machine and are not part of the fastuss-fx package
(which is MIT-licensed); if you redistribute them, the licence of the original weights applies.
Original files (SHA-256):
{files}
"""


@dataclass(frozen=True)
class Source:
    """The files an import reads: the hparams file and the checkpoints to average."""

    hparams: Path
    checkpoints: tuple[Path, ...]


def find_source(src: str | Path) -> Source:
    """Resolve SRC (a model folder or one checkpoint file) as the reference's ``separate.py`` does."""
    src = Path(src).expanduser()
    if src.is_file():
        if src.suffix not in (".pth", ".ckpt"):
            raise ValueError(f"{src}: a checkpoint file must end in .pth or .ckpt")
        hparams = src.parent.parent / "hparams.yaml"
        if not hparams.is_file():
            raise FileNotFoundError(f"{src}: no hparams.yaml two folders up (looked for {hparams})")
        return Source(hparams, (src,))
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such file or folder")
    folder, hparams = src / "checkpoints", src / "hparams.yaml"
    if not folder.is_dir() or not hparams.is_file():
        raise FileNotFoundError(f"{src}: an official model folder holds hparams.yaml and checkpoints/")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".pth", ".ckpt") and p.name != "last.ckpt")
    if not files:
        raise FileNotFoundError(f"{folder}: no .pth or .ckpt file (last.ckpt is never used)")
    if len({p.suffix for p in files}) > 1:
        raise ValueError(f"{folder}: holds both .pth and .ckpt files; the reference averages files of one kind")
    return Source(hparams, tuple(files))


def read_hparams(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of hparams, got {type(data).__name__}")
    return data


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state dict of one official ``.pth`` (the dict itself) or ``.ckpt`` (its ``state_dict``).

    Loaded with ``weights_only=True``: no code in the file runs (``.ckpt`` files may carry an
    ``argparse.Namespace`` of hyper-parameters, which is allowed).
    """
    with open(path, "rb") as f:
        if f.read(len(_LFS_POINTER)) == _LFS_POINTER:
            raise ValueError(
                f"{path}: this is a Git LFS pointer, not the weights; fetch them with `git lfs pull` "
                "in your clone of the repository (see the README, 'Use the official TUSS weights')"
            )
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for unreadable or unsafe files
        raise ValueError(f"{path}: not a loadable checkpoint ({type(err).__name__}: {err})") from None
    if path.suffix == ".ckpt":
        if not isinstance(data, dict) or "state_dict" not in data:
            raise ValueError(f"{path}: a .ckpt file must hold a Lightning checkpoint with a 'state_dict'")
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return dict(data)


def average_states(states: list[dict[str, Tensor]], names: list[Path]) -> dict[str, Tensor]:
    """Key-wise mean of several state dicts in float32 (the reference's checkpoint averaging)."""
    keys = set(states[0])
    for state, path in zip(states[1:], names[1:], strict=True):
        if set(state) != keys:
            raise ValueError(f"{path}: holds other tensors than {names[0]}; cannot average them")
    averaged = {}
    for key in states[0]:
        total = states[0][key].float().clone()
        for state in states[1:]:
            total += state[key].float()
        averaged[key] = total / len(states)
    return averaged


def default_name(source: Source, hashes: list[str]) -> str:
    """The official name for a recognised file, else the model folder's name (lower-cased)."""
    if len(hashes) == 1 and hashes[0] in OFFICIAL_FILES:
        return OFFICIAL_FILES[hashes[0]]["name"]
    return source.hparams.parent.name.lower()


def import_model(src: str | Path, name: str | None = None, force: bool = False) -> Path:
    """Convert and install SRC; returns the installed model's folder.

    Raises:
        UnsupportedCheckpoint: a field or tensor our model cannot run exactly (named).
        ValueError / FileNotFoundError: unreadable input, a bad name, or an existing model without ``force``.
    """
    source = find_source(src)
    hashes = [file_sha256(p) for p in source.checkpoints]
    for path, digest in zip(source.checkpoints, hashes, strict=True):
        known = OFFICIAL_FILES.get(digest)
        if known:
            logger.info("%s is the official %s checkpoint (release 1.0.0)", path, known["name"])
    name = check_name(name or default_name(source, hashes))
    if name in list_variants():
        raise ValueError(f"{name!r} is the name of a shipped variant; choose another with --name")
    target = models_folder() / name
    if installed_folder(name) is not None and not force:
        raise ValueError(f"a model named {name!r} is already installed ({target}); pass --force to replace it")
    config = config_from_hparams(read_hparams(source.hparams), name, where=str(source.hparams))
    state = average_states([read_checkpoint(p) for p in source.checkpoints], list(source.checkpoints))
    model = TUSS(config)
    model.load_state_dict(convert_state_dict(state, model))
    official = [OFFICIAL_FILES[h]["name"] for h in hashes if h in OFFICIAL_FILES]
    licence = OFFICIAL_LICENSE if official else "unknown"
    info = {
        "name": name,
        "kind": "tuss-reference",
        "licence": licence,
        "official": official[0] if len(official) == len(hashes) == 1 else None,
        "source": {"hparams": str(source.hparams.resolve()), "repository": SOURCE_REPOSITORY if official else None},
        "files": [{"path": str(p.resolve()), "sha256": h} for p, h in zip(source.checkpoints, hashes, strict=True)],
        "averaged": len(source.checkpoints),
    }
    _write_folder(target, model, info, force)
    return target


def _write_folder(target: Path, model: TUSS, info: dict[str, Any], force: bool) -> None:
    """Write the model folder beside its final place, then move it there (readers never see half of it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        metadata = {"licence": info["licence"], "source": json.dumps(info["files"])}
        save_weights(model, staging / WEIGHTS_FILE, metadata, dtype=torch.float32)
        (staging / VARIANT_FILE).write_text(yaml.safe_dump(config_to_dict(model.config), sort_keys=False))
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        licence_line = (
            f"Licence: {info['licence']} (the licence of the original weights, "
            f"{SOURCE_REPOSITORY}, © Mitsubishi Electric Research Laboratories)."
            if info["licence"] == OFFICIAL_LICENSE
            else "Licence: unknown: the licence of the source files applies."
        )
        files = "\n".join(f"  {f['sha256']}  {f['path']}" for f in info["files"])
        (staging / NOTICE_FILE).write_text(
            _NOTICE.format(name=info["name"], source=info["source"]["hparams"], licence_line=licence_line, files=files)
        )
        staging.chmod(0o755)
        if target.exists():
            if not force:
                raise ValueError(f"{target} exists; pass --force to replace it")
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = ["OFFICIAL_FILES", "UnsupportedCheckpoint", "find_source", "import_model", "read_checkpoint"]
