"""Compare: leaderboard with CIs, pass@k bands, pairwise tests, distributions, cost, export.

URL state (all optional): ``cmp_sim`` (``1``: include simulated data beside real data), ``cmp_source``, ``cmp_model``, ``cmp_task``, ``cmp_sweep``
(repeatable filters), ``cmp_k`` (repeatable k values), ``cmp_metric``, ``cmp_corr``,
``cmp_base``, ``cmp_config`` (repeatable params JSON, ``(none)`` = runs without params),
``cmp_by`` (``model`` | ``config``: compare models or (model, config) systems), ``cmp_reps``, ``cmp_seed``,
``cmp_poi`` (P(improvement): pairs with one model), ``cmp_rtask`` (Rewards: one task),
``cmp_tab`` (open tab); ``view`` pins a shared view's data version. The sidebar shows only the
settings the open tab uses.
"""

import streamlit as st

from pages import _ui  # first: it finishes importing pandas before any chart is built

# isort: split
from fle_core import charts
from fle_core.stats import compare

PAGE, PREFIX = "compare", "cmp_"
METRICS = {
    "success": "Success (Fisher / paired)",
    "best_reward": "Best reward",
    "final_reward": "Final reward",
}
ALL_PAIRS = "(all pairs)"
CORRECTIONS = {"holm": "Holm", "bh": "Benjamini–Hochberg"}

ws = _ui.workspace()
st.title("Compare models")


def filters(summ) -> _ui.Selection:
    """Trajectory filters; each narrows the options offered by the next."""
    with st.sidebar:
        st.header("Filters")
        sim = _ui.simulated_switch(summ, "cmp_sim")
        summ = _ui.select(summ, _ui.Selection(simulated=sim))
        sources = _ui.url_multiselect(
            "Sources", "cmp_source", _ui.distinct(summ, "source"), placeholder="All sources"
        )
        sweeps = _ui.url_multiselect(
            "Sweeps", "cmp_sweep", _ui.distinct(summ, "sweep_id"), placeholder="All sweeps"
        )
        pool = _ui.select(summ, _ui.Selection(tuple(sources), (), (), tuple(sweeps)))
        tasks = _ui.url_multiselect("Tasks", "cmp_task", _ui.distinct(pool, "task"), placeholder="All tasks")
        models = _ui.url_multiselect(
            "Models", "cmp_model", _ui.distinct(pool, "model"), placeholder="All models"
        )
        configs, by = config_filters(_ui.select(pool, _ui.Selection(models=tuple(models))))
    return _ui.Selection(tuple(sources), tuple(models), tuple(tasks), tuple(sweeps), tuple(configs), by, sim)


def config_filters(pool) -> tuple[list[str], str]:
    """Sweep configs (grid permutations) and whether to compare (model, config) systems;
    hidden when no trajectory has params."""
    options = _ui.config_options(pool)
    if not options:
        _ui.drop_params(["cmp_config", "cmp_by"], "no trajectory here has sweep params")
        return [], "model"
    configs = _ui.url_multiselect(
        "Configs", "cmp_config", options, placeholder="All configs", format_func=_ui.config_text
    )
    by = _ui.url_select(
        "Compare by",
        "cmp_by",
        list(_ui.SYSTEMS),
        "model",
        format_func=_ui.SYSTEMS.get,
        widget="radio",
        horizontal=True,
    )
    return configs, by


#: Which sidebar settings each tab uses; the others are hidden on that tab (their URL values stay).
USES = {
    "Leaderboard": {"reps"},
    "pass@k": {"k", "reps"},
    "Pairwise": {"pairs", "reps"},
    "Rewards": set(),
    "Cost": set(),
    "Export": {"k", "pairs", "reps"},
    "Runs file": set(),  # its own controls are in the tab
}


