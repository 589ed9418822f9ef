"""Benchmark: initial lean sync and incremental sync vs pandas and the raw-read floor.

Usage::

    uv run python bench/sync.py [--rows 1000000] [--reps 3] [--data-dir DIR] [--pg-url URL]
                                [--only sqlite|postgres] [--stages] [--csv-probe] [--write-results]

What it does, for SQLite and for Postgres:

1. generates an FLE-like ``programs`` table of ``--rows`` rows (trajectories of
   1..64 steps, FLE's column order, realistic text sizes: ``conversation_json``
   growing with depth to ~``--conv-kb`` KB, ``state_json``, ``code``, ``response``);
   the SQLite file is cached in ``--data-dir`` and reused when its row count
   matches; Postgres runs in a throwaway cluster started like the tests' one
   (or ``--pg-url``);
2. times, each in a fresh subprocess (so memory is measured per method):
   * **lean sync**: ``fle_core.warehouse.sync.sync`` into an empty warehouse;
   * **pandas**: ``pandas.read_sql`` of the same lean columns (sqlalchemy+psycopg
     for Postgres, sqlite3 for SQLite); it only reads, it writes nothing;
   * **floor**: ``psql \\copy (SELECT <same columns>) TO '/dev/null'`` or
     ``sqlite3 -csv DB 'SELECT <same columns>' > /dev/null``;
3. appends 10k rows to the source and times the incremental sync into the
   N-row warehouse (in-process ``sync()`` time and the CLI's wall time);
4. prints medians, ratios and the peak RSS of each child process, and with
   ``--write-results`` writes ``bench/RESULTS-sync.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fle_core.sources.programs_schema import insertable_columns, programs_ddl

COLS = insertable_columns("current")
# The programs columns a lean sync reads (see fle_core.sources.programs.LEAN_COLUMNS).
LEAN = [
    "id",
    "version",
    "instance",
    "depth",
    "value",
    "holdout_value",
    "raw_reward",
    "model",
    "prompt_token_usage",
    "completion_token_usage",
    "token_usage",
    "ticks",
    "created_at",
    "version_description",
    "meta",
    "achievements_json",
    "timing_metrics_json",
]
LEAN_SQL = f"SELECT {', '.join(LEAN)} FROM programs"
MODELS = ["gpt-4o", "claude-3-5-sonnet", "deepseek-v3", "gemini-2", "llama-3.3-70b", "gpt-4o-mini"]
TASKS = [
    "iron_ore_throughput",
    "iron_plate_throughput",
    "electronic_circuit_throughput",
    "steel_plate_throughput",
    "crude_oil_throughput",
    "automation_science_pack_throughput",
    "plastic_bar_throughput",
    "open_play",
]
_WORDS = [
    "place_entity",
    "Prototype.BurnerMiningDrill",
    "Position(x=12.5,y=-3.5)",
    "iron-ore",
    "inspect_inventory()",
    "print(",
    "craft_item",
    "harvest_resource",
    "nearest(Resource.IronOre)",
    "connect_entities",
    "Direction.UP",
    "assert",
    "sleep(10)",
    "electricity",
    "chest",
    "\\n",
    '{"role":"assistant","content":',
]
T0 = datetime(2025, 3, 1, 12, 0, 0)


# ------------------------------------------------------------------ data generation
def _pool(rng: random.Random, count: int, chars: int) -> list[str]:
    out = []
    for _ in range(count):
        words, size = [], 0
        while size < chars:
            w = rng.choice(_WORDS)
            words.append(w)
            size += len(w) + 1
        out.append(" ".join(words)[:chars])
    return out


TEXT_SCALE = 1.0  # --text-scale: multiplies state_json / code / response sizes


def generate(n: int, *, seed: int = 0, first_version: int = 1, conv_kb: float = 8.0):
    """Yield ``n`` row tuples in ``COLS`` order (no id); trajectories of 1..64 steps."""
    rng = random.Random(seed)
    conv = [_pool(rng, 8, int(conv_kb * 1024 * (d + 1) / 64)) for d in range(64)]  # grows with depth
    state, code, resp = (
        _pool(rng, k, max(1, int(c * TEXT_SCALE))) for k, c in ((32, 2048), (64, 600), (64, 400))
    )
    ach = [json.dumps({"static": {"iron-ore": 10 * d}, "dynamic": {"iron-plate": d}}) for d in range(64)]
    made, version = 0, first_version
    while made < n:
        model, task = MODELS[version % len(MODELS)], TASKS[(version // 6) % len(TASKS)]
        steps = min(rng.randint(1, 64), n - made)
        vd = f"model:{model}\ntype:{task}\nnum_agents:1"
        pid = rng.randrange(10_000, 99_999)
        start = T0 + timedelta(minutes=version)
        value, skill = 0.0, 0.2 + 0.1 * (version % len(MODELS))
        for d in range(steps):
            value = max(0.0, value + rng.gauss(skill, 0.8))
            err = "true" if rng.random() < 0.05 else "false"
            meta = (
                f'{{"model": "{model}", "process_id": "{pid}", "sweep_id": "bench", '
                f'"error_occurred": {err}, "version": {version}}}'
            )
            p, c = 1500 + 400 * d + rng.randrange(2000), 100 + rng.randrange(800)
            yield (
                code[rng.randrange(64)],
                round(value, 4),
                0,
                None,
                state[rng.randrange(32)],
                conv[d][rng.randrange(8)],
                c,
                p,
                p + c,
                resp[rng.randrange(64)],
                round(value * 0.97, 4),
                None if d % 3 else round(value, 4),
                version,
                vd,
                model,
                meta,
                ach[d],
                0,
                float(d),
                None,
                3600 * (d + 1),
                (start + timedelta(seconds=20 * d)).strftime("%Y-%m-%d %H:%M:%S"),
                None if d % 2 else '{"step_s": 12.5}',
            )
        made += steps
        version += 1


def sqlite_rows(path: Path) -> int:
    if not path.exists():
        return -1
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM programs").fetchone()[0]
    except sqlite3.OperationalError:
        return -1
    finally:
        con.close()


def build_sqlite(path: Path, n: int, conv_kb: float, first_version: int = 1, seed: int = 0) -> None:
    """Create (or append to) a SQLite source; executemany in 50k chunks."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute(programs_ddl("sqlite"))
    sql = f"INSERT INTO programs ({', '.join(COLS)}) VALUES ({', '.join('?' * len(COLS))})"
    buf = []
    for row in generate(n, seed=seed, first_version=first_version, conv_kb=conv_kb):
        buf.append(row)
        if len(buf) >= 50_000:
            con.executemany(sql, buf)
            con.commit()
            buf.clear()
    if buf:
        con.executemany(sql, buf)
    con.commit()
    con.close()


