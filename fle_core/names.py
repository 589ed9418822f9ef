"""One rule for the short names of tasks and models: every chart, table, filter and picker.

* **Task**: the registry key without its ``_throughput`` suffix, which every lab-play
  task has (``iron_ore_throughput`` → ``iron_ore``; ``open_play`` stays).
* **Model**: up to ``LABEL_CHARS`` characters as it is; a longer name keeps its head
  and its tail around "…" (fine-tuned variants and dated releases differ at the end).
  A (model, config) system's label keeps its ``[params]`` whole.

Both are pure functions of one name, so a name reads the same on every page whatever
else is shown. Where two names of one view would get the same short form, those keep
their full text (``short_names``, ``task_labels``). The full name is always in
tooltips, in the URL, and in every export (CSV, Markdown, the report's tables).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Longest model label drawn (characters); longer names are shortened.
LABEL_CHARS = 32
TASK_SUFFIX = "_throughput"


def short_model(name: str, limit: int = LABEL_CHARS) -> str:
    """One name in at most ``limit`` characters: head + "…" + tail. A system label
    ``model [params]`` (``analysis.label_systems``) shortens its model and keeps its
    params whole: they are what tells the systems apart."""
    base, sep, params = name.partition(" [")
    if sep and params.endswith("]"):
        return f"{short_model(base, limit)} [{params}"
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 2
    return f"{name[: limit - 1 - tail]}…{name[-tail:]}"


def short_task(key: str) -> str:
    """``iron_ore_throughput`` → ``iron_ore``; other keys as they are."""
    return key.removesuffix(TASK_SUFFIX) or key


def short_names(names: Iterable[str], limit: int = LABEL_CHARS) -> dict[str, str]:
    """Name → ``short_model``; names whose short forms would collide keep their full text
    (rare: they agree on both their first and last ~15 characters)."""
    names = list(dict.fromkeys(str(n) for n in names))
    out = {n: short_model(n, limit) for n in names}
    seen: dict[str, int] = {}
    for label in out.values():
        seen[label] = seen.get(label, 0) + 1
    return {n: (label if seen[label] == 1 else n) for n, label in out.items()}


def task_labels(tasks: Iterable[str], limit: int = LABEL_CHARS) -> dict[str, str]:
    """Task key → its short name (``short_task``, then shortened like a model name if still
    long); if two keys of the set would read the same, every key keeps its full text."""
    keys = list(dict.fromkeys(str(t) for t in tasks))
    trimmed = {k: short_task(k) for k in keys}
    if len(set(trimmed.values())) < len(keys):
        trimmed = {k: k for k in keys}
    short = short_names(list(trimmed.values()), limit)
    return {k: short[v] for k, v in trimmed.items()}
