"""Models a user installed (``fastuss models import``): one folder each in the user model folder.

``$FASTUSS_HOME`` (default: the platform's user data folder, e.g. ``~/.local/share/fastuss-fx``)
holds ``models/<name>/`` with ``variant.yaml`` (the config), ``weights.safetensors`` (fp32, the
config in its metadata too), ``info.json`` (licence, source files and their SHA-256) and
``NOTICE.txt``. Lookups here are torch-free, like ``fastuss_fx.pretrained``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from fastuss_fx.atomic import atomic_path

VARIANT_FILE, WEIGHTS_FILE, INFO_FILE, NOTICE_FILE = "variant.yaml", "weights.safetensors", "info.json", "NOTICE.txt"
SETTINGS_FILE = "settings.json"
"""``<data_home>/settings.json``: the user's default model per mode (``fastuss models default``)."""
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
"""Installed model names: lower-case letters, digits, ``.``, ``_`` and ``-``, as a folder name."""


def data_home() -> Path:
    """``$FASTUSS_HOME``, else the platform's user data folder for fastuss-fx."""
    if os.environ.get("FASTUSS_HOME"):
        return Path(os.environ["FASTUSS_HOME"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "fastuss-fx"


def models_folder() -> Path:
    """Where installed models live (``<data_home>/models``)."""
    return data_home() / "models"


def check_name(name: str) -> str:
    """``name`` if it can name an installed model, else ValueError saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"model name {name!r} is not allowed: use 1-64 lower-case letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def installed_folder(name: str) -> Path | None:
    """The folder of installed model ``name``, or None if no such model is installed."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return None
    folder = models_folder() / name
    return folder if (folder / VARIANT_FILE).is_file() and (folder / WEIGHTS_FILE).is_file() else None


def installed_names() -> list[str]:
    """Names of the installed models, sorted."""
    root = models_folder()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if installed_folder(p.name) is not None)


def installed_weights(name: str) -> Path | None:
    """The weights file of installed model ``name``, or None."""
    folder = installed_folder(name)
    return None if folder is None else folder / WEIGHTS_FILE


def installed_variant(name: str) -> Path | None:
    """The variant file of installed model ``name``, or None."""
    folder = installed_folder(name)
    return None if folder is None else folder / VARIANT_FILE


def installed_info(name: str) -> dict[str, Any]:
    """``info.json`` of installed model ``name`` (licence, source, hashes), with its size on disk."""
    folder = installed_folder(name)
    if folder is None:
        raise ValueError(f"no installed model {name!r}; installed: {', '.join(installed_names()) or 'none'}")
    info = json.loads((folder / INFO_FILE).read_text()) if (folder / INFO_FILE).is_file() else {}
    info["size_bytes"] = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    info["folder"] = str(folder)
    return info


def remove_installed(name: str) -> Path:
    """Delete installed model ``name``; returns the folder it was in."""
    folder = installed_folder(name)
    if folder is None:
        raise ValueError(f"no installed model {name!r}; installed: {', '.join(installed_names()) or 'none'}")
    shutil.rmtree(folder)
    for mode in ("offline", "realtime"):
        if user_default(mode) == name:
            set_user_default(mode, None)
    return folder


def _settings_path() -> Path:
    return data_home() / SETTINGS_FILE


def user_default(mode: str) -> str | None:
    """The model the user chose to run in ``mode`` when none is named (``fastuss models default``), or None."""
    path = _settings_path()
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text()).get("default_models", {}).get(mode)
    except (ValueError, AttributeError):
        raise ValueError(f"{path}: not a settings file (JSON with 'default_models'); remove or fix it") from None
    return value if isinstance(value, str) else None


def set_user_default(mode: str, name: str | None) -> Path:
    """Make ``name`` the model ``mode`` runs when none is named (None: back to the shipped default)."""
    path = _settings_path()
    settings = json.loads(path.read_text()) if path.is_file() else {}
    defaults = settings.setdefault("default_models", {})
    if name is None:
        defaults.pop(mode, None)
    else:
        defaults[mode] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    return path