def settings(models: list[str], tab: str, default_k: list[int]) -> dict:
    """Metric settings (part of the URL and of a shared view): the open tab's in the sidebar,
    the others folded away below them, so a tab never shows a setting it ignores."""
    uses = USES.get(tab, set())
    cfg: dict = {}
    with st.sidebar:
        st.header("Settings")
        if not uses:
            st.caption(f"The {tab} tab has no settings.")
        used = st.container()
        others = st.expander("Settings of other tabs (not used here)")
        where = {name: (used if name in uses else others) for name in ("k", "pairs", "reps")}
        with _ui.param_notices(used), where["k"]:
            ks = _ui.url_ints("pass@k: k values", "cmp_k", _ui.K_OPTIONS, default_k)
            cfg["k_values"] = ks or [1]
        with _ui.param_notices(used), where["pairs"]:
            cfg["metric"] = _ui.url_select(
                "Pairwise metric", "cmp_metric", list(METRICS), "success", format_func=METRICS.get
            )
            cfg["correction"] = _ui.url_select(
                "Multiple-comparison correction",
                "cmp_corr",
                list(CORRECTIONS),
                "holm",
                format_func=CORRECTIONS.get,
            )
            base = _ui.url_select(
                "Baseline (compare every model with it)", "cmp_base", [ALL_PAIRS, *models], ALL_PAIRS
            )
            cfg["baseline"] = None if base == ALL_PAIRS else base
        with _ui.param_notices(used), where["reps"]:
            cfg["reps"] = _ui.url_int("Bootstrap resamples", "cmp_reps", 1000, 100, 20000)
            cfg["seed"] = _ui.url_int("Bootstrap seed", "cmp_seed", 0, 0, 2**31 - 1)
    return cfg


def leaderboard(pin, sel, cfg) -> None:
    board = _ui.compute(ws, pin, "leaderboard", sel, k_values=[1])
    st.markdown(_ui.headline(board))
    _ui.table(_ui.leaderboard_view(board), _ui.LEADERBOARD_COLUMNS, key="cmp_board_table")
    est = _ui.compute(ws, pin, "intervals", sel, reps=cfg["reps"], seed=cfg["seed"])
    _ui.grid_chart(charts.interval_estimates_chart, est, palette=palette)
    st.caption(_ui.interval_caption(cfg["reps"], cfg["seed"], _ui.zero_width_models(est)))


def pass_at_k(pin, sel, cfg) -> None:
    curve = _ui.compute(
        ws, pin, "passk_curve", sel, k_values=cfg["k_values"], reps=cfg["reps"], seed=cfg["seed"]
    )
    note = _ui.passk_coverage_note(
        _ui.compute(ws, pin, "leaderboard", sel, k_values=cfg["k_values"]), cfg["k_values"]
    )
    if note:
        st.info(note, icon=":material/info:")
    if curve.is_empty():
        return
    _ui.grid_chart(charts.pass_at_k_chart, curve, palette=palette)
    st.caption(
        "Unbiased pass@k per task (Chen et al. 2021), averaged over the tasks with at least "
        "k trials; bands are bootstrap 95% intervals."
    )


def _pair_args(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("metric", "correction", "baseline", "reps", "seed")}


def pairwise(pin, sel, cfg) -> None:
    comp = _ui.compute(ws, pin, "pairwise", sel, **_pair_args(cfg))
    if comp.is_empty():
        _ui.empty_state(
            "Pairwise comparisons need at least two models.", ["Widen the model filter in the sidebar."]
        )
        return
    _ui.grid_chart(charts.comparison_matrix_chart, comp, palette=palette, grid=True)
    st.caption(
        "Across all tasks: difference A − B (row − column), Holm/BH-adjusted p, "
        "▲ significantly better, ▼ significantly worse, · no significant difference; "
        "hover a cell for its CI, p-values and P(A > B)."
    )
    # the comparison already bootstrapped P(improvement) on the chosen metric: reuse it
    poi = compare.improvement_from_comparisons(comp)
    models = sorted(set(poi["model_x"].to_list()) | set(poi["model_y"].to_list()))
    if poi.height > charts.MAX_POI_PAIRS:
        who = _ui.url_select(
            "Probability of improvement: pairs with",
            "cmp_poi",
            [ALL_PAIRS, *models],
            ALL_PAIRS,
            help=f"{poi.height} pairs are too many to label; all pairs shows the {charts.MAX_POI_PAIRS} most decisive",
        )
        if who != ALL_PAIRS:
            poi = poi.filter((poi["model_x"] == who) | (poi["model_y"] == who))
    _ui.grid_chart(charts.probability_of_improvement_chart, poi, palette=palette)
    st.caption(f"P(X beats Y) on {METRICS[cfg['metric']]}, averaged over the tasks both ran.")
    with st.expander("All comparisons (per task and across tasks)"):
        _ui.table(_ui.short_names(comp), _ui.number_columns(comp))


ALL_TASKS = "(all tasks: best reward ÷ quota)"


