"""Markdown for the experiment-log tables: escaping, number formats, table assembly.

Pure text helpers shared by ``compare.comparison_markdown`` and
``runs.runs_markdown`` (and usable by any other Markdown export), so every
exported label is escaped in one place. Model names, task keys and metric
labels come from users' data: ``md_text`` makes them render as the literal text
they are (no HTML, no links, no emphasis, no broken table cells).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

_BACKSLASHED = re.compile(r"([\\`*\[\]|~])")
# "_" only emphasizes at a word boundary (CommonMark); intraword keys stay readable
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LEADING = re.compile(r"^([#>+\-=!])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # only an "&" that would start an entity


def md_text(value: object) -> str:
    """``value`` as literal Markdown text for a table cell or heading.

    HTML metacharacters become entities (``<``, ``>``, and ``&`` where it
    would start one, so ``W&B`` stays readable); Markdown's
    ``\\ ` * [ ] | ~`` and word-edge ``_`` are backslash-escaped; a leading
    ``# > + - = !`` is escaped; line breaks become spaces. ``None`` → ``""``.
    """
    text = "" if value is None else str(value)
    text = " ".join(text.splitlines())
    text = _ENTITY.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    text = _BACKSLASHED.sub(r"\\\1", text)
    text = _EDGE_UNDERSCORE.sub(r"\\_", text)
    return _LEADING.sub(r"\\\1", text)


def digits_for(values: Iterable[float | None]) -> int:
    """Decimals suited to a metric's scale (the experiment log's convention).

    ``scale = max |x|`` over the finite values: below 1, four significant
    digits (``0.5808``, up to 6 decimals); from 1 up, three (``5.43``,
    ``12.3``, ``122``). Whole-number metrics show at most one decimal
    (``1.0``, a curriculum level). No finite value: 4.
    """
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return 4
    scale = float(np.abs(arr).max())
    if scale == 0:
        digits = 1
    elif scale < 1:
        digits = min(6, 3 - math.floor(math.log10(scale)))
    else:
        digits = max(0, 2 - math.floor(math.log10(scale)))
    if np.all(arr == np.round(arr)):
        digits = min(digits, 1)
    return digits


def fmt_number(x: float | None, digits: int) -> str:
    """``x`` with ``digits`` decimals; ``n/a`` for null or non-finite."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{float(x):.{digits}f}"


def fmt_p(p: float | None) -> str:
    """p-value as the log writes it: ``0.701``, or ``5.3e-05`` below 0.001; ``0`` when it is
    exactly 0 (a t test of two different constant samples: t = ±inf)."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p == 0:
        return "0"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def fmt_change(pct: float | None) -> str:
    """Relative change as ``+3.3%`` / ``-97.8%``; ``n/a`` when undefined."""
    return "n/a" if pct is None or not math.isfinite(pct) else f"{pct:+.1f}%"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Markdown table lines; each separator is as wide as its header cell plus padding.

    Cells are inserted verbatim: escape user text with ``md_text`` first.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines
