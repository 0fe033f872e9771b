"""The prompt vocabulary: which kinds of source the model can be asked for.

Prompts are plain strings. A prompt list may repeat a kind (``["speech", "speech"]`` asks
for two talkers); the n-th occurrence of a kind gets occurrence index n, which the model
uses to tell repeated prompts apart.
"""

from __future__ import annotations

from collections.abc import Sequence

PROMPTS: tuple[str, ...] = ("speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other", "musicbg")
"""The eight prompt kinds, in the order of the model's prompt table."""

MUSIC_STEMS: frozenset[str] = frozenset({"drums", "bass", "vocals", "other"})
"""Kinds that are parts of a music mix; ``musicbg`` (the whole mix) never co-occurs with them."""

MAX_PROMPTS = 8
"""Most prompts one call may carry (the model is trained with up to 4)."""


def validate_prompts(prompts: Sequence[str]) -> list[str]:
    """Check a prompt list and return it as a list.

    Raises:
        TypeError: ``prompts`` is a bare string or holds non-strings.
        ValueError: empty list, too many prompts, or an unknown prompt kind.
    """
    if isinstance(prompts, str):
        raise TypeError(f"prompts must be a list of strings, got the string {prompts!r}; did you mean [{prompts!r}]?")
    prompts = list(prompts)
    if not prompts:
        raise ValueError(f"prompts must name at least one source; choose from {', '.join(PROMPTS)}")
    if len(prompts) > MAX_PROMPTS:
        raise ValueError(f"at most {MAX_PROMPTS} prompts per call, got {len(prompts)}: {prompts}")
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise TypeError(f"each prompt must be a string, got {prompt!r} ({type(prompt).__name__})")
        if prompt not in PROMPTS:
            raise ValueError(f"unknown prompt {prompt!r}; choose from {', '.join(PROMPTS)}")
    return prompts


def prompt_ids(prompts: Sequence[str]) -> tuple[list[int], list[int]]:
    """Map prompts to (kind index, occurrence index) lists, e.g. speech, sfx, speech -> [0,1,0], [0,0,1]."""
    prompts = validate_prompts(prompts)
    seen: dict[str, int] = {}
    kinds, occurrences = [], []
    for prompt in prompts:
        kinds.append(PROMPTS.index(prompt))
        occurrences.append(seen.get(prompt, 0))
        seen[prompt] = occurrences[-1] + 1
    return kinds, occurrences


def source_names(prompts: Sequence[str]) -> list[str]:
    """Output names for a prompt list: repeated kinds are numbered (``speech_1``, ``speech_2``)."""
    prompts = validate_prompts(prompts)
    counts = {p: prompts.count(p) for p in prompts}
    seen: dict[str, int] = {}
    names = []
    for prompt in prompts:
        seen[prompt] = seen.get(prompt, 0) + 1
        names.append(f"{prompt}_{seen[prompt]}" if counts[prompt] > 1 else prompt)
    return names


def allowed_together(prompts: Sequence[str]) -> bool:
    """Whether a prompt set obeys the co-occurrence rule (``musicbg`` excludes the music stems)."""
    kinds = set(validate_prompts(prompts))
    return not ("musicbg" in kinds and kinds & MUSIC_STEMS)
