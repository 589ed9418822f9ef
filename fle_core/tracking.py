"""Weights & Biases tracking: job runs, sweep summaries and analysis logging.

Three promises, because tracking is a side channel and must never hurt the
work it observes:

* **Never raises into the caller.** Any W&B failure (bad key, no network, a
  bad directory, a wandb bug) is logged as a warning and the function returns
  ``None``. A job's success never depends on W&B.
* **Offline without a key.** With no ``WANDB_API_KEY`` and no netrc login for
  the W&B host, runs are written in offline mode to ``<dir>/wandb/offline-run-*``
  and can be uploaded later with ``wandb sync``. An explicit ``mode`` or
  ``WANDB_MODE`` is respected.
* **No secrets.** Config holds only the values passed in; URL passwords and
  secret-looking keys in ``params`` are masked; console capture, code saving,
  git and machine metadata collection are off (they could capture command
  lines, environment or output that carry secrets).

Every key is documented in ``docs/wandb.md``. ``read_offline_run`` decodes an
offline run's ``.wandb`` file so tests (and users) can check what was logged
without uploading it.
"""

from __future__ import annotations

import json
import logging
import math
import netrc
import os
import re
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from fle_core.workspace import mask_url

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "fle-eval"
MAX_TAG_LEN = 64  # W&B rejects longer tags
_SECRET_KEY = re.compile(r"pass|secret|token|api[_-]?key|credential|auth", re.IGNORECASE)


# ---------------------------------------------------------------------------
# Mode, settings, safety helpers
# ---------------------------------------------------------------------------


