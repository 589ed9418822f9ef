"""Where a folder of Inspect logs is stored: a local folder, or object storage.

``open_store(root)`` gives a ``LocalStore`` for a path and a ``RemoteStore`` for a URL
(``s3://bucket/prefix``, ``gs://…``, ``az://…``: whatever fsspec, the library Inspect
itself uses, reads). Both list the logs under the root in one pass, with what tells a
changed log from an unchanged one (size and mtime locally; size and ETag in object
storage), and open one log for reading.

Object storage: credentials come from the provider's standard chain (for S3: the
environment, the profile, the instance role; ``AWS_ENDPOINT_URL`` for S3-compatible
stores). They are never stored, shown or logged; an error names the location and the
cause only. A store that cannot be listed or read raises ``SourceUnavailable``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import re
import stat
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from fle_core.errors import SourceUnavailable

#: Log file suffixes Inspect writes.
LOG_SUFFIXES = (".eval", ".json")
#: The file the ``fle`` sweep preset writes into each job's log folder.
JOB_FILE = "fle-job.json"
#: JSON files in a log folder that are not logs.
NOT_LOGS = frozenset({JOB_FILE, "eval-set.json", "logs.json", "listing.json"})
#: URL schemes of object storage (fsspec protocol names), as Inspect accepts them.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss")
#: Logs up to this size are fetched in one request; larger ones are read in ranges.
_WHOLE_READ_BYTES = 64 * 1024 * 1024
#: Read ahead: logs (and bytes) fetched together from object storage.
_AHEAD_LOGS = 32
_AHEAD_BYTES = 256 * 1024 * 1024
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN")


@dataclass(frozen=True)
class LogFile:
    """One log in a store: ``rel`` (its path below the root, ``/``-separated) is its key."""

    rel: str
    size: int
    mtime_ns: int
    etag: str | None = None
    #: a local log's content identity (``content_id``): a log rewritten with the same size
    #: and mtime still differs here
    content_id: str | None = None

    @property
    def stamp(self) -> tuple:
        """What changes when the log is rewritten: (size, ETag) in object storage, where an
        object's content is its ETag; (size, mtime, content identity) on a local disk."""
        return (self.size, self.etag) if self.etag else (self.size, self.mtime_ns, self.content_id)


@dataclass
class Listing:
    """What one listing of a store found: the logs, and the folders holding a job file."""

    logs: list[LogFile] = field(default_factory=list)
    job_dirs: set[str] = field(default_factory=set)  # rel folders ("" for the root) with fle-job.json
    #: what was left out, and why: (path below the root, reason), e.g. a dangling symlink
    skipped: list[tuple[str, str]] = field(default_factory=list)


def is_remote(root: str) -> bool:
    return urlsplit(root).scheme.lower() in REMOTE_SCHEMES


def open_store(root: str, label: str) -> LogStore:
    """The store for a log source's root (``label`` names it in errors)."""
    return RemoteStore(root, label) if is_remote(root) else LocalStore(root, label)


def _is_log(name: str) -> bool:
    return name.endswith(LOG_SUFFIXES) and name not in NOT_LOGS


def _utf8(text: str) -> bool:
    """Whether a name listed from the disk is UTF-8 (else it holds surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _links_to_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink() and entry.is_dir()
    except OSError:  # a symlink loop: listed as a log (and skipped, named) if it looks like one
        return False


def _shown(rel: str) -> str:
    """A listed path as text that can be stored and shown (undecodable bytes as ``\\xNN``)."""
    return os.fsencode(rel).decode("utf-8", errors="backslashreplace")


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


class LogStore(ABC):
    """A folder (or one file) of Inspect logs."""

    def __init__(self, root: str, label: str):
        self.root = root
        self.label = label

    @property
    @abstractmethod
    def location(self) -> str:
        """The canonical root: a resolved absolute path, or a normalized credential-free URL."""

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def listing(self, under: str = "") -> Listing:
        """Every log below the root (or below ``under``, a rel folder), sorted by ``rel``."""

    @abstractmethod
    def open(self, rel: str, size: int | None = None) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A seekable binary file of one log (``size``: as listed, saves asking the store)."""

    @abstractmethod
    def read_small(self, rel: str) -> bytes | None:
        """A small file's bytes (a job file), None when it does not exist."""

    @abstractmethod
    def url(self, rel: str) -> str:
        """What inspect_ai's own readers open for this log (a path or a URL)."""

    def name_of(self, rel: str) -> str:
        return rel.rsplit("/", 1)[-1]

    def read_ahead(self, files: Sequence[LogFile]) -> Iterator[LogFile]:
        """``files`` in order, each ready to ``open`` when yielded (see ``RemoteStore``)."""
        return iter(files)

    def identify(self, files: Sequence[LogFile]) -> list[LogFile]:
        """``files`` with what tells their content apart beyond the listing (object storage:
        the ETag already does, so nothing is read)."""
        return list(files)


