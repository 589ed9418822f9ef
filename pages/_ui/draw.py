"""UI layer: drawing charts at the size their builders gave them, and not building them twice.

Building an Altair chart (its objects deep-copied at every step), validating it
against the Vega-Lite schema and turning it into JSON was most of a warm page run
(the Compare page's five-panel interval chart alone ~0.5 s), and a warm rerun (a
tab click, a page switch, a live Monitor's refresh) built the same chart again from
the same frames. ``grid_chart`` given a chart *builder* and its arguments keeps the
finished spec (per process, ``SPECS`` most recent) keyed on the builder and a
fingerprint of its inputs (each frame's schema, height and a hash of its rows; a
palette's models), so a warm rerun only reads the JSON back. Given a finished
chart it draws it as before.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

#: A grid whose plot is wider than this fills the column instead (``grid_chart``).
GRID_FIT_PX = 200
#: Finished chart specs kept per process (a spec is its data plus a few kB).
SPECS = 64
_specs: OrderedDict[tuple, tuple[str, bool]] = OrderedDict()
_lock = threading.Lock()


def _fingerprint(value: Any) -> Any:
    """A hashable stand-in for a builder argument: frames by content, palettes by models."""
    if isinstance(value, pl.DataFrame):
        rows = int(value.hash_rows(seed=7).sum()) if value.height else 0
        return ("frame", tuple((n, str(t)) for n, t in value.schema.items()), value.height, rows)
    models = getattr(value, "models", None)
    if isinstance(models, tuple):
        return (type(value).__name__, models)
    if isinstance(value, (list, tuple)):
        return tuple(_fingerprint(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _fingerprint(v)) for k, v in value.items()))
    return value


def _layout(spec: dict, grid: bool) -> bool:
    """Set the spec's autosize; True when it keeps its own width (``width="content"``)."""
    from fle_core.charts.base import FIT_X, PAD

    composite = any(k in spec for k in ("concat", "hconcat", "vconcat", "facet", "repeat"))
    wide = isinstance(spec.get("width"), (int, float)) and spec["width"] > GRID_FIT_PX
    fixed = (grid and not wide) or composite
    spec["autosize"] = (PAD if fixed else FIT_X).to_dict()
    return fixed


def _built(builder: Callable[..., Any], args: tuple, kwargs: dict, grid: bool) -> tuple[dict, bool]:
    key = (builder.__module__, builder.__qualname__, grid, _fingerprint(args), _fingerprint(kwargs))
    with _lock:
        hit = _specs.get(key)
        if hit is not None:
            _specs.move_to_end(key)
    if hit is None:
        spec = builder(*args, **kwargs).to_dict(validate=True)
        fixed = _layout(spec, grid)
        hit = (json.dumps(spec), fixed)
        with _lock:
            _specs[key] = hit
            while len(_specs) > SPECS:
                _specs.popitem(last=False)
    return json.loads(hit[0]), hit[1]


def grid_chart(chart: Any, *args: Any, where: Any = None, grid: bool = False, **kwargs: Any) -> None:
    """Draw a chart at the size its builder gave it (``fle_core.charts.base``: "Sizes").

    ``chart`` is a chart builder (``charts.task_heatmap_chart``) followed by its
    arguments, whose finished spec is reused on a warm rerun (module docstring), or
    a finished Altair chart. Single views fill the column (autosize ``fit-x``) and
    keep the plot height the builder chose from its rows. Grids (``grid=True``:
    heatmaps, the comparison matrix, the sweep cells) of a few columns keep their own
    width and height (``pad``, drawn ``width="content"``); a wider grid fills the
    column like a single view, so it neither runs past a 1024 px window's column nor
    leaves half a 1400 px one empty (its cells narrow or widen; cell text shows where
    it fits). Multi-panel charts keep their own size. Streamlit's ``height`` is always
    ``"content"``: the drawing's own height, titles and legends included. ``where``
    is a container or column (default: the page).
    """
    if callable(chart) and not hasattr(chart, "to_dict"):
        spec, fixed = _built(chart, args, kwargs, grid)
    else:
        spec = chart.to_dict(validate=True)
        fixed = _layout(spec, grid)
    (where or st).vega_lite_chart(spec, width="content" if fixed else "stretch", height="content")
