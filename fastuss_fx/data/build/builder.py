"""``build_corpus``: run the selected recipes, skip the unavailable ones, write the manifest."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Any

from fastuss_fx.data.build.config import BuildConfig
from fastuss_fx.data.build.packages import PackageStore
from fastuss_fx.data.build.writer import CorpusWriter

logger = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build wrote: the manifest, minutes per role and source, and the skipped sources with reasons."""

    manifest: Path | None
    minutes: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    clips: int = 0

    def table(self) -> str:
        """Minutes per role (and per source within it) as aligned text lines."""
        lines = [f"{'role':<8} {'min':>6}  sources (min)"]
        for role, sources in sorted(self.minutes.items()):
            parts = ", ".join(f"{s} {m:.1f}" for s, m in sorted(sources.items(), key=lambda kv: -kv[1]))
            lines.append(f"{role:<8} {sum(sources.values()):6.1f}  {parts}")
        lines.append(f"{'total':<8} {sum(sum(s.values()) for s in self.minutes.values()):6.1f}  {self.clips} clips")
        lines += [f"skipped {name}: {reason}" for name, reason in sorted(self.skipped.items())]
        return "\n".join(lines)


def select(names: tuple[str, ...]) -> list[str]:
    """Recipe names to run, in table order; all when ``names`` is empty.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    from fastuss_fx.data.build.recipes import RECIPES

    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(map(repr, unknown))}; choose from {', '.join(RECIPES)}")
    return [n for n in RECIPES if not names or n in names]


def missing_requirements(name: str, store: PackageStore) -> str | None:
    """Why recipe ``name`` cannot run (a tool not on PATH, a package unavailable), or ``None``."""
    from fastuss_fx.data.build.recipes import RECIPES

    recipe = RECIPES[name]
    tools = [t for t in recipe.tools if shutil.which(t) is None]
    if tools:
        return f"needs {', '.join(tools)} on PATH (apt-get install {' '.join(tools)})"
    packages = [p for p in recipe.packages if store.ensure(p) is None]
    if packages:
        return "; ".join(f"package {p} unavailable ({store.failed.get(p, 'not found')})" for p in packages)
    return None


def build_corpus(config: BuildConfig) -> BuildReport:
    """Run the recipes of ``config.sources`` into ``config.out`` and write ``manifest.jsonl``.

    A source whose package or tool is unavailable is skipped with a logged reason (also in
    the report); a recipe that fails midway keeps the clips it already wrote. With
    ``config.jobs > 1`` the recipes run in that many processes; the corpus is the same.
    """
    store, skipped = PackageStore(config.pkgs, fetch=config.fetch), {}
    runnable = []
    for name in select(config.sources):  # fetches the packages one at a time, before any recipe runs
        reason = missing_requirements(name, store)
        if reason is None:
            runnable.append(name)
        else:
            skipped[name] = reason
            logger.warning("skip source %s: %s", name, reason)
    writer = CorpusWriter(config)
    for name, (part, reason) in zip(runnable, _run_recipes(config, runnable), strict=True):
        writer.absorb(part)
        if reason:
            skipped[name] = reason
            logger.warning("skip source %s: %s", name, reason)
    manifest = writer.finish() if writer.rows else None
    return BuildReport(manifest, writer.summary(), dict(sorted(skipped.items())), len(writer.rows))


def _run_recipes(config: BuildConfig, names: list[str]) -> Iterator[tuple[CorpusWriter, str | None]]:
    """``run_recipe`` for each name, in order; in ``config.jobs`` processes when there is more than one."""
    if config.jobs == 1 or len(names) < 2:
        yield from (run_recipe(config, name) for name in names)
        return
    context = multiprocessing.get_context("spawn")  # no state inherited from the caller but the logging queue
    queue = context.Queue()
    listener = QueueListener(queue, *logging.getLogger().handlers, respect_handler_level=True)
    listener.start()
    try:
        with ProcessPoolExecutor(
            min(config.jobs, len(names)),
            mp_context=context,
            initializer=_log_to_queue,
            initargs=(queue, logging.getLogger().getEffectiveLevel()),
        ) as pool:
            yield from pool.map(run_recipe, [config] * len(names), names)
    finally:
        listener.stop()


def _log_to_queue(queue: Any, level: int) -> None:
    """In a build process: send log records to the parent's handlers."""
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(queue)]
    root.setLevel(level)


def run_recipe(config: BuildConfig, name: str) -> tuple[CorpusWriter, str | None]:
    """Run recipe ``name`` with a writer of its own; returns the writer and why it stopped early (or ``None``)."""
    from fastuss_fx.data.build.recipes import RECIPES, BuildContext, SourceUnavailable

    writer, store = CorpusWriter(config), PackageStore(config.pkgs, fetch=config.fetch)
    logger.info("source %s: %s", name, ", ".join(RECIPES[name].roles))
    with tempfile.TemporaryDirectory(prefix="fastuss-build-") as tmp:
        try:
            RECIPES[name].run(BuildContext(config, writer, store, Path(tmp)))
        except (SourceUnavailable, ImportError, RuntimeError, OSError) as err:
            kept = any(source == name for source, _ in writer.seconds)
            return writer, f"stopped early, its clips so far are kept: {err}" if kept else str(err)
    return writer, None
