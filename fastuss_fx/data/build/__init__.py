"""``fastuss data build``: recipes that build the training corpus from the allowed sources.

``build_corpus(BuildConfig(out=...))`` runs the recipes in ``recipes.RECIPES`` (Debian data
packages, MIDI renders, text-to-speech, generated noise) and writes 48 kHz mono FLAC clips and
the ``manifest.jsonl`` that ``fastuss train --data`` reads. Corpora are built, never committed.
"""

from fastuss_fx.data.build.builder import BuildReport, build_corpus
from fastuss_fx.data.build.config import BuildConfig

__all__ = ["BuildConfig", "BuildReport", "build_corpus"]
