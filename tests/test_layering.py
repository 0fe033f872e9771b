"""Imports point downwards: the runtime never reaches torch, the model never reaches what loads it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fastuss_fx

PACKAGE = Path(fastuss_fx.__file__).parent

BASE = {"atomic", "audio", "config", "cpus", "installed", "io", "metrics", "prompts"}
"""Leaf modules (stdlib, numpy, pedalboard, yaml; no torch) that any layer may import."""

INFERENCE = {"runtime", "export_cache", "engines", "presets", "processor", "chain", "outputs", "pretrained"}
"""The torch-free inference stack, below ``serve``, ``render``, ``demo`` and the CLI."""

RULES = {
    "runtime": (
        {"runtime", "prompts", "audio", "cpus", "config", "pretrained", "atomic", "metrics"},
        "numpy + onnxruntime",
    ),
    "model": ({"model", "config", "prompts"}, "torch nn modules"),
    "export_cache.py": ({"config", "pretrained"}, "cache keys without torch"),
    "weights.py": ({"atomic", "config", "model", "pretrained"}, "weights files"),
    "data": ({"data", *BASE}, "corpora, mixing, datasets: no model"),
    "train": ({"train", "data", "model", "weights", "pretrained", *BASE}, "training: no inference stack"),
    "serve": ({"serve", *INFERENCE, *BASE}, "the web app over the processor: no torch layers"),
    "render": ({"render", "weights", "model", *INFERENCE, *BASE}, "batch rendering over the processor"),
}
"""Per package or module: the fastuss_fx modules it may import (also lazily, inside functions).
``render`` reaches ``weights``/``model`` only to hash a model that has no weights file."""

TORCH_FREE = ("runtime", "export_cache.py", "engines.py", "serve")

ABOVE_ALL = ("cli.py", "commands")
"""Entry points: no module of the package imports them (``__main__`` excepted)."""


def _imports(path: Path) -> set[str]:
    """Every module a file imports, wherever in the file, as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "fastuss_fx":  # from fastuss_fx import x
            names |= {f"fastuss_fx.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import from {node.module}"
            names.add(node.module)
    return names


def _top(name: str) -> str:
    """The package or module of ``fastuss_fx`` a dotted name is in: ``fastuss_fx.train.loop`` -> ``train``."""
    return name.split(".")[1]


def _files(entry: str) -> list[Path]:
    path = PACKAGE / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("entry", sorted(RULES))
def test_imports_point_downwards(entry):
    allowed, what = RULES[entry]
    for file in _files(entry):
        for name in _imports(file):
            if name.startswith("fastuss_fx."):
                assert _top(name) in allowed, f"{file.relative_to(PACKAGE)} ({what}) imports {name}"


def test_the_rules_name_real_modules():
    """A renamed module must not leave a rule that allows nothing (or everything) by accident."""
    names = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    for entry, (allowed, _) in RULES.items():
        assert (PACKAGE / entry).exists(), entry
        assert allowed <= names, f"{entry}: no such modules {sorted(allowed - names)}"


def test_nothing_imports_the_entry_points():
    entry_points = {Path(e).stem for e in ABOVE_ALL}
    for file in sorted(PACKAGE.rglob("*.py")):
        inside = file.relative_to(PACKAGE).parts[0]
        if inside in ABOVE_ALL or file.name == "__main__.py":
            continue
        upward = {n for n in _imports(file) if n.startswith("fastuss_fx.") and _top(n) in entry_points}
        assert not upward, f"{file.relative_to(PACKAGE)} imports {sorted(upward)}"


@pytest.mark.parametrize("entry", TORCH_FREE)
def test_torch_free_modules_never_import_torch(entry):
    for file in _files(entry):
        torchy = {n for n in _imports(file) if n.split(".")[0] in ("torch", "safetensors")}
        assert not torchy, f"{file.relative_to(PACKAGE)} imports {sorted(torchy)}"


def test_importing_the_runtime_or_the_server_does_not_import_torch():
    modules = [f"fastuss_fx.runtime.{p.stem}" for p in (PACKAGE / "runtime").glob("*.py") if p.stem != "__init__"]
    modules += [f"fastuss_fx.serve.{p.stem}" for p in (PACKAGE / "serve").glob("*.py") if p.stem != "__init__"]
    modules += ["fastuss_fx.export_cache", "fastuss_fx.engines", "fastuss_fx.processor", "fastuss_fx.chain"]
    imports = "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code = f"import importlib, sys\n{imports}print('torch' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
