"""Shared fixtures: real throwaway PostgreSQL and Slurm clusters, fresh workspaces.

The clusters are started once per test session (Postgres on a free loopback
port; Slurm with its own munged, slurmctld and slurmd, see slurm_cluster.py) and
stopped at the end. When PostgreSQL, Slurm or Chromium is not installed those
tests are skipped locally; under CI (``CI=true``) the hook below turns every
skip into a failure, so nothing silently skips there.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_fle import Variant, create_postgres, create_sqlite

from fle_core.workspace import Workspace


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if Path(c, "initdb").exists():
            return Path(c)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Modules that take minutes, run first: xdist hands out whole files in collection
#: order, so a long file collected last would leave the other worker idle at the end.
SLOW_FIRST = (
    "test_layout_browser.py",
    "test_layout_browser_30_models.py",
    "test_uncertainty_browser.py",
    "test_e2e_browser.py",
    "test_changes_browser.py",
    "test_slurm.py",
    "test_faults_runner.py",
    "test_faults_sync.py",
    "test_store_faults.py",
    "test_slurm_submit_faults.py",
    "test_app_safety.py",
    "test_clear_errors.py",
    "test_inspect_sync.py",
    "test_inspect_app.py",
    "test_app.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (``CI`` set) a skipped test is a failed test: every test must run there."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {report.longrepr}"


@dataclass
class PgServer:
    host: str
    port: int
    user: str = "postgres"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')  # name is generated above, not user input
        return self.url(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PgCluster:
    """A throwaway PostgreSQL cluster on a free loopback port that can be stopped and
    started again (the fault tests take the control store down under a runner)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="fle-pg-"))
        self.datadir = self.root / "data"
        self.datadir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.datadir, "postgres")
        self.port = _free_port()
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-o",
                    opts,
                    "-l",
                    str(self.datadir / "server.log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"]),
            capture_output=True,
        )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _pg_cluster() -> PgCluster:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install -y postgresql)")
    cluster = PgCluster(bindir)
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def pg_server():
    cluster = _pg_cluster()
    try:
        yield PgServer("127.0.0.1", cluster.port)
    finally:
        cluster.destroy()


@pytest.fixture
def pg_restartable():
    """``(cluster, server)``: a PostgreSQL cluster of this test's own, to stop and restart."""
    cluster = _pg_cluster()
    try:
        yield cluster, PgServer("127.0.0.1", cluster.port)
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node Slurm cluster (tests/slurm_cluster.py) for the whole session."""
    import slurm_cluster as sc

    why = sc.missing()
    if why:
        pytest.skip(why)
    cluster = sc.SlurmCluster.start()
    try:
        yield cluster
    finally:
        cluster.cancel_all()
        cluster.stop()


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """The session's Slurm cluster with ``SLURM_CONF`` exported; its jobs cancelled after."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    yield slurm_cluster
    slurm_cluster.cancel_all()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A URL to a fresh, empty database on the session's cluster."""
    return pg_server.create_database()


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    """A fresh, empty workspace folder; also exported as $FLE_CORE_HOME."""
    root = tmp_path / "ws"
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    return Workspace.open(root)


# ---------------------------------------------------------------- source fixtures
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def source_kind(request) -> str:
    """Parametrizes a test over both source kinds (Postgres marked ``postgres``)."""
    return request.param


@pytest.fixture
def build_source(source_kind, tmp_path, request):
    """``build(rows, variant=Variant(), name="src") -> url`` for the current source kind."""

    def build(rows: list[dict] | None = None, variant: Variant | None = None, name: str = "src") -> str:
        variant = variant or Variant()
        if source_kind == "sqlite":
            return create_sqlite(tmp_path / f"{name}.db", rows, variant)
        url = request.getfixturevalue("pg_server").create_database()
        return create_postgres(url, rows, variant)

    return build


@pytest.fixture(scope="session")
def inspect_logs_dir(tmp_path_factory, worker_id) -> Path:
    """Inspect logs written by real inspect_ai (``inspect_fixtures.py``), once per test run.

    Writing them takes ~20 s of real evals; with several xdist workers, the first one
    that needs them writes them into the run's shared temp folder under a file lock and
    the others wait and reuse them. Tests copy what they need; nothing writes here."""
    import sys

    from filelock import FileLock

    here = Path(__file__).resolve().parent
    shared = (
        tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    )
    out, done = shared / "inspect-logs", shared / "inspect-logs.complete"
    with FileLock(str(shared / "inspect-logs.lock")):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(
                [sys.executable, str(here / "inspect_fixtures.py"), str(out)], check=True, timeout=600
            )
            done.touch()
    return out


# ---------------------------------------------------------------- object storage
@dataclass
class S3Server:
    """moto's S3 server on a loopback port (a real S3 API over HTTP); its access log counts
    the requests clients make."""

    endpoint: str
    log: Path

    def requests(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if '"GET ' in line or '"HEAD ' in line]

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing-key-id",
            "AWS_SECRET_ACCESS_KEY": "s3cr3t-never-shown",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@pytest.fixture(scope="session")
def _s3_server(tmp_path_factory):
    import sys
    import time
    import urllib.request

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "access.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    yield S3Server(endpoint, log)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def s3(_s3_server, monkeypatch) -> S3Server:
    """The session's S3 server, with the standard AWS variables pointing at it."""
    for key, value in _s3_server.env().items():
        monkeypatch.setenv(key, value)
    return _s3_server


# ---------------------------------------------------------------- the app tests' workspace
#: The populated workspace of the app tests (``populated_root``).
POPULATED_MODELS = ["gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"]
POPULATED_TASKS = ["iron_ore_throughput", "iron_plate_throughput", "crude_oil_throughput"]


@pytest.fixture(scope="session")
def populated_root(tmp_path_factory):
    """An FLE SQLite source (fixtures_fle rows + odd rows + 4 simulated runs), synced for real;
    once per test worker (tests that change it work on a copy)."""
    import fixtures_fle as fx

    from fle_core.sweeps.simulate import simulate_trajectory
    from fle_core.warehouse.sync import sync as run_sync
    from fle_core.workspace import Workspace

    root = tmp_path_factory.mktemp("populated") / "ws"
    ws = Workspace.open(root)
    url = fx.create_sqlite(
        ws.local_source_path,
        fx.make_rows(60, seed=3, models=POPULATED_MODELS, tasks=POPULATED_TASKS, max_steps=24)
        + fx.anomalous_rows(),
    )
    for i, model in enumerate(["gpt-4o (simulated)", "gpt-4o-mini (simulated)"] * 2):
        simulate_trajectory(
            url, model, "iron_ore_throughput", 5000 + i, trial=i, seed=i, steps=8, sweep_id="sim-sweep"
        )
    run_sync(ws, "local")
    return root


@pytest.fixture
def populated(populated_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(populated_root))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    from fle_core.workspace import Workspace

    return Workspace.open(populated_root)
