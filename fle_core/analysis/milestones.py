"""Milestones per open-play trajectory: how many item types it produced and automated.

FLE's leaderboard counts *milestones* (item types produced) and *automation
milestones* (item types produced by automated machinery) in open play. What the
warehouse can tell, per source kind:

* **programs** (FLE ≤ 0.3): every step's ``achievements_json`` is
  ``{"static": {item: n}, "dynamic": {item: n}}`` — the items that step crafted or
  harvested (static) and those produced by machines (dynamic). An item counts once
  per trajectory when some step has it with ``n > 0``: produced = static ∪ dynamic,
  automated = dynamic.
* **Inspect logs** (FLE ≥ 0.4): the ``achievements`` scorer's value is the number of
  unique item types in ``TrajectoryData:produced_item_types``; no scorer or store
  field says which items were automated, so ``items_automated`` stays null.

A trajectory with no such record has nulls (never zero). Malformed JSON is
skipped and counted in ``malformed``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from fle_core import warehouse
from fle_core.analysis import outcomes
from fle_core.stats.metrics import TRAJECTORY_KEY
from fle_core.workspace import Workspace

MILESTONE_SCHEMA = {
    "source": pl.String,
    "version": pl.Int64,
    "instance": pl.Int64,
    "items_produced": pl.Int64,
    "items_automated": pl.Int64,
    "milestones_from": pl.String,  # "achievements_json" | "inspect achievements scorer"
    "malformed": pl.Int64,
}


def _items(text: str) -> tuple[set[str], set[str]] | None:
    """(produced, automated) item types of one step's achievements_json; None if malformed."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kinds = []
    for kind in ("static", "dynamic"):
        part = data.get(kind) or {}
        if not isinstance(part, dict):
            return None
        kinds.append({str(k) for k, v in part.items() if isinstance(v, (int, float)) and v > 0})
    static, dynamic = kinds
    return static | dynamic, dynamic


def load_milestones(ws: Workspace, tasks: Sequence[str], *, as_of: int | None = None) -> pl.DataFrame:
    """``MILESTONE_SCHEMA`` for the trajectories of ``tasks`` (the open-play tasks) that
    record achievements, read as the module doc says."""
    if not tasks:
        return pl.DataFrame(schema=MILESTONE_SCHEMA)
    params: list = [list(tasks)]
    pin = ""
    if as_of is not None:
        pin = " AND s.sync_id <= ?"
        params.append(int(as_of))
    steps = warehouse.query(
        ws,
        "SELECT s.source, s.version, s.instance, s.achievements_json AS a FROM steps s "
        "WHERE s.task IN (SELECT unnest(?::VARCHAR[])) AND s.achievements_json IS NOT NULL" + pin,
        params,
    )
    rows: dict[tuple, list] = {}
    for source, version, instance, text in steps.iter_rows():
        got = rows.setdefault((source, version, instance), [set(), set(), 0])
        items = _items(text)
        if items is None:
            got[2] += 1
            continue
        got[0] |= items[0]
        got[1] |= items[1]
    programs = [
        (*key, len(p), len(d), "achievements_json", bad) for key, (p, d, bad) in rows.items() if p or d or bad
    ]
    frame = pl.DataFrame(programs, schema=MILESTONE_SCHEMA, orient="row")
    return pl.concat([frame, _inspect_milestones(ws, tasks, as_of)]).unique(
        subset=list(TRAJECTORY_KEY), keep="first", maintain_order=True
    )


def _inspect_milestones(ws: Workspace, tasks: Sequence[str], as_of: int | None) -> pl.DataFrame:
    if not outcomes.has_outcomes(ws):
        return pl.DataFrame(schema=MILESTONE_SCHEMA)
    params: list = [list(tasks)]
    sql = (
        "SELECT source, version, instance, scores_json FROM inspect_samples "
        "WHERE superseded_by IS NULL AND task IN (SELECT unnest(?::VARCHAR[])) AND scores_json IS NOT NULL"
    )
    if as_of is not None:
        sql += " AND sync_id <= ?"
        params.append(int(as_of))
    out = []
    for source, version, instance, text in warehouse.query(ws, sql, params).iter_rows():
        try:
            value = json.loads(text).get("achievements")
        except (ValueError, AttributeError):
            continue
        try:
            count = int(float(value))
        except (TypeError, ValueError):
            continue
        out.append((source, version, instance, count, None, "inspect achievements scorer", 0))
    return pl.DataFrame(out, schema=MILESTONE_SCHEMA, orient="row")