def build_pg(url: str, n: int, conv_kb: float, first_version: int = 1, seed: int = 0) -> None:
    import psycopg

    with psycopg.connect(url) as con:
        con.execute(programs_ddl("postgres"))
        with con.cursor() as cur, cur.copy(f"COPY programs ({', '.join(COLS)}) FROM STDIN") as cp:
            for row in generate(n, seed=seed, first_version=first_version, conv_kb=conv_kb):
                cp.write_row(row)
        con.commit()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM ANALYZE programs")


def drop_appended(url: str, n: int) -> None:
    """Remove the rows the incremental step appended, so the cached source stays N rows."""
    if url.startswith("sqlite"):
        con = sqlite3.connect(url[len("sqlite:///") :])
        with con:
            con.execute("DELETE FROM programs WHERE id > (SELECT min(id) - 1 + ? FROM programs)", [n])
        con.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute("DELETE FROM programs WHERE id > (SELECT min(id) - 1 + %s FROM programs)", [n])


def pg_rows(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url) as con:
            return con.execute("SELECT count(*) FROM programs").fetchone()[0]
    except psycopg.Error:
        return -1


def max_version(url: str) -> int:
    from fle_core.sources import programs
    from fle_core.workspace import SourceSpec

    return programs.max_version(SourceSpec("bench", url))