class LocalStore(LogStore):
    """A local folder of logs (searched recursively), or one file.

    Symlinked folders are followed, after the real ones, each real folder once: a link
    to a folder already listed (two routes, or a loop back up) is not walked again, so
    its logs keep one path and count once. What cannot be listed is said, never
    skipped silently (``Listing.skipped``): a dangling or looping symlink, a folder that
    cannot be read, a name that is not UTF-8 (it cannot be a key in the warehouse)."""

    def __init__(self, root: str, label: str):
        super().__init__(root, label)
        self.path = Path(root).expanduser().resolve()

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def listing(self, under: str = "") -> Listing:
        root = self.path
        if root.is_file():
            st = root.stat()
            return Listing([LogFile(root.name, st.st_size, st.st_mtime_ns)])
        if not root.is_dir():
            raise SourceUnavailable(
                f"Source {self.label!r}: no Inspect log folder or file at {root}",
                hint="run `fle inspect-eval` first, or check the source's path",
            )
        out = Listing()
        start = root / under if under else root
        prefix = len(str(root).rstrip(os.sep)) + 1  # entry paths all start with "<root>/"
        visited: set[str] = set()
        links: list[str] = []  # symlinked folders, walked after the real ones
        if start.is_dir():
            self._walk(str(start), prefix, out, visited, links)
        while links:
            links.sort(reverse=True)
            link = links.pop()
            try:
                os.path.realpath(link, strict=True)
            except OSError as exc:
                out.skipped.append(
                    (_shown(link[prefix:]), f"a symlinked folder that cannot be followed ({exc.strerror})")
                )
                continue
            self._walk(link, prefix, out, visited, links)
        out.logs.sort(key=lambda f: f.rel)
        return out

    @staticmethod
    def _walk(top: str, prefix: int, out: Listing, visited: set[str], links: list[str]) -> None:
        """Every real folder below ``top`` (``top`` itself may be reached through a link)."""
        stack = [top]
        while stack:
            folder = stack.pop()
            real = os.path.realpath(folder)
            if real in visited:  # reached again through a symlink: a loop, or a second route
                out.skipped.append(
                    (
                        _shown(folder[prefix:]),
                        f"a symlink loop or a second route to {real}, already listed (counted once)",
                    )
                )
                continue
            visited.add(real)
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                out.skipped.append(
                    (_shown(folder[prefix:]), f"a folder that cannot be read ({exc.strerror})")
                )
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = entry.path[prefix:]
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif _links_to_folder(entry):
                    links.append(entry.path)
                elif entry.name == JOB_FILE:
                    out.job_dirs.add(_parent(rel))
                elif _is_log(entry.name):
                    if not _utf8(rel):
                        out.skipped.append((_shown(rel), "a file name that is not UTF-8 (rename the file)"))
                        continue
                    try:
                        st = entry.stat()
                    except OSError as exc:
                        why = "a symlink loop" if exc.errno == errno.ELOOP else "a dangling symlink"
                        out.skipped.append((rel, f"{why} ({exc.strerror})"))
                        continue
                    out.logs.append(LogFile(rel, st.st_size, st.st_mtime_ns))

    def _file(self, rel: str) -> Path:
        return self.path if self.path.is_file() else self.path / rel

    def identify(self, files: Sequence[LogFile]) -> list[LogFile]:
        """Each log with its ``content_id`` (one small read per log; see ``content_id``).
        Only regular files are read here: a FIFO or device would be consumed (or block)
        before the log is parsed; size and mtime stand for those."""
        out = []
        for f in files:
            try:
                path = self._file(f.rel)
                if not stat.S_ISREG(path.stat().st_mode):
                    out.append(f)
                    continue
                with open(path, "rb") as fh:
                    out.append(dataclasses.replace(f, content_id=content_id(fh, f.size, f.rel)))
            except OSError:
                out.append(f)  # gone or unreadable since the listing: the read will say so
        return out

    @contextlib.contextmanager
    def open(self, rel: str, size: int | None = None) -> Iterator[IO[bytes]]:
        with open(self._file(rel), "rb") as fh:
            yield fh

    def read_small(self, rel: str) -> bytes | None:
        try:
            return self._file(rel).read_bytes()
        except OSError:
            return None

    def url(self, rel: str) -> str:
        return str(self._file(rel))


