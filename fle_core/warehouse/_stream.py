"""How sync reads a source: id-range chunks read in parallel, handed over in id order.

Reading is the slow half of a sync (SQLite walks the overflow pages of FLE's
large ``conversation_json`` rows; Postgres encodes COPY rows in one backend). So
``ordered_tables`` splits ``(start, upto]`` into id ranges of about
``batch_rows`` rows, reads them on ``workers`` connections at once, and yields
them strictly in id order, so the writer can still commit batch by batch and
advance the watermark over a gap-free prefix. At most ``workers + 1`` chunks are
in memory besides the one being written.

When ids are too sparse for id ranges to be a good proxy for row counts (more
than 4 ids per row), one ordered stream is read instead (``sequential_tables``),
re-batched to ``batch_rows`` and prefetched on a thread.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from fle_core.sources import programs
from fle_core.workspace import SourceSpec

_MAX_BATCH_BYTES = 256 * 1024 * 1024
_SPARSE_IDS_PER_ROW = 4


def chunk_bounds(start: int, upto: int, rows: int, batch_rows: int) -> list[tuple[int, int]] | None:
    """``(lo, hi]`` id ranges of about ``batch_rows`` rows, or None when ids are too sparse."""
    span = upto - start
    if span <= 0 or rows <= 0:
        return []
    if span > _SPARSE_IDS_PER_ROW * rows:
        return None
    step = max(1, round(batch_rows * span / rows))
    return [(lo, min(lo + step, upto)) for lo in range(start, upto, step)]


def ordered_tables(
    spec: SourceSpec,
    cols: dict[str, str],
    bounds: list[tuple[int, int]],
    copy_code: bool,
    robust: bool,
    workers: int,
) -> Iterator[pa.Table]:
    """Read ``bounds`` on ``workers`` connections; yield non-empty tables in id order."""
    workers = max(1, min(workers, len(bounds)))
    stack = []
    pools = []
    try:
        for _ in range(workers):  # one connection per single-threaded pool: never shared
            cm = programs.connect(spec)
            stack.append(cm)
            conn = cm.__enter__()
            pools.append((ThreadPoolExecutor(1, thread_name_prefix="sync-read"), conn))
        pending: deque[Future] = deque()
        todo = iter(enumerate(bounds))

        def submit() -> None:
            nxt = next(todo, None)
            if nxt is not None:
                i, (lo, hi) = nxt
                pool, conn = pools[i % workers]
                pending.append(pool.submit(_read_chunk, conn, cols, lo, hi, copy_code, robust))

        for _ in range(workers + 1):
            submit()
        while pending:
            table = pending.popleft().result()
            submit()
            if table is not None:
                yield table
    finally:
        for pool, _ in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        for cm in reversed(stack):
            cm.__exit__(None, None, None)


def _read_chunk(conn, cols, lo: int, hi: int, copy_code: bool, robust: bool) -> pa.Table | None:
    batches = list(programs.lean_batches(conn, cols, lo, hi, copy_code, robust))
    return pa.Table.from_batches(batches) if batches else None


def sequential_tables(
    conn,
    cols: dict[str, str],
    start: int,
    upto: int,
    batch_rows: int,
    copy_code: bool,
    robust: bool,
    first_rows: int | None = None,
) -> Iterator[pa.Table]:
    """One ordered stream, re-batched to ``batch_rows`` and read ahead on a thread."""
    batches = programs.lean_batches(conn, cols, start, upto, copy_code, robust)
    return _prefetch(rebatch(batches, batch_rows, first_rows))


def rebatch(
    batches: Iterator[pa.RecordBatch], rows: int, first_rows: int | None = None
) -> Iterator[pa.Table]:
    """Regroup driver batches into tables of exactly ``rows`` rows (the first one
    ``first_rows``, the last may be short).

    Tables are also cut at ``_MAX_BATCH_BYTES`` so wide rows keep memory bounded.
    """
    buf: list[pa.RecordBatch] = []
    n = nbytes = 0
    want = first_rows or rows
    for b in batches:
        while b.num_rows:
            take = min(b.num_rows, want - n)
            part, b = b.slice(0, take), b.slice(take)
            buf.append(part)
            n += part.num_rows
            nbytes += part.nbytes
            if n >= want or nbytes >= _MAX_BATCH_BYTES:
                yield pa.Table.from_batches(buf)
                buf, n, nbytes, want = [], 0, 0, rows
    if buf:
        yield pa.Table.from_batches(buf)


_DONE = object()


def _prefetch(it: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Run ``it`` on a thread, at most ``depth`` items ahead of the consumer.

    The drivers and DuckDB release the GIL, so reading and writing overlap.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in it:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer and re-raised there
            put(exc)

    t = threading.Thread(target=work, name="sync-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)
