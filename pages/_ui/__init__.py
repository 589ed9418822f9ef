"""The app's UI layer, the one module pages import: workspace, caching, URL state, widgets.

Pages import this module and ``fle_core``; nothing in ``fle_core`` imports
streamlit. Rules kept here so pages stay thin:

* **Workspace**: ``Workspace.open`` with Streamlit secrets passed in (source
  passwords), opened per run (cheap) so config edits show up at once.
* **Caching**: every query result is cached with ``st.cache_data`` keyed on the
  warehouse data version (or the version a shared view pins), so a new sync
  invalidates exactly what changed. No DuckDB connection is held open between
  runs: the sync process must be able to take the write lock.
* **Errors**: ``guard()`` renders a ``FleError`` as message + hint, never a
  traceback. Anything else is a bug and propagates.
* **URL state**: ``url_*`` widgets read their initial value from
  ``st.query_params`` (keys prefixed per page), validate it (bad or stale values
  give a clear warning and fall back to defaults) and write the value back, so
  copying the URL reproduces the view.
* **Permalinks**: ``apply_view`` / ``share_button`` over ``fle_core.saved_views``.
* **Read-only mode**: ``FLE_READ_ONLY=1`` or ``[app] read_only = true`` hides
  every action that runs or changes something (launch, sync, resume, cancel).

The package's modules, each under the pages' size limit: ``core``
(workspace, read-only, errors, empty states), ``state`` (URL state, shared
views), ``data`` (cached loaders and computations), ``widgets`` (shared
renderers), ``frames`` (pure display shaping, no Streamlit), ``labels`` (names as
shown: the one short-name rule), ``notes`` (pure
words that explain a figure: plurals, captions, toasts), ``sweep_views`` (runner
health, sweep progress, the cell grid), ``runs`` (the
runs-file comparison section of Compare), ``changes`` (Compare's "What
changed" tab and its leaderboard export), ``infra`` (the infrastructure-failure
switch every metric page shares), ``reliability`` (Compare's cost, reliability
and planner panels) and ``uncertainty_data`` (their cached computations). Pages import
only this facade; the names below are the whole of it.
"""

# Imported here, before a page builds a chart (pages with charts import this package first):
# Altair looks pandas up in sys.modules without importing it, and while one session's thread
# was still importing pandas (Streamlit's st.dataframe imports it lazily), another session
# building a chart read the half-initialized module and failed ("partially initialized module
# 'pandas' has no attribute 'Timestamp'"). Two browser tabs opened at once did it.
import pandas  # type: ignore[import-untyped]  # noqa: F401

from pages._ui import uncertainty_data as uncertainty_data  # registers its computations
from pages._ui.changes import changes_section, leaderboard_export
from pages._ui.control import SweepOps, control_store, sweep_ops
from pages._ui.core import (
    data_version,
    empty_state,
    guard,
    read_only,
    read_only_note,
    simulated_badge,
    stop_if_unsynced,
    workspace,
)
from pages._ui.data import (
    SYSTEMS,
    Selection,
    catalog,
    compute,
    distinct,
    fetch_step_detail,
    known_models,
    palette,
    pilots,
    select,
    step_detail_if_synced,
    summaries,
    trajectory_steps,
)
from pages._ui.demo import remove_demo_section, simulated_share, simulated_switch
from pages._ui.frames import (
    fmt,
    parse_grid,
    plain,
    same_task,
    sources_view,
    split_tags,
    sweep_facts,
    sweeps_view,
    sync_result_text,
    to_csv,
    trajectory_row,
)
from pages._ui.infra import infrastructure_switch, rule_sentence, rule_suffix
from pages._ui.labels import model_name, short_names, task_name, trajectory_labels
from pages._ui.logs import failure_counts, fetch_transcript, inspect_log_path, inspect_sample
from pages._ui.notes import (
    K_OPTIONS,
    action_text,
    default_k_values,
    headline,
    interval_caption,
    passk_caption,
    passk_coverage_note,
    plural,
    sample_tokens_text,
    zero_width_models,
)
from pages._ui.reliability import (
    POPULATIONS,
    cost_section,
    planner_section,
    population_setting,
    reliability_section,
)
from pages._ui.runs import runs_file_section
from pages._ui.state import (
    Pin,
    apply_view,
    drop_params,
    param_notices,
    restore_params,
    set_param,
    share_button,
    url_int,
    url_ints,
    url_multiselect,
    url_select,
    url_tabs,
    url_text,
)
from pages._ui.sweep_views import (
    PILOT_COLUMNS,
    cells_view,
    pilot_table,
    runner_health,
    status_fraction,
    status_text,
)
from pages._ui.systems import config_options, config_text, several_systems
from pages._ui.tables import table
from pages._ui.uncertainty_data import comparison_markdown
from pages._ui.widgets import (
    LEADERBOARD_COLUMNS,
    SOURCE_COLUMNS,
    SWEEP_COLUMNS,
    failure_note,
    failure_title,
    grid_chart,
    guarded,
    leaderboard_view,
    live,
    markdown_preview,
    number_columns,
    preset_caption,
    progress_callback,
    slurm_caption,
    status_counts,
    stopped_cells,
    submit_pilots_for,
    suite_notes,
)

__all__ = [
    "K_OPTIONS",
    "LEADERBOARD_COLUMNS",
    "PILOT_COLUMNS",
    "POPULATIONS",
    "SOURCE_COLUMNS",
    "SWEEP_COLUMNS",
    "SYSTEMS",
    "Pin",
    "Selection",
    "SweepOps",
    "action_text",
    "apply_view",
    "catalog",
    "cells_view",
    "changes_section",
    "comparison_markdown",
    "compute",
    "config_options",
    "config_text",
    "control_store",
    "cost_section",
    "data_version",
    "default_k_values",
    "distinct",
    "drop_params",
    "empty_state",
    "failure_counts",
    "failure_note",
    "failure_title",
    "fetch_step_detail",
    "fetch_transcript",
    "fmt",
    "grid_chart",
    "guard",
    "guarded",
    "headline",
    "infrastructure_switch",
    "inspect_log_path",
    "inspect_sample",
    "interval_caption",
    "known_models",
    "leaderboard_export",
    "leaderboard_view",
    "live",
    "markdown_preview",
    "model_name",
    "number_columns",
    "palette",
    "param_notices",
    "parse_grid",
    "passk_caption",
    "passk_coverage_note",
    "pilot_table",
    "pilots",
    "plain",
    "planner_section",
    "plural",
    "population_setting",
    "preset_caption",
    "progress_callback",
    "read_only",
    "read_only_note",
    "reliability_section",
    "remove_demo_section",
    "restore_params",
    "rule_sentence",
    "rule_suffix",
    "runner_health",
    "runs_file_section",
    "same_task",
    "sample_tokens_text",
    "select",
    "set_param",
    "several_systems",
    "share_button",
    "short_names",
    "simulated_badge",
    "simulated_share",
    "simulated_switch",
    "slurm_caption",
    "sources_view",
    "split_tags",
    "status_counts",
    "status_fraction",
    "status_text",
    "step_detail_if_synced",
    "stop_if_unsynced",
    "stopped_cells",
    "submit_pilots_for",
    "suite_notes",
    "summaries",
    "sweep_facts",
    "sweep_ops",
    "sweeps_view",
    "sync_result_text",
    "table",
    "task_name",
    "to_csv",
    "trajectory_labels",
    "trajectory_row",
    "trajectory_steps",
    "url_int",
    "url_ints",
    "url_multiselect",
    "url_select",
    "url_tabs",
    "url_text",
    "workspace",
    "zero_width_models",
]