# ------------------------------------------------------------------ children (fresh processes)
def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def stages(url: str, work: Path) -> dict:
    """Sync's stages apart, one process: the ADBC read alone (re-batched, nothing written),
    then writing the same in-memory batches into an empty warehouse three ways, each batch
    one committed transaction: ``write_plain`` (INSERT of the bare lean columns),
    ``write_derived`` (sync's INSERT with derived columns + watermark, no trajectories),
    ``write_batch`` (sync's whole batch: + trajectories). Wall and CPU seconds."""
    from fle_core import warehouse
    from fle_core.sources import programs
    from fle_core.warehouse import _stream
    from fle_core.warehouse import sync as S
    from fle_core.workspace import SourceSpec, Workspace

    out, tables = {}, []
    with programs.connect(SourceSpec("bench", url)) as conn:
        cols = programs.column_types(conn)
        t, c = time.perf_counter(), _cpu()
        for tbl in _stream.rebatch(
            programs.lean_batches(conn, cols, 0, programs.max_id(conn)), S.DEFAULT_BATCH_ROWS
        ):
            tables.append(tbl)
        out["read"] = (time.perf_counter() - t, _cpu() - c)
    plain = (
        "INSERT INTO steps BY NAME SELECT 'bench' AS source, * EXCLUDE (created_at), "
        "TRY_CAST(created_at AS TIMESTAMP) AS created_at, 1 AS sync_id FROM _batch"
    )
    no_traj = S._refresh_trajectories
    for mode in ("write_plain", "write_derived", "write_batch"):
        ws = Workspace.open(work / f"stages-{mode}")
        with warehouse.write_lock(ws), warehouse.rw_connection(ws) as con:
            con.execute(f"SET threads = {S.DEFAULT_WRITER_THREADS}")
            run = S._Run("bench", 1, 0, 0)
            t, c = time.perf_counter(), _cpu()
            for tbl in tables:
                if mode == "write_plain":  # INSERT of the bare lean columns + COMMIT
                    con.register("_batch", tbl)
                    con.execute("BEGIN")
                    con.execute(plain)
                    con.execute("COMMIT")
                    con.unregister("_batch")
                else:
                    if mode == "write_derived":  # _write_batch without trajectories
                        S._refresh_trajectories = lambda *a: None
                    try:
                        S._write_batch(con, run, tbl)
                    finally:
                        S._refresh_trajectories = no_traj
            out[mode] = (time.perf_counter() - t, _cpu() - c)
        shutil.rmtree(ws.root, ignore_errors=True)
    return out


