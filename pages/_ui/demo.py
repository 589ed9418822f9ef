"""UI layer: simulated (demo) data kept apart from real data.

A fresh workspace shows the demo sweep's data (labelled simulated). Once real
trajectories exist, every analysis leaves the simulated ones out by default; a
sidebar switch ("Include simulated data", ``?<page>_sim=1``) brings them back, and
**Remove demo data** (Sources & sync, hidden in read-only mode; ``fle-core
remove-demo``) deletes them.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from pages._ui.state import drop_params, set_param

SIM_OFF_HELP = (
    "Trajectories written by the built-in simulator (the demo sweep) are left out while the "
    "workspace holds real data. Remove them for good on Sources & sync (Remove demo data)."
)


def simulated_share(summ: pl.DataFrame) -> tuple[int, int]:
    """(simulated trajectories, all trajectories) of a summaries frame."""
    if summ.is_empty() or "simulated" not in summ.columns:
        return 0, summ.height
    return int(summ["simulated"].fill_null(False).cast(pl.Int64).sum()), summ.height


def simulated_switch(summ: pl.DataFrame, key: str, *, where: Any = None) -> bool:
    """Whether this view includes simulated trajectories (``Selection.simulated``).

    Only a workspace that holds both real and simulated trajectories gets the
    switch (off by default, ``?key=1`` when on); with only demo data, or none, the
    view shows what there is (the simulated badge says so).
    """
    n_sim, n = simulated_share(summ)
    if n_sim == 0 or n_sim == n:
        drop_params([key], "this data has no simulated trajectories beside real ones")
        st.session_state.pop(key, None)
        return True
    where = where or st.sidebar
    if key not in st.session_state:
        raw = st.query_params.get(key)
        if raw not in (None, "0", "1"):
            drop_params([key], "expected 1 (include simulated data) or 0")
        st.session_state[key] = raw == "1"
    on = bool(
        where.toggle(
            f"Include simulated data ({n_sim:,} trajectories)",
            key=key,
            help=SIM_OFF_HELP,
        )
    )
    set_param(key, "1" if on else None)
    return on


def remove_demo_section(ws: Any, simulated_rows: int, read_only: bool) -> None:
    """Sources & sync: how much demo data the warehouse holds and, unless read-only, a
    confirmed **Remove demo data** (``fle_core.sweeps.demo.remove_demo``)."""
    from pages._ui.core import guard

    if "_demo_removed" in st.session_state:
        st.success(st.session_state.pop("_demo_removed"), icon=":material/delete_sweep:")
    if not simulated_rows:
        return
    st.subheader("Simulated demo data")
    st.caption(
        f"{simulated_rows:,} synced steps were written by the built-in simulator (the demo sweep). "
        "Analyses leave them out once real data exists (each page has an *Include simulated data* "
        "switch). `fle-core remove-demo` does the same as the button."
    )
    if read_only:
        return
    if st.button("Remove demo data", icon=":material/delete_sweep:", key="_demo_remove"):
        st.session_state["_demo_confirm"] = True
    if st.session_state.get("_demo_confirm"):
        st.warning(
            "Remove every simulated step and trajectory from the warehouse, and the simulator's rows "
            "from the workspace's local source? Real data is not touched.",
            icon=":material/warning:",
        )
        yes, no = st.columns([1, 1], width=360)
        if no.button("Keep it", key="_demo_no"):
            st.session_state.pop("_demo_confirm", None)
            st.rerun()
        if yes.button("Yes, remove it", type="primary", key="_demo_yes"):
            from fle_core.sweeps.demo import remove_demo

            with guard():
                st.session_state.pop("_demo_confirm", None)
                st.session_state["_demo_removed"] = remove_demo(ws).text()
                st.rerun()
