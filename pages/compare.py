"""Compare: leaderboard with CIs, pass@k bands, pairwise tests, distributions, cost, export.

URL state (all optional): ``cmp_sim`` (``1``: include simulated data beside real data), ``cmp_source``, ``cmp_model``, ``cmp_task``, ``cmp_sweep``
(repeatable filters), ``cmp_k`` (repeatable k values), ``cmp_metric``, ``cmp_corr``,
``cmp_base``, ``cmp_config`` (repeatable params JSON, ``(none)`` = runs without params),
``cmp_by`` (``system`` | ``config`` | ``model``: docs/app.md), ``cmp_reps``, ``cmp_seed``,
``cmp_pop`` (``tasks`` | ``suite``: which population the intervals answer for), ``cmp_infra``
(``exclude``: leave infrastructure failures out), ``cmp_poi`` (P(improvement): pairs with one model),
``cmp_rtask`` (Rewards: one task), the Planner's ``cmp_plan``, ``cmp_target``, ``cmp_plan_sys``,
``cmp_tab`` (open tab), ``cmp_chg_*`` (What changed: the two sides and filters, see
``_ui.changes``); ``view`` pins a shared view's data version. The sidebar shows only the
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
    rule = _ui.infrastructure_switch("cmp_", summ)
    return _ui.Selection(
        tuple(sources), tuple(models), tuple(tasks), tuple(sweeps), tuple(configs), by, rule, sim
    )


def config_filters(pool) -> tuple[list[str], str]:
    """Sweep configs (when any run has params) and what one row is: a system (the default;
    ``analysis.systems``), a system and sweep config, or a model pooling its systems."""
    options = _ui.config_options(pool)
    if not options and not _ui.several_systems(pool):  # nothing to tell apart: rows are models
        _ui.drop_params(["cmp_config", "cmp_by"], "no trajectory here has sweep params")
        return [], "system"
    configs: list[str] = []
    if not options:
        _ui.drop_params(["cmp_config"], "no trajectory here has sweep params")
    else:
        configs = _ui.url_multiselect("Configs", "cmp_config", options, format_func=_ui.config_text)
    by = _ui.url_select(
        "Compare by",
        "cmp_by",
        list(_ui.SYSTEMS),
        "system",
        format_func=_ui.SYSTEMS.get,
        widget="radio",
        horizontal=True,
    )
    return configs, by


#: Which sidebar settings each tab uses; the others are hidden on that tab (their URL values stay).
USES = {
    "Leaderboard": {"corr", "reps"},
    "pass@k": {"k", "reps"},
    "Pairwise": {"pairs", "corr", "reps"},
    "What changed": set(),  # its two sides are picked in the tab
    "Rewards": set(),
    "Cost": {"reps"},
    "Reliability": set(),
    "Planner": set(),  # its own controls are in the tab
    "Export": {"k", "pairs", "corr", "reps"},
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
        where = {name: (used if name in uses else others) for name in ("k", "pairs", "corr", "reps")}
        with _ui.param_notices(used), where["k"]:
            ks = _ui.url_ints("pass@k: k values", "cmp_k", _ui.K_OPTIONS, default_k)
            cfg["k_values"] = ks or [1]
        with _ui.param_notices(used), where["pairs"]:
            cfg["metric"] = _ui.url_select(
                "Pairwise metric", "cmp_metric", list(METRICS), "success", format_func=METRICS.get
            )
            base = _ui.url_select(
                "Baseline (compare every model with it)", "cmp_base", [ALL_PAIRS, *models], ALL_PAIRS
            )
            cfg["baseline"] = None if base == ALL_PAIRS else base
        with _ui.param_notices(used), where["corr"]:
            cfg["correction"] = _ui.url_select(
                "Multiple-comparison correction",
                "cmp_corr",
                list(CORRECTIONS),
                "holm",
                format_func=CORRECTIONS.get,
            )
        with _ui.param_notices(used), where["reps"]:
            cfg["population"] = _ui.population_setting("cmp_pop")
            cfg["reps"] = _ui.url_int("Bootstrap resamples", "cmp_reps", 1000, 100, 20000)
            cfg["seed"] = _ui.url_int("Bootstrap seed", "cmp_seed", 0, 0, 2**31 - 1)
    return cfg


def leaderboard(pin, sel, cfg) -> None:
    board = _ui.compute(ws, pin, "leaderboard", sel, k_values=[1], population=cfg["population"])
    standing = _ui.compute(
        ws, pin, "standing", sel, correction=cfg["correction"], reps=cfg["reps"], seed=cfg["seed"]
    )
    _ui.suite_notes(_ui.compute(ws, pin, "suite_note", sel), sel.systems == "model")
    st.markdown(_ui.headline(board, standing))
    _ui.table(_ui.leaderboard_view(board), _ui.LEADERBOARD_COLUMNS, key="cmp_board_table")
    est = _ui.compute(
        ws, pin, "intervals", sel, reps=cfg["reps"], seed=cfg["seed"], population=cfg["population"]
    )
    _ui.grid_chart(charts.interval_estimates_chart, est, palette=palette)
    st.caption(_ui.interval_caption(cfg["reps"], cfg["seed"], _ui.zero_width_models(est), cfg["population"]))


def pass_at_k(pin, sel, cfg) -> None:
    args = {k: cfg[k] for k in ("k_values", "reps", "seed", "population")}
    curve = _ui.compute(ws, pin, "passk_curve", sel, **args)
    hat = _ui.compute(ws, pin, "passk_curve", sel, **args, estimator="pass_hat_k")
    note = _ui.passk_coverage_note(
        _ui.compute(ws, pin, "leaderboard", sel, k_values=cfg["k_values"]), cfg["k_values"]
    )
    if note:
        st.info(note, icon=":material/info:")
    if curve.is_empty():
        return
    _ui.grid_chart(charts.pass_k_chart, curve, hat, palette=palette)
    st.caption(_ui.passk_caption(cfg["population"]))


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


def export(pin, sel, cfg) -> None:
    board = _ui.compute(ws, pin, "leaderboard", sel, k_values=cfg["k_values"], population=cfg["population"])
    comp = _ui.compute(ws, pin, "pairwise", sel, **_pair_args(cfg))
    md = f"{_ui.rule_sentence(sel.infrastructure)}\n\n{_ui.comparison_markdown(comp)}"
    suffix = _ui.rule_suffix(sel.infrastructure)
    downloads = [("Markdown (experiment log)", md, f"comparison{suffix}.md", "text/markdown", "description")]
    downloads.append(("Leaderboard CSV", _ui.to_csv(board), f"leaderboard{suffix}.csv", "text/csv", "table"))
    if not comp.is_empty():
        downloads.append(
            ("Comparisons CSV", _ui.to_csv(comp), f"comparisons{suffix}.csv", "text/csv", "table")
        )
    for col, (label, data, name, mime, icon) in zip(st.columns(3), downloads, strict=False):
        col.download_button(label, data, file_name=name, mime=mime, icon=f":material/{icon}:")
    _ui.markdown_preview(md)
    _ui.leaderboard_export(ws, pin, _ui.distinct(_ui.compute(ws, pin, "summaries", sel), "model"))


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
        _ui.distinct(chosen, "base_model" if "base_model" in chosen.columns else "model"),
        sel.infrastructure,
    )
    split = "base_model" in chosen.columns and (chosen["model"] != chosen["base_model"]).any()
    unit = ("system", "systems") if split else ("model", "models")
    st.caption(
        f"{_ui.plural(chosen.height, 'trajectory', 'trajectories')} · "
        f"{_ui.plural(chosen['model'].n_unique(), *unit)} · "
        f"{_ui.plural(chosen['task'].n_unique(), 'task')} · data version {pin.version}"
    )
    _ui.share_button(ws, PAGE, PREFIX, pin)
    tabs = _ui.url_tabs(list(USES), "cmp_tab")
    open_tab = next((label for label, tab in tabs.items() if tab.open), "Leaderboard")
    cfg = settings(_ui.distinct(chosen, "model"), open_tab, _ui.default_k_values(chosen))
    sections = {
        "Leaderboard": leaderboard,
        "pass@k": pass_at_k,
        "Pairwise": pairwise,
        "What changed": lambda pin, sel, cfg: _ui.changes_section(ws, pin),
        "Rewards": rewards,
        "Cost": lambda pin, sel, cfg: _ui.cost_section(ws, pin, sel, cfg, palette),
        "Reliability": lambda pin, sel, cfg: _ui.reliability_section(ws, pin, sel, cfg, palette),
        "Planner": lambda pin, sel, cfg: _ui.planner_section(ws, pin, sel, cfg, palette),
        "Export": export,
        "Runs file": runs_file,
    }
    for label, tab in tabs.items():
        if tab.open:  # lazy: only the selected tab computes
            with tab, _ui.guard():
                sections[label](pin, sel, cfg)
