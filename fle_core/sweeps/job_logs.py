"""Job logs with a cap: a job that prints without end cannot fill the runner's disk.

A job's stdout and stderr go into a pipe; a thread per job copies it to
``logs/<sweep>/<cell>.<attempt>.log``. The first half of the cap is written
there as it comes; after that the output goes to two tail files used in turn
(each half the cap: when one is full the older one is emptied and reused), so
the disk never holds more than 1.5 times the cap for a job. When the output
ends, the log gets a line saying how many bytes were cut, then the last half cap
of the output: the log ends up the cap's size, its start and its end kept.
``[runner] job_log_cap_mb`` (default 100; 0 means no cap).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CAP_MB = 100.0
_CHUNK = 1 << 16


def cap_bytes(runner_section: dict) -> int | None:
    """The cap in bytes from ``[runner] job_log_cap_mb``; None for no cap."""
    from fle_core.errors import ConfigError

    raw = runner_section.get("job_log_cap_mb", DEFAULT_CAP_MB)
    try:
        mb = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"[runner] job_log_cap_mb must be a number of megabytes, not {raw!r}") from None
    if mb < 0 or mb != mb:
        raise ConfigError(f"[runner] job_log_cap_mb must be 0 (no cap) or more, not {raw!r}")
    return None if mb == 0 else max(4096, int(mb * 1_000_000))


class CappedLog:
    """Copies one job's output pipe into its log file, keeping head and tail under ``cap``."""

    def __init__(self, path: Path, cap: int | None):
        self.path = path
        self.cap = cap
        self.read_fd, self.write_fd = os.pipe()
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._copy, name=f"fle-log-{path.name}", daemon=True)

    def start(self) -> None:
        """Call once the job holds ``write_fd``: our copy is closed so EOF can arrive."""
        os.close(self.write_fd)
        self._thread.start()

    def abandon(self) -> None:
        """The job never started: close both ends."""
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def finish(self, timeout_s: float = 10.0) -> None:
        """Wait for the output to end (every writer of the job is gone by now); if something
        still holds the pipe after ``timeout_s``, stop reading so the log can be closed."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("%s: output still open after the job ended; stopped reading it", self.path)
            self._stop.set()
            self._thread.join(5.0)

    def _copy(self) -> None:
        head = None if self.cap is None else self.cap // 2
        part = 0 if self.cap is None else max(1, self.cap - self.cap // 2)
        tails = [self.path.with_name(self.path.name + f".tail{i}") for i in (0, 1)]
        current, tail = -1, None
        try:
            with open(self.path, "ab") as out:
                while chunk := _read(self.read_fd, self._stop):
                    start = self.total
                    self.total += len(chunk)
                    if head is None or start < head:
                        keep = chunk if head is None else chunk[: head - start]
                        out.write(keep)
                        chunk = chunk[len(keep) :]
                    while chunk:
                        if tail is None or tail.tell() >= part:  # switch tail files, emptying the older
                            if tail is not None:
                                tail.close()
                            current = 1 - current if current >= 0 else 0
                            tail = open(tails[current], "wb")  # noqa: SIM115 (kept open across chunks)
                        piece = chunk[: part - tail.tell()]
                        tail.write(piece)
                        chunk = chunk[len(piece) :]
                if tail is not None:
                    tail.close()
                    self._splice(out, tails, current, head or 0)
        except OSError as exc:
            log.warning("%s: could not write the job's output: %s", self.path, exc)
        finally:
            if tail is not None:
                tail.close()
            with contextlib.suppress(OSError):
                os.close(self.read_fd)
            for t in tails:
                with contextlib.suppress(OSError):
                    t.unlink()

    def _splice(self, out, tails: list[Path], current: int, head: int) -> None:
        """Append the cut note and the kept tail: the last ``cap - head`` bytes, from the
        end of the older tail file and all of the current one."""
        assert self.cap is not None
        older, newer = tails[1 - current], tails[current]
        if self.total <= self.cap:  # it all fits: one tail file holds the rest, nothing is cut
            with open(newer, "rb") as fh:
                _copy_file(fh, out)
            return
        want = self.cap - head
        from_older = min(want - newer.stat().st_size, older.stat().st_size if older.exists() else 0)
        kept = newer.stat().st_size + max(0, from_older)
        out.write(
            f"\n# [fle-core: {self.total - head - kept:,} bytes of output cut here (job log cap "
            f"{self.cap:,} bytes): the first {head:,} and the last {kept:,} of {self.total:,} bytes "
            "are kept]\n".encode()
        )
        if from_older > 0:
            with open(older, "rb") as fh:
                fh.seek(-from_older, os.SEEK_END)
                _copy_file(fh, out)
        with open(newer, "rb") as fh:
            _copy_file(fh, out)


def _copy_file(src, dst) -> None:
    while block := src.read(1 << 20):
        dst.write(block)


def _read(fd: int, stop: threading.Event) -> bytes:
    """The next chunk of output; empty at its end or once ``stop`` is set."""
    while not stop.is_set():
        try:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                return os.read(fd, _CHUNK)
        except OSError:
            break
    return b""