def csv_probe(url: str, work: Path) -> dict:
    """Postgres text COPY (CSV) vs ADBC's binary COPY, one process, per sync-sized id range
    (tried as a replacement read path, dropped: see RESULTS-sync.md). Wall and CPU seconds:
    ``adbc_read`` (sync's read, to Arrow); ``copy_csv_bytes`` (psycopg ``COPY (<lean
    select>) TO STDOUT (FORMAT csv)``, raw chunks into a buffer, nothing parsed);
    ``copy_csv_pyarrow`` (+ ``pyarrow.csv`` to Arrow); ``copy_csv_duckdb`` (+ a file per
    range, DuckDB ``read_csv`` to Arrow); ``insert_arrow`` / ``insert_csv`` (the same rows
    into an empty DuckDB file table with ``threads = 1``, from the ADBC Arrow tables / by
    ``read_csv`` of the files, + CHECKPOINT)."""
    import duckdb
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from fle_core.sources import programs
    from fle_core.warehouse import _stream
    from fle_core.warehouse import sync as S
    from fle_core.workspace import SourceSpec

    out, files, tables = {}, [], []
    with programs.connect(SourceSpec("bench", url)) as conn:
        cols = programs.column_types(conn)
        sql, top = programs.lean_select(conn, cols), programs.max_id(conn)
        bounds = _stream.chunk_bounds(0, top, pg_rows(url), S.DEFAULT_BATCH_ROWS)
        t, c = time.perf_counter(), _cpu()
        for lo, hi in bounds:
            tables += _stream.rebatch(programs.lean_batches(conn, cols, lo, hi), S.DEFAULT_BATCH_ROWS)
        out["adbc_read"] = (time.perf_counter() - t, _cpu() - c)
    names = ["_s", *programs.LEAN_COLUMNS]
    kinds = {
        "int": (pa.int64(), "BIGINT"),
        "real": (pa.float64(), "DOUBLE"),
        "text": (pa.string(), "VARCHAR"),
        "ts": (pa.timestamp("us"), "TIMESTAMP"),
    }
    typ = {"_s": kinds["int"], **{n: kinds[k] for n, (_, k) in programs.LEAN_COLUMNS.items()}}
    # Postgres CSV: NULL is an unquoted empty field, '' is "": only unquoted empties are NULL.
    csv_sql = (
        "SELECT * FROM read_csv($p, header = false, columns = $c, quote = '\"', escape = '\"', "
        "nullstr = '', allow_quoted_nulls = false, auto_detect = false)"
    )
    ducktypes = {n: d for n, (_, d) in typ.items()}
    pg = psycopg.connect(url, autocommit=True)
    pg.execute("SET DateStyle = 'ISO, YMD'")
    dk = duckdb.connect()
    for mode in ("copy_csv_bytes", "copy_csv_pyarrow", "copy_csv_duckdb"):
        t, c = time.perf_counter(), _cpu()
        for i, (lo, hi) in enumerate(bounds):
            pg.execute(
                "SELECT set_config('fle_sync.lo', %s, false) || set_config('fle_sync.hi', %s, false)",
                [str(lo), str(hi)],
            )
            buf = bytearray()
            with pg.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as cp:
                for chunk in cp:
                    buf += chunk
            if mode == "copy_csv_pyarrow":
                pcsv.read_csv(
                    pa.BufferReader(pa.py_buffer(buf)),
                    read_options=pcsv.ReadOptions(column_names=names),
                    parse_options=pcsv.ParseOptions(newlines_in_values=True),
                    convert_options=pcsv.ConvertOptions(
                        column_types={n: a for n, (a, _) in typ.items()},
                        null_values=[""],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                    ),
                )
            elif mode == "copy_csv_duckdb":
                files.append(work / f"probe-{i}.csv")
                files[-1].write_bytes(buf)
                dk.sql(csv_sql, params={"p": str(files[-1]), "c": ducktypes}).arrow()
        out[mode] = (time.perf_counter() - t, _cpu() - c)
    pg.close()
    db = work / "probe.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("SET threads = 1")
    for mode in ("insert_arrow", "insert_csv"):
        con.execute(
            f"CREATE TABLE {mode} (" + ", ".join(f"{n} {d}" for n, d in ducktypes.items() if n != "_s") + ")"
        )
        t, c = time.perf_counter(), _cpu()
        for tbl, f in zip(tables, files, strict=True):
            if mode == "insert_arrow":
                con.register("_b", tbl)
                con.execute("INSERT INTO insert_arrow SELECT * FROM _b")
                con.unregister("_b")
            else:
                con.execute(
                    f"INSERT INTO insert_csv SELECT * EXCLUDE (_s) FROM ({csv_sql})",
                    {"p": str(f), "c": ducktypes},
                )
        con.execute("CHECKPOINT")
        out[mode] = (time.perf_counter() - t, _cpu() - c)
    # the CSV path must give exactly ADBC's rows, or its timing means nothing
    diff = con.execute(
        "SELECT (SELECT count(*) FROM (FROM insert_arrow EXCEPT ALL FROM insert_csv)) + "
        "(SELECT count(*) FROM (FROM insert_csv EXCEPT ALL FROM insert_arrow)), "
        "(SELECT count(*) FROM insert_csv)"
    ).fetchone()
    con.close()
    db.unlink(missing_ok=True)
    if diff[0] or diff[1] != sum(t.num_rows for t in tables):
        raise SystemExit(f"CSV rows differ from ADBC rows: {diff}")
    for f in files:
        f.unlink(missing_ok=True)
    return out


