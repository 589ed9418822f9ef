"""Sweeps: configure (every SweepConfig field), preview, launch; list and control sweeps.

Only executor presets from the server-side config can be chosen; the browser
never sends a command. URL state: ``swp_sweep`` (the sweep the controls act on).
"""

import streamlit as st

from fle_core import sweeps
from fle_core.sweeps import config as sweep_config
from fle_core.sweeps.config import SweepConfig
from pages import _ui

ws = _ui.workspace()
_ui.restore_params("swp_")
ops = _ui.sweep_ops(ws)  # the session's one control store
ro = _ui.read_only(ws)
st.title("Sweeps")
if ro:
    _ui.read_only_note()


def config_form() -> SweepConfig | None:
    """Every ``SweepConfig`` field; returns a validated config (errors shown inline)."""
    demo = sweep_config.demo_config()
    presets = {p["name"]: p for p in sweeps.executor_presets(ws)}
    registry = ws.task_registry()
    c1, c2 = st.columns(2)
    name = c1.text_input("Name", "my-sweep", key="new_name")
    executor = c2.selectbox(
        "Executor preset",
        list(presets),
        key="new_executor",
        index=list(presets).index("simulate") if "simulate" in presets else 0,
        help="Presets are defined on the server ([executors.NAME] in config.toml).",
    )
    _ui.preset_caption(presets.get(executor))
    known = sorted(set(demo.models) | set(_ui.known_models(ws)))
    models = st.multiselect(
        "Models",
        known,
        default=demo.models,
        key="new_models",
        help="Models seen in this workspace; add others in the box beside it.",
    )
    extra = st.text_input(
        "Other models (comma separated, exactly as the executor expects)",
        "",
        key="new_models_extra",
        placeholder="e.g. openai/gpt-4.1, anthropic/claude-sonnet-4",
    )
    models = list(dict.fromkeys([*models, *_ui.split_tags(extra)]))
    tasks = st.multiselect(
        "Tasks", sorted(registry.tasks), default=demo.tasks, key="new_tasks", format_func=_ui.task_name
    )
    c1, c2, c3, c4 = st.columns(4)
    trials = c1.number_input("Trials per config", 1, 10_000, 2, key="new_trials")
    max_conc = c2.number_input("Max concurrent jobs", 1, 1024, 2, key="new_conc")
    timeout = c3.number_input("Timeout per job (s)", 1, 7 * 86400, 3600, step=60, key="new_timeout")
    source = c4.selectbox("Source jobs write to", sorted(ws.sources()), key="new_source")
    with st.expander("Grid, retries, order, W&B"):
        grid_text = st.text_area(
            "Parameter grid (TOML, one parameter per line)",
            "",
            placeholder='temperature = [0.0, 0.7]\nprompt = ["v1", "v2"]',
            key="new_grid",
        )
        c1, c2, c3 = st.columns(3)
        retries = c1.number_input("Max retries", 0, 100, 2, key="new_retries")
        backoff = c2.number_input("Retry backoff (s)", 0.0, 3600.0, 5.0, key="new_backoff")
        backoff_max = c3.number_input("Backoff cap (s)", 0.0, 86400.0, 300.0, key="new_backoff_max")
        c1, c2, c3 = st.columns(3)
        order = c1.radio("Run order", ["task_inner", "shuffled"], key="new_order", horizontal=True)
        seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="new_seed")
        early = c3.toggle("Stop a config early once it succeeds", key="new_early")
        c1, c2, c3 = st.columns(3)
        wandb = c1.toggle("Log to W&B", key="new_wandb")
        project = c2.text_input("W&B project", "", key="new_project", disabled=not wandb)
        tags = c3.text_input("Tags (comma separated)", "", key="new_tags")
        confirm = st.checkbox(f"Allow more than {sweep_config.LARGE_SWEEP_CELLS:,} jobs", key="new_confirm")
    with _ui.guard():
        return SweepConfig(
            name=name,
            models=models,
            tasks=tasks,
            num_trials_per_config=int(trials),
            grid=_ui.parse_grid(grid_text),
            executor=executor,
            source=source,
            max_concurrent=int(max_conc),
            timeout_s=float(timeout),
            max_retries=int(retries),
            retry_backoff_s=float(backoff),
            retry_backoff_max_s=float(backoff_max),
            early_stop_on_success=early,
            order=order,
            seed=int(seed),
            wandb=wandb,
            wandb_project=project or None,
            tags=_ui.split_tags(tags),
            confirm_large=confirm,
        )
    return None


