"""Views that must read well as drawn, checked on what the page sends the browser (AppTest).

* The Tasks heatmap: cell text a person can read (11 px), with the number of trials
  each value rests on printed under it (not only on hover), and a grid that fills the
  column instead of leaving half of it empty.
* pass@k with few trials: the default k values follow the data, so 2 trials per task
  draw a curve (k = 1, 2), not one point under a subtitle promising a band.
"""

from __future__ import annotations

import json

import pytest
from app_helpers import assert_clean, run_page

from pages._ui import notes


def _spec(at, title_start: str) -> dict:
    specs = [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]
    hits = [s for s in specs if str(s.get("title", {}).get("text", "")).startswith(title_start)]
    assert len(hits) == 1, [s.get("title") for s in specs]
    return hits[0]


@pytest.mark.usefixtures("populated")
def test_the_heatmap_prints_readable_values_with_their_n_and_fills_the_column():
    at = run_page("tasks")
    assert_clean(at)
    spec = _spec(at, "Task × model: Success rate")
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert text["mark"]["fontSize"] >= 11
    shown = " ".join(t.get("calculate", "") for t in text.get("transform", []))
    assert "datum.successes + '/' + datum.n" in shown  # "3/4" under "75%" in every cell
    assert "cell: the value and successes/n" in " ".join(
        spec["title"]["subtitle"]
        if isinstance(spec["title"]["subtitle"], list)
        else [spec["title"]["subtitle"]]
    )
    assert spec["autosize"]["type"] == "fit-x"  # three models' columns fill the page's column


def test_default_k_values_follow_the_trials():
    import polars as pl

    two = pl.DataFrame({"model": ["a"] * 4, "task": ["t1", "t1", "t2", "t2"]})
    assert notes.default_k_values(two) == [1, 2]  # 1, 3, 5, 8 would leave one point
    eight = pl.DataFrame({"model": ["a"] * 8, "task": ["t1"] * 8})
    assert notes.default_k_values(eight) == [1, 3, 5, 8]
    five = pl.DataFrame({"model": ["a"] * 5, "task": ["t1"] * 5})
    assert notes.default_k_values(five) == [1, 3, 5]