def runs_file(pin, sel, cfg) -> None:
    _ui.runs_file_section(ws)


def rewards(pin, sel, cfg) -> None:
    chosen = _ui.compute(ws, pin, "summaries", sel)
    tasks = _ui.distinct(chosen, "task")
    task = _ui.url_select(
        "Reward of",
        "cmp_rtask",
        [ALL_TASKS, *tasks] if len(tasks) > 1 else tasks,
        ALL_TASKS if len(tasks) > 1 else None,
        help="Raw rewards of different tasks are on different scales: pick one task, "
        "or compare all tasks as a fraction of their quota",
    )
    if task in (None, ALL_TASKS):
        frame, reward = chosen, "normalized_reward" if len(tasks) > 1 else "best_reward"
    else:
        frame, reward = chosen.filter(chosen["task"] == task), "best_reward"
    _ui.grid_chart(charts.reward_distribution_chart, frame, reward, palette=palette)


def cost(pin, sel, cfg) -> None:
    board = _ui.compute(ws, pin, "leaderboard", sel, k_values=[1])
    _ui.grid_chart(charts.cost_chart, board, palette=palette)
    st.caption(
        "Cost per success = all scored runs' tokens ÷ successes (failed runs count: a model at "
        "25 % success pays for 4 runs per success); lower and to the right is better. "
        "Defined in docs/metrics.md."
    )


def export(pin, sel, cfg) -> None:
    board = _ui.compute(ws, pin, "leaderboard", sel, k_values=cfg["k_values"])
    comp = _ui.compute(ws, pin, "pairwise", sel, **_pair_args(cfg))
    md = _ui.comparison_markdown(comp)
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Markdown (experiment log)",
        md,
        file_name="comparison.md",
        mime="text/markdown",
        icon=":material/description:",
    )
    c2.download_button(
        "Leaderboard CSV",
        _ui.to_csv(board),
        file_name="leaderboard.csv",
        mime="text/csv",
        icon=":material/table:",
    )
    if not comp.is_empty():
        c3.download_button(
            "Comparisons CSV",
            _ui.to_csv(comp),
            file_name="comparisons.csv",
            mime="text/csv",
            icon=":material/table:",
        )
    _ui.markdown_preview(md)


with _ui.guard():
    pin = _ui.apply_view(ws, PAGE, PREFIX)
    if pin.version == 0:  # no trajectories yet: a runs file can still be compared
        with st.expander("Compare a runs file (CSV, Parquet, JSONL, W&B export)"), _ui.guard():
            _ui.runs_file_section(ws)
    _ui.stop_if_unsynced(pin.version, "Nothing to compare yet.")
    summ = _ui.summaries(ws, pin)
    palette = _ui.palette(summ)
    sel = filters(summ)
    chosen = _ui.select(summ, sel)
    if chosen.is_empty():
        _ui.empty_state("No trajectories match these filters.", ["Clear a filter in the sidebar."])
        st.stop()
    _ui.simulated_badge(chosen)
    _ui.failure_note(
        _ui.failure_counts(ws, pin),
        _ui.distinct(chosen, "base_model" if sel.systems == "config" else "model"),
    )
    unit = ("system", "systems") if sel.systems == "config" else ("model", "models")
    st.caption(
        f"{_ui.plural(chosen.height, 'trajectory', 'trajectories')} · "
        f"{_ui.plural(chosen['model'].n_unique(), *unit)} · "
        f"{_ui.plural(chosen['task'].n_unique(), 'task')} · data version {pin.version}"
    )
    _ui.share_button(ws, PAGE, PREFIX, pin)
    tabs = _ui.url_tabs(
        ["Leaderboard", "pass@k", "Pairwise", "Rewards", "Cost", "Export", "Runs file"], "cmp_tab"
    )
    open_tab = next((label for label, tab in tabs.items() if tab.open), "Leaderboard")
    cfg = settings(_ui.distinct(chosen, "model"), open_tab, _ui.default_k_values(chosen))
    sections = {
        "Leaderboard": leaderboard,
        "pass@k": pass_at_k,
        "Pairwise": pairwise,
        "Rewards": rewards,
        "Cost": cost,
        "Export": export,
        "Runs file": runs_file,
    }
    for label, tab in tabs.items():
        if tab.open:  # lazy: only the selected tab computes
            with tab, _ui.guard():
                sections[label](pin, sel, cfg)
