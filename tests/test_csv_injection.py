"""Issue 23 item 14: every CSV the report, the leaderboard and the app write is safe to open
in a spreadsheet. A model named ``=HYPERLINK(…)`` was escaped in Markdown but written
verbatim into all 9 report CSVs and the app's downloads.

The reference is the OWASP rule applied cell by cell with Python's own ``csv`` reader: no
cell may begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return unless it is a
number, and a neutralized cell is the original text with one leading ``'``.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import polars as pl
import pytest
from gate_fixtures import add_source, outcome_rows

from fle_core.report import spreadsheet
from pages._ui.frames import to_csv

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3"]
TASK = "iron_ore_throughput"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _dangerous(text: str) -> list[str]:
    """Cells a spreadsheet would evaluate: the OWASP rule, cell by cell."""
    rows = csv.reader(io.StringIO(text))
    return [c for row in rows for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(c)]


def _cells(text: str) -> set[str]:
    return {c for row in csv.reader(io.StringIO(text)) for c in row}


def test_text_cells_are_neutralized_and_numbers_kept():
    frame = pl.DataFrame(
        {
            "model": [*HOSTILE, "\tTAB", "\rCR", "plain", None],
            "score": [-0.5, 1.0, -2.0, 3.0, -1.0, 0.0, 4.0, None],
            "tags": [["=1+1", "ok"], [], ["a"], ["b"], ["c"], ["d"], ["e"], None],
        }
    )
    old = frame.with_columns(pl.col("tags").list.join(";")).write_csv()
    assert _dangerous(old)  # the check can fire: polars alone writes them verbatim
    text = spreadsheet.csv_text(frame)
    assert _dangerous(text) == []
    cells = _cells(text)
    assert {"'" + h for h in HOSTILE} <= cells and "'\tTAB" in cells and "plain" in cells
    assert "'=1+1;ok" in cells  # a list column is joined, then neutralized
    assert pl.read_csv(io.StringIO(text))["score"].to_list() == frame["score"].to_list()  # numbers untouched


def test_the_apps_downloads_are_neutralized():
    frame = pl.DataFrame({"model": HOSTILE, "n": [1, 2, 3, 4], "tasks": [["=x"], ["y"], [], ["z"]]})
    text = to_csv(frame)  # every CSV download of the app (Compare's exports, What changed)
    assert _dangerous(text) == [] and "'" + HOSTILE[0] in _cells(text)


@pytest.fixture
def hostile_ws(tmp_path):
    home = tmp_path / "ws"
    rows = outcome_rows(
        {(m, TASK): [True, False, True, False] for m in [*HOSTILE[:2], "plain-model"]}, steps=2
    )
    add_source(home, tmp_path / "hostile.db", rows)
    return home


def test_every_report_csv_and_the_leaderboard_csv_are_neutralized(hostile_ws, tmp_path):
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(hostile_ws), "report", "--out", str(out),
         "--reps", "200"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = sorted(out.glob("*.csv"))
    assert len(written) >= 9, [p.name for p in written]
    named = [p.name for p in written if "'" + HOSTILE[0] in _cells(p.read_text())]
    assert named, "no report CSV names the hostile model"
    assert {p.name: _dangerous(p.read_text()) for p in written} == {p.name: [] for p in written}
    # Parquet keeps the exact name
    assert any(HOSTILE[0] in pl.read_parquet(p).to_pandas().to_string() for p in out.glob("*.parquet"))
    board = tmp_path / "board.csv"
    done = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(hostile_ws), "leaderboard", "--format", "csv",
         "--out", str(board), "--reps", "200"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _dangerous(board.read_text()) == [] and "'" + HOSTILE[0] in _cells(board.read_text())