def child(argv: list[str]) -> None:
    """``_child sync WS URL`` | ``_child pandas URL`` | ``_child stages|csvprobe URL WORK``:
    run one method, print JSON timings."""
    what = argv[0]
    if what in ("stages", "csvprobe"):
        print(json.dumps((stages if what == "stages" else csv_probe)(argv[1], Path(argv[2]))))
        return
    if what == "sync":
        from fle_core.warehouse.sync import sync
        from fle_core.workspace import Workspace

        ws = Workspace.open(argv[1])
        t = time.perf_counter()
        res = sync(ws, argv[2])
        secs = time.perf_counter() - t
        out = {"seconds": secs, "rows": res.rows_added}
    else:
        import pandas as pd

        url = argv[1]
        t = time.perf_counter()
        if url.startswith("sqlite"):
            con = sqlite3.connect(url[len("sqlite:///") :])
            df = pd.read_sql(LEAN_SQL, con)
        else:
            import sqlalchemy

            eng = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            with eng.connect() as con:
                df = pd.read_sql(LEAN_SQL, con)
        secs = time.perf_counter() - t
        out = {"seconds": secs, "rows": len(df)}
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["maxrss_mb"] = ru.ru_maxrss / 1024
    out["cpu"] = ru.ru_utime + ru.ru_stime  # whole process, imports included
    print(json.dumps(out))