def preview_and_launch(cfg: SweepConfig) -> None:
    perms = cfg.num_permutations()
    st.info(
        f"**{cfg.num_cells():,} jobs**: {len(cfg.models)} models × {len(cfg.tasks)} tasks × "
        f"{perms} grid permutation{'s' if perms != 1 else ''} × {cfg.num_trials_per_config} "
        f"trial{'s' if cfg.num_trials_per_config != 1 else ''}, executor `{cfg.executor}`, "
        f"at most {cfg.max_concurrent} at once.",
        icon=":material/grid_view:",
    )
    if ro:
        return
    on_slurm = st.radio("Run it with", ["Local runner", "Slurm pilots"], key="new_run_on", horizontal=True)
    if on_slurm == "Slurm pilots":
        c1, c2 = st.columns(2)
        pilots = c1.number_input("Pilots (one Slurm job array)", 1, 1000, 2, key="new_pilots")
        per_pilot = c2.number_input("Jobs per pilot at once", 1, 64, 1, key="new_jobs_per_pilot")
        _ui.slurm_caption(ws)
    else:
        start_runner = st.checkbox("Start a runner if none is alive", value=True, key="new_runner")
    if st.button("Launch sweep", type="primary", icon=":material/rocket_launch:"):
        with _ui.guard():
            sweep_id = ops.launch(cfg)
            st.session_state["swp_sweep"] = sweep_id
            if on_slurm == "Slurm pilots":
                _ui.submit_pilots_for(ws, sweep_id, int(pilots), int(per_pilot))
            else:
                pid = ops.ensure_runner() if start_runner else None
                st.success(f"Launched `{sweep_id}`" + (f"; started runner pid {pid}" if pid else "") + ".")
            st.page_link(
                "pages/monitor.py",
                label="Watch it on Monitor",
                icon=":material/monitor_heart:",
                query_params={"mon_sweep": sweep_id},
            )


def done(message: str) -> None:
    """Redraw the page so the table shows the new state; the toast survives the rerun."""
    st.session_state["_swp_toast"] = message
    st.rerun()


def sweep_list() -> None:
    if "_swp_toast" in st.session_state:
        st.toast(st.session_state.pop("_swp_toast"))
    sweep_table = ops.list_sweeps()
    if sweep_table.is_empty():
        _ui.empty_state(
            "No sweeps yet.",
            ["Configure one above and press **Launch sweep**.", "Or use the demo button on **Overview**."],
        )
        return
    _ui.table(_ui.sweeps_view(sweep_table), _ui.SWEEP_COLUMNS)
    ids = sweep_table["sweep_id"].to_list()
    sweep_id = _ui.url_select("Sweep", "swp_sweep", ids, ids[0])
    st.caption(_ui.sweep_facts(sweep_table, sweep_id))
    if ro:
        return
    run = {"Resume": ops.resume, "Retry failed": ops.retry_failed, "Pause": ops.pause}
    state = ops.status(sweep_id)
    offered = sweeps.available_actions(state)  # none on a completed sweep without failures
    actions = {label: op for label, op in run.items() if label in offered}
    cols = st.columns(len(run) + 2)  # fixed slots: the last two hold Cancel and Monitor
    for col, (label, op) in zip(cols, actions.items(), strict=False):
        if col.button(label, key=f"op_{label}"):
            with _ui.guard():
                queued = op(sweep_id)
                if label != "Pause":
                    ops.ensure_runner()
                done(_ui.action_text(label, sweep_id, queued, ops.status(sweep_id)))
    if "Cancel" in offered and cols[-2].button("Cancel…", key="op_cancel"):
        st.session_state["_confirm_cancel"] = sweep_id
    if "Cancel" in offered and st.session_state.get("_confirm_cancel") == sweep_id:
        st.warning(f"Cancel `{sweep_id}`? Running jobs are killed; completed cells are kept.")
        yes, no = st.columns([1, 1], width=360)
        if no.button("Keep it running", key="op_cancel_no"):
            st.session_state.pop("_confirm_cancel", None)
            st.rerun()
        if yes.button("Yes, cancel it", type="primary", key="op_cancel_yes"):
            with _ui.guard():
                ops.cancel(sweep_id)
                st.session_state.pop("_confirm_cancel", None)
                done(f"Cancelled `{sweep_id}`")
    if not offered:
        cols[0].caption(f"Nothing to do: the sweep is {state.status}.")
    cols[-1].page_link(
        "pages/monitor.py",
        label="Monitor",
        icon=":material/monitor_heart:",
        query_params={"mon_sweep": sweep_id},
    )


with _ui.guard():
    st.subheader("New sweep")
    cfg = config_form()
    if cfg is not None:
        preview_and_launch(cfg)
    st.subheader("All sweeps")
    sweep_list()
