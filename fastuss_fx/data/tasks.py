"""Evaluation tasks: fixed prompt lists that mirror the shipped presets.

Each task names the prompts the model is asked for and its main targets (the sources whose
score decides whether a preset works, e.g. speech for dialogue presets).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """A separation task: ``prompts`` asked for, ``main`` the prompt kinds that are scored as the headline."""

    name: str
    prompts: tuple[str, ...]
    main: tuple[str, ...]
    description: str = ""


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "dialog",
            ("speech", "musicbg", "sfx"),
            ("speech",),
            "speech against music + effects (dialog_only, remove_dialog)",
        ),
        Task(
            "cinematic",
            ("speech", "sfx", "musicbg"),
            ("speech", "sfx", "musicbg"),
            "cinematic_stems: dialogue, effects, music",
        ),
        Task(
            "music_stems",
            ("vocals", "drums", "bass", "other"),
            ("vocals", "drums", "bass", "other"),
            "music_stems / karaoke / drums_only / bass_only",
        ),
        Task(
            "denoise", ("speech", "sfxbg"), ("speech",), "speech against ambience and noise (denoise, dialog_enhance)"
        ),
        Task("two_talkers", ("speech", "speech"), ("speech",), "two overlapping talkers"),
    )
}
"""The validation tasks, by name."""


def get_tasks(names: list[str] | None = None) -> list[Task]:
    """Tasks by name (all when ``names`` is None)."""
    if names is None:
        return list(TASKS.values())
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    return [TASKS[n] for n in names]
