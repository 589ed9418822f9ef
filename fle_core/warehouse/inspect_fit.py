"""Fit one Inspect row to its warehouse columns before it reaches DuckDB, or say why not.

A log is untrusted JSON: any field can hold any type and any size (an epoch ``"abc"``, a
token count of 2**70, a 400-digit score, a ``created`` that is an object). One such value
in a batch made the whole insert fail (DuckDB cannot read Python's 128-bit integers:
``_pli128``) and blocked the source. ``fit`` checks every value against the column's
type from ``store.DDL`` and raises ``Malformed`` naming the column and the value, so the
caller quarantines that one sample (or log) and syncs the rest:

* integers must fit the column (INTEGER: 32 bits, BIGINT: 64 bits);
* DOUBLE takes any int or float that fits a float;
* text is cut at ``_poison.MAX_TEXT_BYTES`` (1 MiB, the programs path's cut) with a marker
  saying how long it was; a lone UTF-16 surrogate (JSON allows ``"\\ud800"``) becomes
  ``?``; a number in a text column is written as text; an object or list is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fle_core.sources.sample_facts import Malformed
from fle_core.warehouse import store
from fle_core.warehouse._poison import MAX_TEXT_BYTES

_INT_BITS = {"INTEGER": 32, "BIGINT": 64}


def fit(row: dict[str, Any], table: str) -> dict[str, Any]:
    """``row`` with each value fitted to ``table``'s column (keys starting ``_`` and
    columns the table lacks pass through); ``Malformed`` for a value that cannot fit."""
    types = store.column_types(table)
    out = {}
    for key, value in row.items():
        kind = types.get(key)
        out[key] = value if kind is None or value is None else _fit(key, value, kind)
    return out


def cut_text(text: str) -> str:
    """``text`` as valid UTF-8 of at most ``MAX_TEXT_BYTES`` plus a marker when it was longer."""
    data = text.encode("utf-8", errors="replace") if not text.isascii() else text.encode()
    if len(data) <= MAX_TEXT_BYTES:
        return text if data.decode("utf-8") == text else data.decode("utf-8")
    kept = data[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")
    return kept + f"\n[… cut at 1 MiB: {len(data):,} bytes in all]"


def _fit(key: str, value: Any, kind: str) -> Any:
    if kind == "VARCHAR":
        if isinstance(value, str):
            return cut_text(value)
        if isinstance(value, (bool, int, float)):
            return str(value)
        raise Malformed(f"{key} is {_what(value)} where text belongs")
    if kind in _INT_BITS:
        bits = _INT_BITS[kind]
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int) and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            return value
        raise Malformed(f"{key} {_short(value)} does not fit a {bits}-bit integer")
    if kind == "DOUBLE":
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:
                raise Malformed(f"{key} has {len(str(abs(value)))} digits, beyond float range") from None
        raise Malformed(f"{key} is {_what(value)} where a number belongs")
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        raise Malformed(f"{key} is {_what(value)} where true/false belongs")
    if kind == "TIMESTAMP":
        if isinstance(value, datetime):
            return value
        raise Malformed(f"{key} is {_what(value)} where a timestamp belongs")
    return value


def _what(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "text"}
    return names.get(type(value), f"a {type(value).__name__}")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}…({len(text)} characters)"
