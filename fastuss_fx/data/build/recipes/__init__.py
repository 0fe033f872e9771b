"""The table of corpus sources: ``RECIPES[name]`` is a ``Recipe`` (roles, licence, packages, tools, run)."""

from __future__ import annotations

from fastuss_fx.data.build.recipes.common import BuildContext, Recipe, SourceUnavailable
from fastuss_fx.data.build.recipes.files import package_recipes
from fastuss_fx.data.build.recipes.games import game_recipes
from fastuss_fx.data.build.recipes.midi_stems import midi_recipes
from fastuss_fx.data.build.recipes.synth import synth_recipes

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (*game_recipes(), *package_recipes(), *midi_recipes(), *synth_recipes())
}

__all__ = ["RECIPES", "BuildContext", "Recipe", "SourceUnavailable"]