class RemoteStore(LogStore):
    """Logs in object storage under ``scheme://bucket/prefix``, through fsspec."""

    def __init__(self, root: str, label: str):
        super().__init__(root, label)
        parts = urlsplit(root)
        self.scheme = parts.scheme.lower()
        host = parts.hostname or ""  # userinfo (if anyone wrote one) is dropped, never used
        self.key = f"{host}/{parts.path.strip('/')}".rstrip("/")  # bucket/prefix, as fsspec names it
        self._fs: Any = None
        self._fetched: dict[str, bytes] = {}  # read ahead, consumed by ``open``

    @property
    def location(self) -> str:
        base = f"{self.scheme}://{self.key}"
        endpoint = self._endpoint()
        return f"{base}?endpoint={endpoint}" if endpoint else base

    def _endpoint(self) -> str | None:
        """The S3-compatible endpoint in use: the same bucket name on two endpoints is two places."""
        if self.scheme != "s3":
            return None
        url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return url.rstrip("/").lower() if url else None

    def fs(self) -> Any:
        if self._fs is None:
            with self._errors("connect to"):
                import fsspec

                # a fresh instance: fsspec caches listings per instance, and sync must see now
                self._fs = fsspec.filesystem(self.scheme, skip_instance_cache=True)
        return self._fs

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Any failure of the store → one ``SourceUnavailable`` naming the location and cause."""
        try:
            yield
        except (SourceUnavailable, FileNotFoundError):
            raise  # a log gone between the listing and the read is that log's problem, not the store's
        except ImportError as exc:
            raise SourceUnavailable(
                f"Source {self.label!r}: reading {self.scheme}:// needs a package that is not installed ({exc.name})",
                hint={"gs": "pip install gcsfs", "gcs": "pip install gcsfs"}.get(
                    self.scheme, "pip install adlfs"
                ),
            ) from None
        except Exception as exc:  # noqa: BLE001 - network, credentials, permissions: all one message
            raise SourceUnavailable(
                f"Source {self.label!r}: cannot {doing} {self.scheme}://{self.key}: {_scrub(exc)}",
                hint="check the network, the bucket name and the credentials (AWS_PROFILE, AWS_* variables, "
                "AWS_ENDPOINT_URL for an S3-compatible store)",
            ) from None

    def exists(self) -> bool:
        with self._errors("look at"):
            return bool(self.fs().exists(self.key))

    def listing(self, under: str = "") -> Listing:
        base = f"{self.key}/{under}".rstrip("/") if under else self.key
        with self._errors("list"):
            fs = self.fs()
            found = fs.find(base, detail=True, withdirs=False)
        if not found and not under:
            with self._errors("look at"):
                single = fs.info(self.key) if fs.isfile(self.key) else None
            if single is None:
                raise SourceUnavailable(
                    f"Source {self.label!r}: no Inspect logs at {self.scheme}://{self.key}",
                    hint="check the bucket and prefix, or run `fle inspect-eval --log-dir` there first",
                )
            found = {self.key: single}
        out = Listing()
        for key, info in found.items():
            rel = key[len(self.key) + 1 :] if key != self.key else self.name_of(key)
            name = self.name_of(rel)
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            if name == JOB_FILE:
                out.job_dirs.add(_parent(rel))
            elif _is_log(name):
                out.logs.append(LogFile(rel, int(info.get("size") or 0), _mtime_ns(info), _etag(info)))
        out.logs.sort(key=lambda f: f.rel)
        return out

    def _key(self, rel: str) -> str:
        return f"{self.key}/{rel}" if rel and not self.key.endswith("/" + rel) else self.key

    def read_ahead(self, files: Sequence[LogFile]) -> Iterator[LogFile]:
        """Fetch logs a window at a time with one concurrent ``cat`` (fsspec gathers the GETs),
        so a sync of many small logs costs round trips per window, not per log. Large logs
        are left to ranged reads in ``open``; at most ``_AHEAD_BYTES`` are held at once."""
        window: list[LogFile] = []
        for f in files:
            window.append(f)
            if len(window) >= _AHEAD_LOGS or sum(w.size for w in window) >= _AHEAD_BYTES:
                yield from self._fetch_window(window)
                window = []
        yield from self._fetch_window(window)

    def _fetch_window(self, window: list[LogFile]) -> Iterator[LogFile]:
        small = [self._key(f.rel) for f in window if f.size <= _WHOLE_READ_BYTES]
        if small:
            with self._errors("read"):
                got = self.fs().cat(small, on_error="return")
            self._fetched = {k: v for k, v in got.items() if isinstance(v, bytes)}
        try:
            yield from window
        finally:
            self._fetched = {}

    @contextlib.contextmanager
    def open(self, rel: str, size: int | None = None) -> Iterator[IO[bytes]]:
        key = self._key(rel)
        data = self._fetched.pop(key, None)  # read ahead
        with self._errors("read"):
            if data is None:
                fs = self.fs()
                size = int(fs.size(key) or 0) if size is None else size
                # one request for an ordinary log; ranged reads only for a very large one
                data = fs.cat_file(key) if size <= _WHOLE_READ_BYTES else None
            handle: IO[bytes] = io.BytesIO(data) if data is not None else self.fs().open(key, "rb")
        try:
            yield handle
        finally:
            handle.close()

    def read_small(self, rel: str) -> bytes | None:
        with self._errors("read"):
            try:
                return self.fs().cat_file(self._key(rel))
            except FileNotFoundError:
                return None

    def url(self, rel: str) -> str:
        return f"{self.scheme}://{self._key(rel)}"


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_TAIL = 64 * 1024 + 22  # the end-of-central-directory record with the longest comment
_WHOLE_HASH_BYTES = 8 * 1024 * 1024


def content_id(fh: IO[bytes], size: int, rel: str) -> str:
    """A cheap identity of a log's content, so a log replaced in place with the same size and
    mtime is still read again: for an ``.eval`` (a zip), a hash of its central directory,
    which holds every member's CRC-32 and sizes; for a ``.json`` log or a file that is not
    a readable zip, a hash of the whole file (of its first and last 4 MiB past 8 MiB)."""
    h = hashlib.blake2b(digest_size=16)
    if rel.endswith(".eval"):
        where = _central_directory(fh, size)
        if where is not None:
            fh.seek(where[0])
            h.update(b"cd" + fh.read(where[1]))
            return h.hexdigest()
    fh.seek(0)
    if size <= _WHOLE_HASH_BYTES:
        h.update(fh.read())
    else:
        h.update(fh.read(_WHOLE_HASH_BYTES // 2))
        fh.seek(size - _WHOLE_HASH_BYTES // 2)
        h.update(fh.read())
    return h.hexdigest()


def _central_directory(fh: IO[bytes], size: int) -> tuple[int, int] | None:
    """(offset, length) of a zip's central directory from its end records (zip64 too), or None."""
    tail_at = max(0, size - _TAIL)
    fh.seek(tail_at)
    tail = fh.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
    loc = at - 20
    if (
        (cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF)
        and loc >= 0
        and tail[loc : loc + 4] == _EOCD64_LOCATOR
    ):
        (eocd64,) = struct.unpack_from("<Q", tail, loc + 8)
        fh.seek(eocd64)
        rec = fh.read(56)
        if len(rec) < 56 or rec[:4] != b"PK\x06\x06":
            return None
        cd_size, cd_offset = struct.unpack_from("<QQ", rec, 40)
    if cd_offset + cd_size > size:
        return None
    return int(cd_offset), int(cd_size)


def _etag(info: dict) -> str | None:
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("etag_")
    return str(tag).strip('"') if tag else None


def _mtime_ns(info: dict) -> int:
    value = info.get("LastModified") or info.get("last_modified") or info.get("updated") or info.get("mtime")
    if isinstance(value, datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    return 0


def _scrub(exc: BaseException) -> str:
    """The error's text with any credential value from the environment removed."""
    text = f"{type(exc).__name__}: {exc}"
    for var in _SECRET_ENV:
        secret = os.environ.get(var)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = re.sub(r"(?i)(signature|credential|x-amz-security-token)=[^&\s]+", r"\1=***", text)
    return " ".join(text.split())[:400]
