"""Benchmark: syncing Inspect logs from object storage (S3) against a local folder of the same logs.

Usage::

    uv run python bench/s3_sync.py [--logs 1000] [--reps 5] [--data-dir bench/_data/inspect] [--write-results]

1. **Data**: the logs of ``bench/inspect_sync.py`` (real inspect_ai, generated once and
   cached), uploaded to a bucket on moto's S3 server, started on a loopback port (a real
   S3 API over HTTP; its access log counts the requests).
2. **In one run**, on the same machine and data, each measured ``--reps`` times (median):
   * the **baseline**: the initial sync of the local folder into an empty warehouse;
   * the initial sync of ``s3://bucket/logs`` into an empty warehouse;
   * an unchanged re-sync of each, with the number of S3 requests it made;
   * one log rewritten in the bucket, then a sync (with its request count).
3. Prints medians and ratios; ``--write-results`` writes ``bench/RESULTS-s3.md``.

Target (issue 17): an unchanged re-sync of 1,000 remote logs makes one listing call, not 1,000 reads.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from inspect_sync import _log_files, generate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto server did not start")


def requests(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if '"GET ' in line or '"HEAD ' in line)


CPU: dict[str, list[float]] = {}


def timed_sync(ws_root: Path, source: str, what: str = "") -> tuple[float, int, int]:
    """(seconds, steps added, logs read) of one sync, in this process; its CPU seconds (this
    process only: the S3 server's work is not counted) go to ``CPU[what]``."""
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace

    ws = Workspace.open(ws_root)
    t0, c0 = time.perf_counter(), time.process_time()
    r = sync(ws, source=source)
    CPU.setdefault(what, []).append(time.process_time() - c0)
    return time.perf_counter() - t0, r.rows_added, r.details[0].logs_read


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--data-dir", default=str(ROOT / "bench" / "_data" / "inspect"))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    main_dir, _spare = generate(Path(args.data_dir), args.logs, args.reps, args.epochs, args.steps)
    tmp = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    moto_log = tmp / "moto.log"
    proc, endpoint = start_moto(moto_log)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="bench")
        files = _log_files(main_dir)
        t0 = time.perf_counter()
        for f in files:
            client.upload_file(str(f), "bench", f"logs/{f.relative_to(main_dir)}")
        print(f"uploaded {len(files)} logs in {time.perf_counter() - t0:.1f} s", flush=True)
        url = "s3://bench/logs"
        local, remote, local_re, remote_re, remote_req = [], [], [], [], []
        steps = 0
        for i in range(args.reps):
            t, steps, _ = timed_sync(tmp / f"ws-local-{i}", str(main_dir), "local")
            local.append(t)
            t, rows, _ = timed_sync(tmp / f"ws-s3-{i}", url, "s3")
            assert rows == steps, (rows, steps)
            remote.append(t)
            local_re.append(timed_sync(tmp / f"ws-local-{i}", str(main_dir))[0])
            before = requests(moto_log)
            remote_re.append(timed_sync(tmp / f"ws-s3-{i}", url)[0])
            remote_req.append(requests(moto_log) - before)
            print(f"rep {i + 1}: local {local[-1]:.2f} s, s3 {remote[-1]:.2f} s", flush=True)
        victim = files[0].relative_to(main_dir)
        client.upload_file(str(files[-1]), "bench", f"logs/{victim}")
        before = requests(moto_log)
        t_changed, _, read = timed_sync(tmp / "ws-s3-0", url)
        changed_req = requests(moto_log) - before
        m = {k: statistics.median(v) for k, v in dict(l=local, r=remote, lr=local_re, rr=remote_re).items()}
        lines = [
            f"# Inspect logs from object storage ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Machine: {platform.node()}, {os.cpu_count()} cores (shared, noisy; 1-minute load average "
            f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}. S3: moto's server on "
            "a loopback port (a real S3 API over HTTP; no network latency, so object-storage costs here "
            "are request handling and transfer, not round trips).",
            f"Data: {len(files)} `.eval` logs of `bench/inspect_sync.py` ({steps:,} steps), medians of {args.reps}.",
            "",
            "| what | time | ratio |",
            "|---|---|---|",
            f"| initial sync of the local folder — baseline | {m['l']:.2f} s "
            f"(client CPU {statistics.median(CPU['local']):.2f} s) | 1.0 |",
            f"| initial sync of `s3://bench/logs` | {m['r']:.2f} s (client CPU {statistics.median(CPU['s3']):.2f} s) "
            f"| {m['r'] / m['l']:.2f}x the local sync (client CPU "
            f"{statistics.median(CPU['s3']) / statistics.median(CPU['local']):.2f}x) |",
            f"| re-sync, nothing changed, local | {m['lr']:.3f} s | |",
            f"| re-sync, nothing changed, S3 | {m['rr']:.3f} s | {statistics.median(remote_req):.0f} request(s) "
            f"(target: one listing, not {len(files)} reads) |",
            f"| one log rewritten in the bucket, then a sync | {t_changed:.3f} s | {read} log read, "
            f"{changed_req} requests (listing + one GET) |",
            "",
            f"Initial syncs (s): local {', '.join(f'{t:.2f}' for t in local)}; "
            f"S3 {', '.join(f'{t:.2f}' for t in remote)}. The S3 server (moto, Python) runs on the same "
            "two cores and its work is in the S3 wall time but not in the client CPU; on real object "
            "storage the logs of a window are fetched concurrently (one `cat` per 32 logs), so network "
            "round trips are paid per window, not per log.",
        ]
        print("\n".join(lines))
        if args.write_results:
            (ROOT / "bench" / "RESULTS-s3.md").write_text("\n".join(lines) + "\n")
    finally:
        proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
