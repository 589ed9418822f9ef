"""One contract-test class run against both control stores: a SQLite file and real Postgres."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from fle_core.errors import QueueError
from fle_core.sweeps.config import SweepConfig
from fle_core.sweeps.store import (
    MAX_LOST,
    SCHEMA_VERSION,
    PilotSubmission,
    RunnerRecord,
    SqliteControlStore,
    SweepRecord,
    cell_id_for,
)

SRC = {"local": ("sqlite:////tmp/data.db", 0)}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request, tmp_path):
    """A factory: each call opens a *new connection* to the same fresh store."""
    opened = []
    if request.param == "sqlite":
        path = tmp_path / "control.db"

        def make():
            opened.append(SqliteControlStore(path))
            return opened[-1]
    else:
        from fle_core.sweeps.store.postgres import PostgresControlStore

        url = request.getfixturevalue("pg_url")

        def make():
            opened.append(PostgresControlStore(url))
            return opened[-1]

    yield make
    for s in opened:
        s.close()


def _launch(
    store,
    name="s",
    now=1000.0,
    trials=2,
    models=("a", "b"),
    max_concurrent=10,
    max_retries=1,
    early_stop=False,
    source="local",
):
    cfg = SweepConfig(
        name=name,
        models=list(models),
        tasks=["iron_ore_throughput"],
        num_trials_per_config=trials,
        max_concurrent=max_concurrent,
        max_retries=max_retries,
        early_stop_on_success=early_stop,
    )
    rec = SweepRecord(
        sweep_id=name,
        name=name,
        status="active",
        config_json=cfg.model_dump_json(),
        executor="simulate",
        source=source,
        max_concurrent=max_concurrent,
        max_retries=max_retries,
        retry_backoff_s=10.0,
        retry_backoff_max_s=25.0,
        early_stop=early_stop,
        wandb=False,
        created_at=now,
        updated_at=now,
    )
    store.create_sweep(rec, cfg.cells())
    return cfg


class TestControlStoreContract:
    def test_schema_version_and_reopen_is_idempotent(self, make_store):
        a = make_store()
        _launch(a)
        b = make_store()  # migrations run again: nothing breaks, nothing duplicated
        assert len(b.cells("s")) == 4
        with b._read() as ex:  # one row per applied migration
            assert ex("SELECT MAX(version), COUNT(*) FROM schema_version", ()).fetchone() == (
                SCHEMA_VERSION,
                SCHEMA_VERSION,
            )

    def test_a_with_block_closes_the_connection(self, make_store):
        with make_store() as store:
            _launch(store)
            assert len(store.cells("s")) == 4
        with pytest.raises(Exception, match=r"(?i)closed"):  # sqlite3 / psycopg: the connection is closed
            store.list_sweeps()
        assert len(make_store().cells("s")) == 4  # what the block wrote stays

    def test_a_version_1_store_upgrades_and_keeps_its_rows(self, make_store, monkeypatch):
        """A store written before migration 2 (Slurm facts, drain/lost counters) opens,
        upgrades in place, and its cells and runners read with the new defaults."""
        from fle_core.sweeps.store import base as control_store

        with monkeypatch.context() as m:
            m.setattr(control_store, "MIGRATIONS", control_store.MIGRATIONS[:1])
            old = make_store()
            _launch(old)
            with old._tx() as ex:  # a runner row as version 1 wrote it
                ex(
                    "INSERT INTO runners (runner_id, host, pid, started_at, heartbeat_at, lease_s, status)"
                    " VALUES ('r0', 'h', 1, 1000, 1000, 30, 'stopped')",
                    (),
                )
        new = make_store()
        assert [(c.requeues, c.lost_charge) for c in new.cells("s")] == [(0, 0.0)] * 4
        (r0,) = new.runners()
        assert (r0.slurm_job_id, r0.jobs_run, r0.node) == (None, 0, None)
        assert new.submissions() == []
        with new._read() as ex:
            assert ex("SELECT MAX(version) FROM schema_version", ()).fetchone()[0] == SCHEMA_VERSION

    def test_a_new_migration_applies_once_in_order(self, make_store, monkeypatch):
        from fle_core.sweeps.store import base as control_store

        make_store()
        added = (SCHEMA_VERSION + 1, lambda dialect: ["CREATE TABLE IF NOT EXISTS notes (note TEXT)"])
        monkeypatch.setattr(control_store, "MIGRATIONS", [*control_store.MIGRATIONS, added])
        make_store()
        st = make_store()
        with st._read() as ex:
            versions = [
                r[0] for r in ex("SELECT version FROM schema_version ORDER BY version", ()).fetchall()
            ]
            assert ex("SELECT COUNT(*) FROM notes", ()).fetchone()[0] == 0
        assert versions == list(range(1, SCHEMA_VERSION + 2))

    def test_create_and_read_back(self, make_store):
        st = make_store()
        cfg = _launch(st)
        cells = st.cells("s")
        assert [c.status for c in cells] == ["pending"] * 4
        assert {c.cell_id for c in cells} == {cell_id_for("s", c) for c in cfg.cells()}
        assert st.get_sweep("s").status == "active"
        with pytest.raises(QueueError):
            _launch(st)
        with pytest.raises(QueueError, match="Unknown sweep"):
            st.get_sweep("nope")
        assert st.add_missing_cells("s", cfg.cells(), 1001.0) == 0

    def test_claim_reserves_increasing_versions_above_source_floor(self, make_store):
        st = make_store()
        _launch(st)
        c1 = st.claim("r1", "h", 1000.0, 30, {"local": ("K", 41)})
        c2 = st.claim("r1", "h", 1000.0, 30, {"local": ("K", 7)})  # a lower floor never goes back
        assert (c1.attempt.version, c2.attempt.version) == (42, 43)
        assert c1.cell.cell_id != c2.cell.cell_id and c1.cell.status == "running"
        assert c1.attempt.attempt == 1 and c1.attempt.lease_until == 1030.0
        assert st.claim("r1", "h", 1000.0, 30, {"other": ("K", 0)}) is None  # source not served

    def test_versions_never_collide_across_sweeps_sharing_a_source(self, make_store):
        st = make_store()
        _launch(st, "s1")
        _launch(st, "s2")
        versions = []
        while (c := st.claim("r", "h", 1000.0, 30, {"local": ("K", 0)})) is not None:
            versions.append(c.attempt.version)
        assert sorted(versions) == list(range(1, 9))
        other = make_store()
        _launch(other, "s3", source="elsewhere")
        c = other.claim("r", "h", 1000.0, 30, {"elsewhere": ("K2", 0)})
        assert c.attempt.version == 1  # reservations are per source key

    def test_per_sweep_concurrency_limit(self, make_store):
        st = make_store()
        _launch(st, max_concurrent=2)
        got = [st.claim("r", "h", 1000.0, 30, SRC) for _ in range(3)]
        assert got[2] is None and all(got[:2])

    def test_success_and_early_stop(self, make_store):
        st = make_store()
        _launch(st, trials=3, models=("a",), early_stop=True)
        c = st.claim("r", "h", 1000.0, 30, SRC)
        fin = st.finish_attempt(c.attempt.attempt_id, "r", "succeeded", 1001.0, exit_code=0)
        assert (fin.cell_status, fin.attempt_status, fin.early_stopped) == ("succeeded", "succeeded", 2)
        assert sorted(x.status for x in st.cells("s")) == ["early_stopped", "early_stopped", "succeeded"]
        assert st.complete_if_done("s", 1002.0) is True
        assert st.complete_if_done("s", 1003.0) is False  # only one caller wins
        assert st.get_sweep("s").status == "completed"

    def test_failure_retries_with_backoff_then_fails(self, make_store):
        st = make_store()
        _launch(st, trials=1, models=("a",), max_retries=2)
        outcomes = []
        now = 1000.0
        for expected_delay in (10.0, 20.0):
            c = st.claim("r", "h", now, 30, SRC)
            fin = st.finish_attempt(c.attempt.attempt_id, "r", "failed", now, exit_code=3, error="boom")
            assert (fin.cell_status, fin.attempt_status) == ("pending", "superseded")
            assert fin.retry_at == now + expected_delay
            assert st.claim("r", "h", now + expected_delay - 0.1, 30, SRC) is None  # backoff holds
            now += expected_delay
            outcomes.append(c.attempt.version)
        c = st.claim("r", "h", now, 30, SRC)
        assert c.attempt.attempt == 3 and c.attempt.version not in outcomes
        fin = st.finish_attempt(c.attempt.attempt_id, "r", "timed_out", now)
        assert (fin.cell_status, fin.attempt_status) == ("failed", "failed")
        assert [a.status for a in st.attempts("s")] == ["superseded", "superseded", "failed"]
        assert [a.outcome for a in st.attempts("s")] == ["failed", "failed", "timed_out"]
        # Retry gives a fresh budget; succeeded cells are never touched.
        assert st.requeue_cells("s", ["failed"], now) == 1
        assert st.requeue_cells("s", ["failed"], now) == 0

    def test_only_the_holder_finishes(self, make_store):
        st = make_store()
        _launch(st)
        c = st.claim("r1", "h", 1000.0, 30, SRC)
        assert st.finish_attempt(c.attempt.attempt_id, "r2", "succeeded", 1001.0).stale
        assert st.cells("s")[0].status in ("pending", "running")

    def test_lease_expiry_requeues_without_using_a_retry(self, make_store):
        st = make_store()
        _launch(st, trials=1, models=("a",), max_retries=0)
        c = st.claim("dead", "h", 1000.0, 30, SRC)
        st.heartbeat(
            RunnerRecord(
                runner_id="dead",
                host="h",
                pid=1,
                started_at=1000.0,
                heartbeat_at=1010.0,
                lease_s=30,
                status="running",
            )
        )
        assert st.expire_leases(1039.0) == []  # heartbeat extended the lease to 1040
        lost = st.expire_leases(1041.0)
        assert [a.attempt_id for a in lost] == [c.attempt.attempt_id]
        cell = st.cells("s")[0]
        assert (cell.status, cell.failures, cell.lost) == ("pending", 0, 1)
        c2 = st.claim("alive", "h", 1041.0, 30, SRC)
        assert c2.attempt.attempt == 2 and c2.attempt.version != c.attempt.version
        assert st.finish_attempt(c.attempt.attempt_id, "dead", "succeeded", 1042.0).stale
        assert st.stop_requests([c.attempt.attempt_id, c2.attempt.attempt_id]) == {
            c.attempt.attempt_id: "lost"
        }
        assert MAX_LOST == 3
        st.expire_leases(1100.0)  # second loss
        c3 = st.claim("x", "h", 1100.0, 30, SRC)
        assert c3.attempt.attempt == 3
        st.expire_leases(1200.0)  # third loss: a cell that keeps killing runners gives up
        assert st.cells("s")[0].status == "failed"
        assert [a.outcome for a in st.attempts("s")] == ["lost", "lost", "lost"]

    def test_a_runner_that_died_running_k_jobs_charges_each_one_kth(self, make_store):
        st = make_store()
        _launch(st, trials=1, models=("a", "b", "c"), max_retries=0)
        first = st.claim("dead", "h", 1000.0, 30, SRC)
        second = st.claim("dead", "h", 1005.0, 30, SRC)  # claimed later: its lease ends later
        solo = st.claim("solo", "h", 1000.0, 30, SRC)
        assert sorted(st.running_attempt_ids("dead")) == sorted(
            [first.attempt.attempt_id, second.attempt.attempt_id]
        )
        lost = st.expire_leases(1031.0)  # one ended lease: all of that runner's attempts go
        assert {a.attempt_id for a in lost} == {
            first.attempt.attempt_id,
            second.attempt.attempt_id,
            solo.attempt.attempt_id,
        }
        charges = {c.model: (c.status, c.lost, c.lost_charge, c.failures) for c in st.cells("s")}
        assert charges == {
            "a": ("pending", 1, 0.5, 0),
            "b": ("pending", 1, 0.5, 0),
            "c": ("pending", 1, 1.0, 0),
        }
        assert st.running_attempt_ids("dead") == []
        errors = {a.error for a in st.attempts("s") if a.runner_id == "dead"}
        assert errors == {"runner dead stopped heartbeating (it lost 2 jobs at once)"}
        # Five more deaths of a runner running a and b (claim order) charge each 0.5 a time:
        # both reach the cap of 3.0 on the fifth and are failed; c keeps its 1.0.
        now = 1100.0
        for _ in range(5):
            assert {st.claim("dead2", "h", now, 30, SRC).cell.model for _ in range(2)} == {"a", "b"}
            st.expire_leases(now + 31)
            now += 100
        after = {c.model: (c.status, c.lost, c.lost_charge) for c in st.cells("s")}
        assert after == {"a": ("failed", 6, 3.0), "b": ("failed", 6, 3.0), "c": ("pending", 1, 1.0)}

    def test_drains_requeue_forever_without_failing_the_cell(self, make_store):
        st = make_store()
        _launch(st, trials=1, models=("a",), max_retries=0)
        for i in range(MAX_LOST_DRAINS := 5):
            c = st.claim("r", "h", 1000.0 + i, 30, SRC)
            fin = st.finish_attempt(c.attempt.attempt_id, "r", "requeued", 1000.5 + i)
            assert (fin.cell_status, fin.attempt_status) == ("pending", "superseded")
        cell = st.cells("s")[0]
        assert (cell.status, cell.requeues, cell.lost, cell.failures) == ("pending", MAX_LOST_DRAINS, 0, 0)

    def test_runner_slurm_facts_and_pilot_submissions(self, make_store):
        st = make_store()
        beat = RunnerRecord(
            runner_id="p",
            host="n1",
            pid=7,
            started_at=1000.0,
            heartbeat_at=1000.0,
            lease_s=30,
            status="running",
            slurm_job_id="123",
            slurm_array_task_id=4,
            node="n1",
            log_path="/logs/pilot-123_4.log",
        )
        st.heartbeat(beat)
        st.heartbeat(beat.model_copy(update={"heartbeat_at": 1010.0, "jobs_run": 5, "status": "draining"}))
        (r,) = st.runners()
        assert (r.slurm_job_id, r.slurm_array_task_id, r.node, r.jobs_run, r.status) == (
            "123",
            4,
            "n1",
            5,
            "draining",
        )
        assert r.log_path == "/logs/pilot-123_4.log"
        st.add_submission(PilotSubmission(job_id="123", submitted_at=999.0, pilots=3, log_dir="/logs"))
        st.add_submission(
            PilotSubmission(job_id="124", submitted_at=1001.0, pilots=1, sweep_ids=["s1"], log_dir="/logs")
        )
        st.set_submission_cancelled("123", 1002.0)
        assert [(s.job_id, s.sweep_ids, s.status, s.cancelled_at) for s in st.submissions()] == [
            ("124", ["s1"], "submitted", None),
            ("123", None, "cancelled", 1002.0),
        ]
        kinds = [e["kind"] for e in st.events()]
        assert kinds[:3] == ["pilots_cancelled", "pilots_submitted", "pilots_submitted"]

    def test_cancel(self, make_store):
        st = make_store()
        _launch(st)
        c = st.claim("r", "h", 1000.0, 30, SRC)
        assert st.stop_requests([c.attempt.attempt_id]) == {}
        assert st.cancel_sweep("s", 1001.0) == 4
        assert st.stop_requests([c.attempt.attempt_id]) == {c.attempt.attempt_id: "cancelled"}
        assert st.claim("r", "h", 1002.0, 30, SRC) is None
        fin = st.finish_attempt(c.attempt.attempt_id, "r", "cancelled", 1003.0)
        assert fin.cell_status == "cancelled"
        assert {x.status for x in st.cells("s")} == {"cancelled"}
        assert st.get_sweep("s").status == "cancelled"

    def test_a_drain_or_loss_while_a_cancel_is_pending_is_a_cancel(self, make_store):
        """scancel signals a pilot's jobs before its runner sees the cancel request: the
        drained (or lost) attempt of a cell being cancelled ends ``cancelled``, uncharged."""
        st = make_store()
        _launch(st, trials=1, models=("a", "b"))
        a = st.claim("r", "h", 1000.0, 30, SRC)
        b = st.claim("r2", "h", 1000.0, 30, SRC)
        st.cancel_sweep("s", 1001.0)
        st.finish_attempt(a.attempt.attempt_id, "r", "requeued", 1002.0)
        st.expire_leases(1100.0)
        assert [(x.status, x.outcome) for x in st.attempts("s")] == [("cancelled", "cancelled")] * 2
        assert [(c.status, c.lost, c.lost_charge, c.requeues) for c in st.cells("s")] == [
            ("cancelled", 0, 0, 0)
        ] * 2
        assert b.attempt.attempt_id in {x.attempt_id for x in st.attempts("s")}

    def test_counts(self, make_store):
        st = make_store()
        _launch(st, "s1")
        _launch(st, "s2", trials=1)
        c = st.claim("r", "h", 1000.0, 30, SRC, ["s1"])
        st.finish_attempt(c.attempt.attempt_id, "r", "succeeded", 1001.0)
        st.claim("r", "h", 1000.0, 30, SRC, ["s1"])
        assert st.counts() == {"s1": {"succeeded": 1, "running": 1, "pending": 2}, "s2": {"pending": 2}}
        assert st.counts("s2") == {"s2": {"pending": 2}}

    def test_pause_blocks_claims(self, make_store):
        st = make_store()
        _launch(st)
        st.set_sweep_status("s", "paused", 1000.0)
        assert st.claim("r", "h", 1000.0, 30, SRC) is None
        assert st.runnable_count(1000.0) == 0
        st.set_sweep_status("s", "active", 1001.0)
        assert st.runnable_count(1001.0) == 4

    def test_events_and_runners(self, make_store):
        st = make_store()
        _launch(st)
        st.add_event("note", "hello; DROP TABLE cells", 1001.0, "s")
        kinds = [e["kind"] for e in st.events("s")]
        assert kinds[0] == "note" and "launched" in kinds
        rec = RunnerRecord(
            runner_id="r", host="h", pid=5, started_at=1.0, heartbeat_at=2.0, lease_s=30, status="running"
        )
        st.heartbeat(rec)
        st.heartbeat(rec.model_copy(update={"heartbeat_at": 3.0, "status": "stopped"}))
        assert [(r.heartbeat_at, r.status) for r in st.runners()] == [(3.0, "stopped")]

    def test_concurrent_claims_never_share_a_cell(self, make_store):
        """Four connections claim from one queue at once: every cell exactly once."""
        setup = make_store()
        _launch(setup, trials=15, models=("a", "b"), max_concurrent=1000)  # 30 cells
        stores = [make_store() for _ in range(4)]
        got: list[tuple[str, int]] = []
        lock = threading.Lock()
        errors = []

        def work(st, name):
            try:
                while (c := st.claim(name, "h", 1000.0, 30, SRC)) is not None:
                    with lock:
                        got.append((c.cell.cell_id, c.attempt.version))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s, f"r{i}")) for i, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(got) == 30
        assert len({c for c, _ in got}) == 30
        assert sorted(v for _, v in got) == list(range(1, 31))


def test_sqlite_store_is_wal(tmp_path):
    SqliteControlStore(tmp_path / "c.db").close()
    con = sqlite3.connect(tmp_path / "c.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.postgres
def test_postgres_store_reconnects_after_the_server_drops_it(pg_url):
    from fle_core.sweeps.store.postgres import PostgresControlStore

    st = PostgresControlStore(pg_url)
    _launch(st)
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(psycopg.OperationalError):
        st.get_sweep("s")  # the first use notices the dropped connection
    assert st.get_sweep("s").name == "s"  # the next one reconnects
    st.close()