def child_env() -> dict:
    """Children cache bytecode in a private folder (this machine sets PYTHONDONTWRITEBYTECODE,
    which would make every child recompile pandas/pyarrow sources: seconds of noise)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "fle-bench-pycache")
    return env


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(*args: str) -> dict:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "_child", *args], capture_output=True, text=True, env=child_env()
    )
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


def floor(url: str) -> float:
    """Wall time of the raw read, output discarded (psql's / sqlite3's own CPU only)."""
    t = time.perf_counter()
    if url.startswith("sqlite"):
        with open(os.devnull, "w") as devnull:
            subprocess.run(
                ["sqlite3", "-csv", url[len("sqlite:///") :], LEAN_SQL], stdout=devnull, check=True
            )
    else:
        subprocess.run(["psql", "-X", "-q", url, "-c", f"\\copy ({LEAN_SQL}) TO '/dev/null'"], check=True)
    return time.perf_counter() - t


# ------------------------------------------------------------------ one source kind
def bench_source(kind: str, url: str, reps: int, work: Path, n: int, conv_kb: float) -> dict:
    res: dict = {"kind": kind, "sync": [], "pandas": [], "floor": [], "sync_rss": [], "pandas_rss": []}
    for r in range(reps):
        ws = work / f"ws-{kind}-{r}"
        shutil.rmtree(ws, ignore_errors=True)
        s = run_child("sync", str(ws), url)
        assert s["rows"] == n, s
        res["sync"].append(s["seconds"])
        res["sync_rss"].append(s["maxrss_mb"])
        res.setdefault("sync_cpu", []).append(s["cpu"])
        print(
            f"  [{kind}] lean sync       {s['seconds']:7.2f} s  (process {s['wall']:.2f} s, "
            f"peak RSS {s['maxrss_mb']:.0f} MB)",
            flush=True,
        )
        res["floor"].append(floor(url))
        print(f"  [{kind}] floor           {res['floor'][-1]:7.2f} s", flush=True)
        p = run_child("pandas", url)
        res["pandas"].append(p["seconds"])
        res["pandas_rss"].append(p["maxrss_mb"])
        res.setdefault("pandas_cpu", []).append(p["cpu"])
        print(
            f"  [{kind}] pandas.read_sql {p['seconds']:7.2f} s  (peak RSS {p['maxrss_mb']:.0f} MB)",
            flush=True,
        )
    # incremental: 10k new rows into the last N-row warehouse
    ws = work / f"ws-{kind}-{reps - 1}"
    first = max_version(url) + 1
    if kind == "sqlite":
        build_sqlite(Path(url[len("sqlite:///") :]), 10_000, conv_kb, first_version=first, seed=7)
    else:
        build_pg(url, 10_000, conv_kb, first_version=first, seed=7)
    try:
        s = run_child("sync", str(ws), url)
        assert s["rows"] == 10_000, s
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "fle_core", "--workspace", str(ws), "sync", "--source", url, "--quiet"],
            capture_output=True,
            text=True,
            env=child_env(),
        )
        res["noop_cli_wall"] = time.perf_counter() - t
        assert proc.returncode == 0 and "+0 rows" in proc.stdout, proc.stderr
    finally:
        drop_appended(url, n)
    res["incr"], res["incr_wall"], res["incr_rss"] = s["seconds"], s["wall"], s["maxrss_mb"]
    print(
        f"  [{kind}] incremental 10k {s['seconds']:7.2f} s  (whole process {s['wall']:.2f} s); "
        f"no-op `fle-core sync` {res['noop_cli_wall']:.2f} s",
        flush=True,
    )
    return res


def run_stages(url: str, work: Path, what: str = "stages") -> dict:
    out = run_child(what, url, str(work))
    out.pop("wall", None)
    for k, (wall, cpu) in out.items():
        print(f"  stage {k:27s} {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
    return out


def summarize(res: dict) -> dict:
    med = {k: statistics.median(res[k]) for k in ("sync", "pandas", "floor", "sync_rss", "pandas_rss")}
    med["vs_floor"] = med["sync"] / med["floor"]
    med["pandas_speedup"] = med["pandas"] / med["sync"]
    return med


# ------------------------------------------------------------------ Postgres cluster
def start_cluster(root: Path):
    from conftest import _as_postgres, _free_port, _pg_bindir

    bindir = _pg_bindir()
    datadir = root / "pgdata"
    datadir.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(datadir, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(datadir), "--auth=trust", "-U", "postgres", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    opts = (
        f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                opts,
                "-l",
                str(datadir / "server.log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )

    def stop():
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(datadir, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--conv-kb", type=float, default=8.0, help="conversation_json size at depth 64 (KB)")
    ap.add_argument(
        "--text-scale",
        type=float,
        default=1.0,
        help="scale of state_json (2 KB), code (600 B), response (400 B)",
    )
    ap.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "fle-bench-sync"))
    ap.add_argument("--pg-url", help="use this Postgres database instead of a throwaway cluster")
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument("--write-results", action="store_true", help="write bench/RESULTS-sync.md")
    ap.add_argument(
        "--stages",
        action="store_true",
        help="also time sync's stages apart (read only; write only: plain / derived / "
        "derived + trajectories + commit), once per source",
    )
    ap.add_argument(
        "--csv-probe",
        action="store_true",
        help="Postgres: also time a text-COPY (CSV) read path against ADBC, once",
    )
    args = ap.parse_args()
    args.load_start = os.getloadavg()
    global TEXT_SCALE
    TEXT_SCALE = args.text_scale
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.only != "postgres":
        db = data / f"fle-{args.rows}-{args.conv_kb:g}-{args.text_scale:g}.db"
        if sqlite_rows(db) != args.rows:
            for p in data.glob(f"{db.name}*"):
                p.unlink()
            t = time.perf_counter()
            build_sqlite(db, args.rows, args.conv_kb)
            print(
                f"generated SQLite {args.rows:,} rows ({db.stat().st_size / 1e9:.1f} GB) in "
                f"{time.perf_counter() - t:.0f} s",
                flush=True,
            )
        results["sqlite"] = bench_source(
            "sqlite", f"sqlite:///{db}", args.reps, data, args.rows, args.conv_kb
        )
        if args.stages:
            results["sqlite"]["stages"] = run_stages(f"sqlite:///{db}", data)
    if args.only != "sqlite":
        stop = None
        url = args.pg_url
        if url is None:
            url, stop = start_cluster(data / "pg")
        try:
            if pg_rows(url) != args.rows:
                t = time.perf_counter()
                build_pg(url, args.rows, args.conv_kb)
                print(f"generated Postgres {args.rows:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
            results["postgres"] = bench_source("postgres", url, args.reps, data, args.rows, args.conv_kb)
            if args.stages:
                results["postgres"]["stages"] = run_stages(url, data)
            if args.csv_probe:
                results["postgres"].setdefault("stages", {}).update(run_stages(url, data, "csvprobe"))
        finally:
            if stop:
                stop()
    report(results, args)


def report(results: dict, args) -> None:
    """Print the medians table; with ``--write-results`` append it as a section."""
    lines = []
    for kind, res in results.items():
        m = summarize(res)
        cpu = (
            f"{statistics.median(res['sync_cpu']):.1f} s / {statistics.median(res['pandas_cpu']):.1f} s"
            if res.get("sync_cpu")
            else "-"
        )
        lines.append(
            f"| {kind} | {m['sync']:.2f} s | {m['floor']:.2f} s | {m['pandas']:.2f} s | {m['vs_floor']:.2f}x | "
            f"{m['pandas_speedup']:.1f}x | {cpu} | {m['sync_rss']:.0f} MB | {m['pandas_rss']:.0f} MB | "
            f"{res['incr']:.2f} s ({res['incr_wall']:.2f} s) | {res['noop_cli_wall']:.2f} s |"
        )
    head = (
        "| source | lean sync | floor | pandas.read_sql | sync / floor | pandas / sync | "
        "process CPU sync / pandas | sync peak RSS | pandas peak RSS | "
        "incremental 10k: sync() (whole process) | no-op `fle-core sync` CLI |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    runs = "\n".join(
        f"* {kind}: sync {', '.join(f'{x:.2f}' for x in res['sync'])} s; floor "
        f"{', '.join(f'{x:.2f}' for x in res['floor'])} s; pandas "
        f"{', '.join(f'{x:.2f}' for x in res['pandas'])} s"
        for kind, res in results.items()
    )
    table = head + "\n" + "\n".join(lines)
    if any("stages" in r for r in results.values()):
        table += (
            "\n\nStages apart (one run, one process; writes from in-memory batches):\n\n"
            "| source | stage | wall | CPU |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {kind} | {k} | {w:.2f} s | {c:.2f} s |"
                for kind, r in results.items()
                for k, (w, c) in r.get("stages", {}).items()
            )
        )
    load = (
        "1/5/15-min load average {:.2f}/{:.2f}/{:.2f} at the start, {:.2f}/{:.2f}/{:.2f} at the end".format(
            *args.load_start,
            *os.getloadavg(),
        )
    )
    print("\n" + table + "\n\n" + runs + "\n\n" + load)
    if args.write_results:
        machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        text = (
            f"\n## {args.rows:,} rows, conversation_json up to {args.conv_kb:g} KB, "
            f"text scale {args.text_scale:g}\n\n"
            f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine}, 24 GiB, "
            f"shared with other engineers' work ({load}). Medians of {args.reps} runs, "
            f"each method in a fresh process.\n\n{table}\n\nAll runs:\n\n{runs}\n"
        )
        path = ROOT / "bench" / "RESULTS-sync.md"
        old = path.read_text() if path.exists() else "# Sync benchmark (`bench/sync.py`)\n"
        path.write_text(old + text)


def _terminate(signum, frame):  # SIGTERM: unwind so the throwaway cluster is stopped
    raise KeyboardInterrupt


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2:])
    else:
        main()
