"""``build_corpus``: run the selected recipes, skip the unavailable ones, write the manifest."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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
    the report); a recipe that fails midway keeps the clips it already wrote.
    """
    from fastuss_fx.data.build.recipes import RECIPES, BuildContext, SourceUnavailable

    names = select(config.sources)
    writer, store, skipped = CorpusWriter(config), PackageStore(config.pkgs, fetch=config.fetch), {}
    with tempfile.TemporaryDirectory(prefix="fastuss-build-") as tmp:
        ctx = BuildContext(config, writer, store, Path(tmp))
        for name in names:
            reason = missing_requirements(name, store)
            if reason is None:
                logger.info("source %s: %s", name, ", ".join(RECIPES[name].roles))
                try:
                    RECIPES[name].run(ctx)
                except (SourceUnavailable, ImportError, RuntimeError, OSError) as err:
                    kept = any(source == name for source, _ in writer.seconds)
                    reason = f"stopped early, its clips so far are kept: {err}" if kept else str(err)
            if reason:
                skipped[name] = reason
                logger.warning("skip source %s: %s", name, reason)
    manifest = writer.finish() if writer.rows else None
    return BuildReport(manifest, writer.summary(), skipped, len(writer.rows))
