"""UI layer: tables that say when they do not fit.

The main column of a 1024×768 window (sidebar open) is about 560 px wide. A table
wider than that scrolls sideways, and the scrollbar is easy to miss (overlay
scrollbars show only on hover), so columns such as "not a success rate" went unseen.
``table`` draws the frame and, when its columns need more than that width, says so
under it and names the columns that are off to the right.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

#: The main column of a 1024 px window with the sidebar open (what ``tests/layout_check.js`` sees).
NARROW_COLUMN_PX = 560
_CHAR_PX, _PAD_PX, _MIN_PX, _MAX_PX = 7.5, 24, 56, 420
_NAMED_WIDTHS = {"small": 75, "medium": 200, "large": 400}
_KIND_WIDTHS = {"progress": 140, "checkbox": 64, "datetime": 150, "date": 110, "time": 90}


def _label(name: str, config: Any) -> str:
    if isinstance(config, str):
        return config
    if isinstance(config, dict) and config.get("label"):
        return str(config["label"])
    return name


def _column_px(frame: pl.DataFrame, name: str, config: Any) -> float:
    """How wide the grid draws a column: its configured width, else its header and widest value."""
    if isinstance(config, dict):
        width = config.get("width")
        if isinstance(width, int):
            return width
        if width in _NAMED_WIDTHS:
            return _NAMED_WIDTHS[width]
        kind = str((config.get("type_config") or {}).get("type", ""))
        if kind in _KIND_WIDTHS:
            return _KIND_WIDTHS[kind]
    values = frame.get_column(name).head(200)
    longest = 0
    if values.len():
        texts = values.cast(pl.String, strict=False).drop_nulls()
        longest = int(texts.str.len_chars().max() or 0) if texts.len() else 0  # type: ignore[arg-type]
    chars = max(len(_label(name, config)), longest)
    return min(_MAX_PX, max(_MIN_PX, chars * _CHAR_PX + _PAD_PX))


def overflow(frame: pl.DataFrame, column_config: dict[str, Any] | None = None) -> list[str]:
    """The labels of the columns that do not fit a 560 px column (empty when all fit)."""
    config = column_config or {}
    used, off = 0.0, []
    for name in frame.columns:
        used += _column_px(frame, name, config.get(name))
        if used > NARROW_COLUMN_PX:
            off.append(_label(name, config.get(name)))
    return off


def table(
    frame: pl.DataFrame, column_config: dict[str, Any] | None = None, *, where: Any = None, **kw
) -> None:
    """``st.dataframe`` without the index; under a table wider than a 1024 px window's column,
    a caption saying it scrolls sideways and what is out of view there."""
    box = where or st
    box.dataframe(frame, hide_index=True, column_config=column_config, **kw)
    off = overflow(frame, _as_dicts(column_config))
    if off:
        shown = ", ".join(off[:3]) + (f" and {len(off) - 3} more" if len(off) > 3 else "")
        box.caption(f":material/swap_horiz: In a narrow window, scroll the table sideways for {shown}.")


def _as_dicts(column_config: dict[str, Any] | None) -> dict[str, Any]:
    """Streamlit's ``column_config`` values (dict-like ``ColumnConfig``s or plain labels) as dicts."""
    out: dict[str, Any] = {}
    for name, value in (column_config or {}).items():
        out[name] = dict(value) if isinstance(value, dict) else value
    return out
