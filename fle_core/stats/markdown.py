"""Markdown for the experiment-log tables: escaping, number formats, table assembly.

Pure text helpers shared by ``compare.comparison_markdown``,
``runs.runs_markdown``, the gate and the changes table (and usable by any other
Markdown export), so every exported label is escaped in one place, and
``pair_table`` is the one writer of the experiment-log table. Model names, task keys and metric
labels come from users' data: ``md_text`` makes them render as the literal text
they are (no HTML, no links, no emphasis, no broken table cells).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import polars as pl

#: the experiment log's verdict when nothing is significant (``compare.NO_DIFF``)
NO_DIFFERENCE = "no significant difference"

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


# ------------------------------------------------------- the experiment-log table ---
def side_header(name: str, ns: Sequence[int | None]) -> tuple[str, bool]:
    """``name (n=K)`` when every row has the same K, else ``name``; and whether cells need ``(n=…)``."""
    distinct = set(ns)
    if len(distinct) == 1 and None not in distinct:
        return f"{md_text(name)} (n={next(iter(distinct))})", False
    return md_text(name), True


def side_cell(mean, std, n, digits: int, with_n: bool) -> str:
    """``mean +/- sd`` (plus ``(n=N)`` when the header cannot say it)."""
    cell = f"{fmt_number(mean, digits)} +/- {fmt_number(std, digits)}"
    return f"{cell} (n={n})" if with_n else cell


def _side(r: dict, side: str, digits: int, with_n: bool) -> str:
    """``mean +/- sd`` over the finite runs, then ``[+k NaN/inf]`` when some were not finite
    (``compare_runs`` counts them in ``a_nonfinite``/``b_nonfinite``)."""
    cell = side_cell(r[f"{side}_mean"], r[f"{side}_std"], r[f"{side}_n"], digits, with_n)
    bad = r.get(f"{side}_nonfinite") or 0
    return f"{cell} [+{bad} NaN/inf]" if bad else cell


def verdict_cells(change_pct, verdict: str, significant: bool | None = None) -> tuple[str, str]:
    """Change and verdict cells, both bold when the verdict is significant (by default: a
    verdict that says "significantly"; "no significant difference", "invalid (same data)"
    and "not tested" stay plain)."""
    change, text = fmt_change(change_pct), verdict[0].upper() + verdict[1:]
    bold = verdict.startswith("significantly") if significant is None else significant
    return (f"**{change}**", f"**{text}**") if bold else (change, text)


def interval_cell(diff, low, high, digits: int) -> str:
    """``-0.120 [-0.181, -0.062]``: a difference and its interval."""
    return f"{fmt_number(diff, digits)} [{fmt_number(low, digits)}, {fmt_number(high, digits)}]"


def pair_table(
    sub: pl.DataFrame,
    *,
    label: Callable[[dict], str],
    digits: Mapping[str, int],
    interval: str | None = None,
    significant: Callable[[str], bool] | None = None,
) -> list[str]:
    """The experiment-log table of one (system, baseline) pair: the one Markdown table
    writer behind ``comparison_markdown``, ``runs.runs_markdown`` and the gate.

    ``| Metric | B (n=K) | A (n=K) | Change | p-value | Verdict |`` over rows of the
    comparisons contract (``model_b`` the baseline, shown first), ``label(row)`` in
    the first column, decimals per metric from ``digits``; ``interval`` (a header
    such as ``"Difference (90% CI)"``) adds the difference with its interval.
    ``significant(verdict)`` says which verdicts are bold (default: ``verdict_cells``'s).
    """
    a, b = str(sub["model_a"][0]), str(sub["model_b"][0])
    head_b, b_n = side_header(b, sub["b_n"].to_list())
    head_a, a_n = side_header(a, sub["a_n"].to_list())
    rows = []
    for r in sub.iter_rows(named=True):
        dg = digits[r["metric"]]
        bold = significant(r["verdict"]) if significant else None
        pct = None if r.get("not_tested") == "non-finite values" else r["change_pct"]
        change, verdict = verdict_cells(pct, r["verdict"], bold)
        cells = [label(r), _side(r, "b", dg, b_n), _side(r, "a", dg, a_n), change]
        if interval:
            cells.append(interval_cell(r["diff"], r["diff_ci_low"], r["diff_ci_high"], dg))
        rows.append([*cells, fmt_p(r["p_adjusted"]), verdict])
    header = ["Metric", head_b, head_a, "Change", *([interval] if interval else []), "p-value", "Verdict"]
    return table(header, rows)
