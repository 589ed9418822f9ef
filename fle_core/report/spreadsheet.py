"""CSV that is safe to open in a spreadsheet: every CSV the report and the app write.

Model names, task names and error texts come from logs and databases the workbench does
not control. A cell such as ``=HYPERLINK("http://x", "click")`` or ``@SUM(A1)`` is run as a
formula by Excel, LibreOffice and Google Sheets when the CSV is opened (CSV injection).
Following OWASP's advice, a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading ``'``, which spreadsheets show as text and do not evaluate.
Numeric columns are written as numbers, untouched (``-0.5`` stays a number); list columns
become ``;``-joined text, neutralized the same way. Parquet and JSON exports keep the
values exactly: they are not read by spreadsheets as formulas.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

#: A text cell a spreadsheet reads as a formula: it begins with = + - @, a tab or a CR (OWASP).
_FORMULA_START = "^[=+\\-@\t\r]"


def neutralized(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with list columns joined by ``;`` and every text cell that a spreadsheet
    would evaluate prefixed with ``'``."""
    lists = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
    flat = frame.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(";") for c in lists)
    texts = [c for c, t in flat.schema.items() if t == pl.String or isinstance(t, (pl.Categorical, pl.Enum))]
    return flat.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in texts
    )


def csv_text(frame: pl.DataFrame) -> str:
    """The spreadsheet-safe CSV of ``frame`` as text (the app's downloads)."""
    return neutralized(frame).write_csv()


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """The spreadsheet-safe CSV of ``frame`` at ``path`` (the report's tables)."""
    neutralized(frame).write_csv(path)
