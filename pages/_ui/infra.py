"""UI layer: the one switch for infrastructure failures, and the words around it.

Every page that shows a metric puts the same switch in its sidebar
(``infrastructure_switch``); its value lives in the page's URL
(``?<prefix>infra=exclude``; absent = FLE's rule) and goes into the page's
``Selection``, whose ``select`` applies ``fle_core.stats.infrastructure.apply_rule``
— the function ``analysis.load_summaries(infrastructure=...)`` uses — so every
number, chart and export of the page follows it.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from pages._ui.notes import plural
from pages._ui.state import url_select

#: The two settings as the switch shows them (= fle_core.stats.infrastructure.RULES).
RULE_TEXT = {
    "fail": "Count infrastructure failures as failures (as FLE's scorer does)",
    "exclude": "Leave them out",
}
HELP = (
    "An infrastructure failure is a trajectory whose game server, RCON connection, server pool or "
    "model API failed (classified from the Inspect log's error), not the agent. FLE's scorer counts "
    "it as a failed attempt; leaving them out recomputes every number on this page (and its "
    "exports) as if those trajectories had not run."
)


def infrastructure_switch(prefix: str, summaries: pl.DataFrame) -> str:
    """The switch in the sidebar; returns ``"fail"`` (default) or ``"exclude"``."""
    with st.sidebar:
        st.header("Infrastructure failures")
        rule = url_select(
            "Infrastructure failures",
            f"{prefix}infra",
            list(RULE_TEXT),
            "fail",
            format_func=RULE_TEXT.get,
            widget="radio",
            help=HELP,
            label_visibility="collapsed",
        )
        st.caption(rule_caption(rule, count_in(summaries)))
    return rule


def count_in(summaries: pl.DataFrame) -> int:
    """Infrastructure failures among these trajectories (0 without the column)."""
    col = "infrastructure_failure"
    return int(summaries[col].fill_null(False).sum()) if col in summaries.columns else 0


def rule_caption(rule: str, count: int) -> str:
    """What the switch does to this data, stated with the default rule."""
    found = plural(count, "infrastructure failure")
    if rule == "exclude":
        return f"Left out: {found}. The default is FLE's rule (they count as failures)."
    return f"Default, FLE's rule: {found} in this data count as failed attempts."


def rule_suffix(rule: str) -> str:
    """A file-name part for exports made without the infrastructure failures."""
    return "" if rule == "fail" else "-without-infrastructure-failures"


def rule_sentence(rule: str) -> str:
    """One sentence for an export's header."""
    if rule == "exclude":
        return "Infrastructure failures (game server, RCON, model API) are left out of every number."
    return (
        "Infrastructure failures (game server, RCON, model API) count as failures, as FLE's scorer decides."
    )
