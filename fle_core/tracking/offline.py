"""Read an offline W&B run directory back (tests and ``wandb sync`` previews)."""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

log = logging.getLogger(__name__)


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
        record = rec.WhichOneof("record_type")
        if record == "run":
            r = rec.run
            out.run_id, out.project, out.name = r.run_id, r.project, r.display_name
            out.group, out.job_type, out.tags = r.run_group, r.job_type, list(r.tags)
            _apply_updates(out.config, r.config.update)
        elif record == "config":
            _apply_updates(out.config, rec.config.update)
        elif record == "summary":
            _apply_updates(out.summary, rec.summary.update)
        elif record == "history":
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
        _crc, length, chunk_type = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if chunk_type == 1:
            yield chunk
        elif chunk_type == 2:
            pending = chunk
        elif chunk_type == 3:
            pending += chunk
        elif chunk_type == 4:
            yield pending + chunk
            pending = b""
