"""Imports point downwards: the runtime never reaches torch, the model never reaches what loads it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fastuss_fx

PACKAGE = Path(fastuss_fx.__file__).parent

RULES = {
    "runtime": (
        {"runtime", "prompts", "audio", "cpus", "config", "pretrained", "atomic", "metrics"},
        "numpy + onnxruntime",
    ),
    "model": ({"model", "config", "prompts"}, "torch nn modules"),
    "export_cache.py": ({"config", "pretrained"}, "cache keys without torch"),
    "weights.py": ({"atomic", "config", "model", "pretrained"}, "weights files"),
}
"""Per package or module: the fastuss_fx modules it may import (also lazily, inside functions)."""

TORCH_FREE = ("runtime", "export_cache.py", "engines.py")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, wherever in the file, as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _files(entry: str) -> list[Path]:
    path = PACKAGE / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("entry", sorted(RULES))
def test_imports_point_downwards(entry):
    allowed, what = RULES[entry]
    for file in _files(entry):
        for name in _imports(file):
            if name.startswith("fastuss_fx."):
                top = name.split(".")[1]
                assert top in allowed, f"{file.relative_to(PACKAGE)} ({what}) imports {name}"


@pytest.mark.parametrize("entry", TORCH_FREE)
def test_torch_free_modules_never_import_torch(entry):
    for file in _files(entry):
        torchy = {n for n in _imports(file) if n.split(".")[0] in ("torch", "safetensors")}
        assert not torchy, f"{file.relative_to(PACKAGE)} imports {sorted(torchy)}"


def test_importing_the_runtime_does_not_import_torch():
    modules = [f"fastuss_fx.runtime.{p.stem}" for p in (PACKAGE / "runtime").glob("*.py") if p.stem != "__init__"]
    modules += ["fastuss_fx.export_cache", "fastuss_fx.engines", "fastuss_fx.processor", "fastuss_fx.chain"]
    imports = "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code = f"import importlib, sys\n{imports}print('torch' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