def has_api_key() -> bool:
    """True when W&B could authenticate: ``WANDB_API_KEY`` or a netrc login for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return bool(netrc.netrc(path).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str | None = None) -> str:
    """``mode`` if given, else ``$WANDB_MODE``, else online with a key, offline without."""
    chosen = mode or os.environ.get("WANDB_MODE")
    if chosen:
        return chosen
    return "online" if has_api_key() else "offline"


def _settings():
    import wandb

    timeout = float(os.environ.get("FLE_WANDB_INIT_TIMEOUT", "60"))
    return wandb.Settings(console="off", save_code=False, disable_git=True, x_disable_meta=True,
                          x_disable_stats=True, x_disable_machine_info=True, silent=True,
                          init_timeout=timeout)


def safe_config(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` with URL passwords and secret-looking keys masked."""
    if isinstance(value, Mapping):
        return {str(k): ("***" if _SECRET_KEY.search(str(k)) else safe_config(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [safe_config(v) for v in value]
    if isinstance(value, str):  # only URLs with credentials are rewritten
        return mask_url(value) if "://" in value and "@" in value else value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def _tags(*groups: Iterable[str] | None) -> list[str]:
    """De-duplicated tags, each cut to W&B's 64-character limit (full values are in config)."""
    out: list[str] = []
    for group in groups:
        for tag in group or ():
            tag = str(tag)[:MAX_TAG_LEN]
            if tag and tag not in out:
                out.append(tag)
    return out


def _init(*, project: str | None, name: str | None, tags: list[str], config: dict,
          mode: str | None, wandb_dir: str | os.PathLike | None, group: str | None = None,
          job_type: str | None = None):
    """``wandb.init`` with our settings; raises (callers catch) on any failure."""
    import wandb

    kwargs: dict[str, Any] = {}
    if wandb_dir is not None:
        Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        kwargs["dir"] = str(wandb_dir)
    return wandb.init(project=project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
                      name=name, tags=tags, config=config, mode=resolve_mode(mode), group=group,
                      job_type=job_type, reinit="create_new", settings=_settings(), **kwargs)


def _run_dir(run) -> str:
    sync_dir = getattr(run.settings, "sync_dir", None)
    return str(sync_dir) if sync_dir else str(Path(run.dir).parent)


def _warn(what: str, exc: BaseException) -> None:
    text = mask_url(str(exc)) if "://" in str(exc) else str(exc)
    log.warning("W&B %s failed (%s: %s); continuing without it", what, type(exc).__name__,
                text[:300])


def _finish_quietly(run) -> None:
    """Finish, then wait (bounded) until the run file holds its exit record.

    wandb-core writes the ``.wandb`` file asynchronously: ``finish()`` can
    return before the last records are on disk. Waiting here means that when a
    logging call returns, its values are durable (and a runner may exit).
    """
    try:
        run_dir = _run_dir(run)
        run.finish()
    except Exception as exc:  # noqa: BLE001 - W&B must never fail the caller
        _warn("finish", exc)
        return
    deadline = time.monotonic() + float(os.environ.get("FLE_WANDB_FLUSH_TIMEOUT", "15"))
    while not _has_exit_record(run_dir):
        if time.monotonic() > deadline:
            log.warning("W&B run file in %s not flushed yet; it may be incomplete", run_dir)
            return
        time.sleep(0.05)


def _has_exit_record(run_dir: str) -> bool:
    from wandb.proto import wandb_internal_pb2 as pb

    try:
        files = list(Path(run_dir).glob("run-*.wandb"))
        if not files:
            return False
        for data in _log_records(files[0].read_bytes()):
            rec = pb.Record()
            rec.ParseFromString(data)
            if rec.WhichOneof("record_type") == "exit":
                return True
    except Exception:  # noqa: BLE001 - a half-written file: not flushed yet
        return False
    return False


def _cell(value: Any) -> Any:
    """A table cell W&B can serialize: lists → text, NaN/inf → None, dates → ISO."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def to_wandb_table(frame: pl.DataFrame):
    """A ``wandb.Table`` with the frame's columns and rows (cells made serializable)."""
    import wandb

    rows = [[_cell(v) for v in row] for row in frame.iter_rows()]
    return wandb.Table(columns=list(frame.columns), data=rows)


def _key(part: Any) -> str:
    """One segment of a metric key: ``/`` would start a new W&B section, so it becomes ``_``."""
    return str(part).replace("/", "_")


# ---------------------------------------------------------------------------
# Runner-facing functions
# ---------------------------------------------------------------------------


def log_job_run(*, sweep_id: str, model: str, task: str, trial: int, version: int,
                attempt: int, retry_count: int, completion_status: str,
                params: Mapping[str, Any] | None = None, steps: pl.DataFrame | None = None,
                tags: Iterable[str] | None = None, project: str | None = None,
                wandb_dir: str | os.PathLike | None = None, quota: float | None = None,
                success: bool | None = None, simulated: bool | None = None,
                mode: str | None = None) -> str | None:
    """One W&B run for one sweep job (attempt). Returns the run directory, or None.

    ``steps`` has columns ``depth, value, total_tokens`` (one row per step).
    Config: sweep_id, model, task, trial, version, attempt, retry_count,
    completion_status, params. Tags: ``sweep:{id}``, ``model:{m}``, ``task:{t}``,
    ``status:{s}`` plus ``tags``. History (``step`` = depth): reward, tokens,
    cumulative_tokens, depth. Summary: final_reward, best_reward, steps,
    total_tokens, and success / quota / first_success_step when a quota is known
    (``quota`` argument, else the default task registry) or ``success`` is given.
    ``simulated`` (or a ``simulated`` column in ``steps``) adds config
    ``simulated`` and the tag ``simulated``, so simulated runs are labelled in W&B.
    """
    try:
        if simulated is None and steps is not None and "simulated" in steps.columns:
            simulated = bool(steps["simulated"].fill_null(False).any())
        frame = _steps_frame(steps)
        config = {"sweep_id": sweep_id, "model": model, "task": task, "trial": trial,
                  "version": version, "attempt": attempt, "retry_count": retry_count,
                  "completion_status": completion_status, "params": safe_config(dict(params or {}))}
        if simulated is not None:
            config["simulated"] = bool(simulated)
        run = _init(project=project, name=f"{model} | {task} | trial {trial} | v{version}",
                    tags=_tags([f"sweep:{sweep_id}", f"model:{model}", f"task:{task}",
                                f"status:{completion_status}"],
                               ["simulated"] if simulated else None, tags),
                    config=config, mode=mode, wandb_dir=wandb_dir, group=str(sweep_id),
                    job_type="trajectory")
    except Exception as exc:  # noqa: BLE001
        _warn("job run", exc)
        return None
    try:
        _log_history(run, frame)
        run.summary.update(_job_summary(frame, task, quota, success))
        return _run_dir(run)
    except Exception as exc:  # noqa: BLE001
        _warn("job run logging", exc)
        return None
    finally:
        _finish_quietly(run)


def _steps_frame(steps: pl.DataFrame | None) -> pl.DataFrame:
    """Sorted steps with float ``value`` and int ``total_tokens`` (missing → 0 rows/cols)."""
    if steps is None or steps.height == 0:
        return pl.DataFrame({"depth": [], "value": [], "total_tokens": []},
                            schema={"depth": pl.Float64, "value": pl.Float64, "total_tokens": pl.Int64})
    frame = steps.select(
        pl.col("depth").cast(pl.Float64),
        pl.col("value").cast(pl.Float64),
        (pl.col("total_tokens") if "total_tokens" in steps.columns else pl.lit(None))
        .cast(pl.Int64).fill_null(0).alias("total_tokens"),
    )
    return frame.sort("depth", nulls_last=True)


def _log_history(run, frame: pl.DataFrame) -> None:
    depths = frame["depth"].to_list()
    integral = all(d is not None and float(d).is_integer() for d in depths) and \
        len(set(depths)) == len(depths) and all(d >= 0 for d in depths)
    cumulative = 0
    for i, row in enumerate(frame.iter_rows(named=True)):
        cumulative += int(row["total_tokens"])
        step = int(row["depth"]) if integral else i
        value = row["value"]
        run.log({"reward": None if value is None or not math.isfinite(value) else value,
                 "tokens": int(row["total_tokens"]), "cumulative_tokens": cumulative,
                 "depth": row["depth"]}, step=step)


def _job_summary(frame: pl.DataFrame, task: str, quota: float | None,
                 success: bool | None) -> dict[str, Any]:
    values = [v for v in frame["value"].to_list() if v is not None and math.isfinite(v)]
    summary: dict[str, Any] = {
        "steps": frame.height,
        "final_reward": values[-1] if values else None,
        "best_reward": max(values) if values else None,
        "total_tokens": int(frame["total_tokens"].sum()),
    }
    if quota is None:
        from fle_core.tasks import TaskRegistry, normalize_task_key

        quota = TaskRegistry().quota(normalize_task_key(task))
    if quota is not None:
        summary["quota"] = float(quota)
        hits = frame.filter(pl.col("value") >= quota)
        summary["first_success_step"] = float(hits["depth"].min()) if hits.height else None
        if success is None and values:
            success = max(values) >= quota
    if success is not None:
        summary["success"] = bool(success)
    return summary


def log_sweep_summary(*, sweep_id: str, name: str, table: pl.DataFrame,
                      tags: Iterable[str] | None = None, project: str | None = None,
                      wandb_dir: str | os.PathLike | None = None,
                      mode: str | None = None) -> str | None:
    """One summary run for a sweep with its model × task table. Returns the run dir or None.

    ``table`` is any frame with one row per (model, task), e.g. ``group_metrics``
    output; it is logged as ``sweep_summary`` (a ``wandb.Table``). Summary keys:
    ``rows``, ``models``, ``tasks``, and ``n`` / ``successes`` / ``success_rate``
    when the frame has ``n`` and ``successes`` columns.
    """
    try:
        run = _init(project=project, name=f"sweep {name} summary",
                    tags=_tags([f"sweep:{sweep_id}", "sweep-summary"], tags),
                    config={"sweep_id": sweep_id, "sweep_name": name}, mode=mode,
                    wandb_dir=wandb_dir, group=str(sweep_id), job_type="sweep_summary")
    except Exception as exc:  # noqa: BLE001
        _warn("sweep summary run", exc)
        return None
    try:
        run.log({"sweep_summary": to_wandb_table(table)})
        run.summary.update(_table_summary(table))
        return _run_dir(run)
    except Exception as exc:  # noqa: BLE001
        _warn("sweep summary logging", exc)
        return None
    finally:
        _finish_quietly(run)


def _table_summary(table: pl.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": table.height}
    for col in ("model", "task"):
        if col in table.columns:
            out[f"{col}s"] = table[col].n_unique()
    if {"n", "successes"} <= set(table.columns):
        n, k = int(table["n"].sum()), int(table["successes"].sum())
        out.update(n=n, successes=k, success_rate=(k / n if n else None))
    return out


# ---------------------------------------------------------------------------
# WandBLogger (the old framework's class, plus analysis logging)
# ---------------------------------------------------------------------------


class WandBLogger:
    """One W&B run for an analysis session; every method is a no-op after a failure.

    Methods return True when the values were handed to W&B and None when W&B is
    unavailable or failed (a warning is logged). Keys (see docs/wandb.md):
    ``perf/{model}/{task|all}/{metric}``, ``trajectory/v{version}_i{instance}/…``,
    ``tables/{name}``, ``tables/comparisons``, ``tables/pass_at_k``,
    ``charts/pass_at_k``, ``pass_at_k/{model}/k{k}``, ``charts/{name}``; on
    ``finish()`` the accumulated ``tables/performance_metrics``.
    """

    def __init__(self, project: str | None = None, run_name: str | None = None,
                 tags: Iterable[str] | None = None, config: Mapping[str, Any] | None = None,
                 mode: str | None = None, dir: str | os.PathLike | None = None):  # noqa: A002
        self._perf_rows: list[dict[str, Any]] = []
        self._traj_prefixes: set[str] = set()
        self.run_dir: str | None = None
        try:
            self.run = _init(project=project, name=run_name, tags=_tags(tags),
                             config=safe_config(dict(config or {})), mode=mode, wandb_dir=dir,
                             job_type="analysis")
            self.run_dir = _run_dir(self.run)
        except Exception as exc:  # noqa: BLE001
            _warn("init", exc)
            self.run = None

    @property
    def active(self) -> bool:
        return self.run is not None

    def _log(self, what: str, payload: dict[str, Any], summary: dict[str, Any] | None = None):
        if self.run is None:
            return None
        try:
            if payload:
                self.run.log(payload)
            if summary:
                self.run.summary.update(summary)
            return True
        except Exception as exc:  # noqa: BLE001
            _warn(what, exc)
            return None

    def log_performance_metrics(self, metrics: Any, model: str, task: str | None = None):
        """Numeric fields of ``metrics`` (``to_dict()``, dataclass or dict) under
        ``perf/{model}/{task or 'all'}/{name}``; also kept for the performance table."""
        try:
            data = _as_dict(metrics)
        except Exception as exc:  # noqa: BLE001
            _warn("performance metrics", exc)
            return None
        prefix = f"perf/{_key(model)}/{_key(task or 'all')}"
        flat = _flatten(data)
        numeric = {f"{prefix}/{k}": float(v) for k, v in flat.items() if _finite_number(v)}
        self._perf_rows.append({"model": model, "task": task or "all",
                                **{k: _cell(v) for k, v in flat.items()}})
        return self._log("performance metrics", numeric, numeric)

    def log_trajectory_progress(self, version: int, instance: int, step: float, reward: float,
                                model: str, task: str | None = None, **extra: Any):
        """One step of one trajectory: ``trajectory/v{version}_i{instance}/reward`` against
        its own ``…/step`` axis, plus numeric ``extra`` values under the same prefix."""
        if self.run is None:
            return None
        prefix = f"trajectory/v{_key(version)}_i{_key(instance)}"
        try:
            if prefix not in self._traj_prefixes:
                self.run.define_metric(f"{prefix}/step")
                self.run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/step")
                self._traj_prefixes.add(prefix)
        except Exception as exc:  # noqa: BLE001
            _warn("trajectory axis", exc)
            return None
        payload = {f"{prefix}/step": step, f"{prefix}/reward": reward}
        payload.update({f"{prefix}/{_key(k)}": v for k, v in extra.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
        labels = {f"{prefix}/model": model, f"{prefix}/task": task}
        return self._log("trajectory progress", payload, labels)

    def log_metrics_table(self, name: str, frame: pl.DataFrame):
        """``frame`` as the ``wandb.Table`` ``tables/{name}``."""
        return self._table(f"tables/{_key(name)}", frame)

    def log_comparison_table(self, frame: pl.DataFrame):
        """A ``pairwise_comparisons`` frame as ``tables/comparisons``."""
        return self._table("tables/comparisons", frame)

    def log_pass_at_k(self, frame: pl.DataFrame):
        """pass@k (columns model, k, estimate, ci_low, ci_high): the table
        ``tables/pass_at_k``, a native line chart ``charts/pass_at_k`` and summary
        scalars ``pass_at_k/{model}/k{k}``."""
        if self.run is None:
            return None
        try:
            import wandb

            table = to_wandb_table(frame)
            chart = wandb.plot.line(table, "k", "estimate", stroke="model", title="pass@k")
            scalars = {f"pass_at_k/{_key(r['model'])}/k{int(r['k'])}": r["estimate"]
                       for r in frame.iter_rows(named=True) if _finite_number(r["estimate"])}
        except Exception as exc:  # noqa: BLE001
            _warn("pass@k", exc)
            return None
        return self._log("pass@k", {"tables/pass_at_k": table, "charts/pass_at_k": chart}, scalars)

    def log_chart(self, name: str, chart: Any, *, inline: bool = False):
        """An Altair chart (anything with ``to_html()``) as ``wandb.Html`` at ``charts/{name}``."""
        if self.run is None:
            return None
        try:
            import wandb

            html = _chart_html(chart, inline)
            return self._log("chart", {f"charts/{_key(name)}": wandb.Html(html)})
        except Exception as exc:  # noqa: BLE001
            _warn("chart", exc)
            return None

    def _table(self, key: str, frame: pl.DataFrame):
        if self.run is None:
            return None
        try:
            table = to_wandb_table(frame)
        except Exception as exc:  # noqa: BLE001
            _warn("table", exc)
            return None
        return self._log("table", {key: table})

    def finish(self):
        """Log the accumulated performance table and close the run (idempotent)."""
        if self.run is None:
            return None
        run, self.run = self.run, None
        try:
            if self._perf_rows:
                run.log({"tables/performance_metrics": to_wandb_table(_frame(self._perf_rows))})
        except Exception as exc:  # noqa: BLE001
            _warn("performance table", exc)
        _finish_quietly(run)
        return True

    def __enter__(self) -> "WandBLogger":
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting made flat: ``pass_at_k: {1: x}`` → ``pass_at_k/1``, and a
    2-number list/tuple (a confidence interval) → ``{key}/low``, ``{key}/high``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = _key(k)
        if isinstance(v, Mapping):
            out.update({f"{key}/{_key(sub)}": val for sub, val in v.items()})
        elif isinstance(v, (list, tuple)) and len(v) == 2 and \
                all(x is None or _finite_number(x) for x in v):
            out[f"{key}/low"], out[f"{key}/high"] = v
        else:
            out[key] = v
    return out


def _as_dict(metrics: Any) -> dict[str, Any]:
    if isinstance(metrics, Mapping):
        return dict(metrics)
    if hasattr(metrics, "to_dict"):
        return dict(metrics.to_dict())
    if is_dataclass(metrics):
        return asdict(metrics)
    raise TypeError(f"cannot read metrics from {type(metrics).__name__}")


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows with possibly different keys → one frame (missing cells null, mixed types as text)."""
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    data = {c: [row.get(c) for row in rows] for c in cols}
    try:
        return pl.DataFrame(data, strict=False)
    except Exception:  # noqa: BLE001 - mixed types: fall back to text columns
        return pl.DataFrame({c: [None if v is None else str(v) for v in vs] for c, vs in data.items()})


def _chart_html(chart: Any, inline: bool) -> str:
    """Altair's HTML. ``inline`` embeds the Vega JS (~0.9 MB, via vl-convert) so it
    renders with no network; the default loads it from a CDN (a few kB)."""
    return chart.to_html(inline=True) if inline else chart.to_html()


# ---------------------------------------------------------------------------
# Reading offline runs back (tests, and checking before `wandb sync`)
# ---------------------------------------------------------------------------


@dataclass
class OfflineRun:
    """What an offline run's ``.wandb`` file holds. ``history`` is one dict per step."""

    path: Path
    run_id: str = ""
    project: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def table(self, key: str) -> pl.DataFrame:
        """The logged ``wandb.Table`` under ``key`` (from ``files/media/table``)."""
        ref = self.summary.get(key)
        if not isinstance(ref, dict) or "path" not in ref:
            raise KeyError(f"no table logged under {key!r}")
        data = json.loads((self.path / "files" / ref["path"]).read_text())
        return pl.DataFrame(data["data"], schema=data["columns"], orient="row", strict=False)

    def file(self, key: str) -> Path:
        """The media file (HTML, table JSON) logged under ``key``."""
        return self.path / "files" / self.summary[key]["path"]


def read_offline_run(run_dir: str | os.PathLike) -> OfflineRun:
    """Decode ``run-*.wandb`` in ``run_dir`` (LevelDB-log framed protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    out = OfflineRun(run_dir)
    (wandb_file,) = run_dir.glob("run-*.wandb")
    for data in _log_records(wandb_file.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.run_id, out.project, out.name = r.run_id, r.project, r.display_name
            out.group, out.job_type, out.tags = r.run_group, r.job_type, list(r.tags)
            _apply_updates(out.config, r.config.update)
        elif kind == "config":
            _apply_updates(out.config, rec.config.update)
        elif kind == "summary":
            _apply_updates(out.summary, rec.summary.update)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply_updates(row, rec.history.item)
            out.history.append(row)
    out.config.pop("_wandb", None)
    return out


def _apply_updates(target: dict[str, Any], items) -> None:
    for item in items:
        keys = list(item.nested_key) or [item.key]
        node = target
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = json.loads(item.value_json)


_BLOCK = 32768
_HEADER = 7  # ":W&B" + 2-byte magic + 1-byte version


def _log_records(data: bytes) -> Iterator[bytes]:
    """Records of W&B's datastore: LevelDB log format (32 KiB blocks, 7-byte chunk headers)."""
    if data[:4] != b":W&B":
        raise ValueError("not a W&B datastore file")
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""
