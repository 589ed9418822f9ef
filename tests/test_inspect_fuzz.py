"""Seeded fuzz of Inspect logs written by real inspect_ai: sync never raises, never loses a good sample.

Each example mutates a ``.json`` log and an ``.eval`` log (its zip members) at random
places: any field, at any depth, gets another type or size (huge and negative integers,
10**400, NaN, long text, lone surrogates, lists, objects, timestamps before year 1);
the file is written in another encoding (truncated, a stray invalid byte, UTF-16, a BOM)
or under another name (not UTF-8, non-ASCII, spaces, 200 characters). Sync runs beside an
untouched copy of each log, and must:

* never raise;
* keep every sample of the untouched logs;
* keep every sample of a mutated log whose own fields (and the log-level fields) were
  not touched, when the mutations stayed inside other samples (quarantine is per sample).

Hypothesis, derandomized (``derandomize=True``: the same examples every run, in CI too),
bounded to ``MAX_EXAMPLES`` examples of one sync each, about a minute on the CI machine.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fle_core import warehouse
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

MAX_EXAMPLES = 25
HOSTILE: list[Any] = [
    None,
    "abc",
    "",
    2**70,
    -(2**64),
    10**400,
    -(10**400),
    1.5,
    float("nan"),
    float("inf"),
    True,
    [],
    [1, "x"],
    {},
    {"a": [1]},
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "\ud800 lone surrogate",
    "x" * 100_000,
    "503 " * 5_000,
]
VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
ENCODINGS = ("utf-8", "utf-8", "utf-8", "truncated", "stray-byte", "utf-16", "bom")
NAMES = ("plain", "plain", "plain", "not-utf8", "unicode", "spaces", "long")


def _paths(doc: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every place in a JSON document (the first 3 items of a list), down to depth 6."""
    out = [prefix] if prefix else []
    if depth >= 6:
        return out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k), depth + 1)
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, (*prefix, i), depth + 1)
    return out


def _set(doc: Any, path: tuple, value: Any) -> None:
    """Put ``value`` at ``path`` (nothing when an earlier mutation replaced a parent)."""
    try:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass


def _name(kind: str, i: int, suffix: str) -> bytes:
    stem = {
        "plain": f"log{i}",
        "not-utf8": f"bad{i}\xff",
        "unicode": f"日本{i}é",
        "spaces": f"a log {i}",
        "long": f"{i}" + "x" * 200,
    }[kind]
    return stem.encode("utf-8", "surrogateescape") if kind != "not-utf8" else f"bad{i}".encode() + b"\xff"


def _encode(doc: dict, how: str) -> bytes:
    text = json.dumps(doc)
    data = text.encode("utf-8", "surrogatepass")
    return {
        "utf-8": data,
        "truncated": data[: len(data) // 2],
        "stray-byte": data[:20] + b"\xff" + data[20:],
        "utf-16": text.encode("utf-16", "surrogatepass"),
        "bom": b"\xef\xbb\xbf" + data,
    }[how]


@pytest.fixture(scope="module")
def real_logs(inspect_logs_dir) -> tuple[dict, Path, dict[str, dict]]:
    """A ``.json`` log and an ``.eval`` log (its JSON members), both written by inspect_ai."""
    import zipfile_zstd  # noqa: F401 - lets stdlib zipfile read inspect's zstd members

    doc = json.loads(next((inspect_logs_dir / "json").glob("*.json")).read_text())
    eval_path = sorted((inspect_logs_dir / "fle043").glob("*iron-ore*.eval"))[0]
    with zipfile.ZipFile(eval_path) as z:
        members = {n: json.loads(z.read(n)) for n in z.namelist() if n.endswith(".json")}
    return doc, eval_path, members


MUTATION = st.tuples(st.integers(min_value=0), VALUES)
LOG = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(("json", "eval")),
        "mutations": st.lists(MUTATION, min_size=1, max_size=3),
        "encoding": st.sampled_from(ENCODINGS),
        "name": st.sampled_from(NAMES),
    }
)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(logs=st.lists(LOG, min_size=1, max_size=4))
def test_sync_never_raises_and_never_loses_a_good_sample(real_logs, logs):
    doc, eval_path, members = real_logs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        folder.mkdir()
        (folder / "good.json").write_text(json.dumps(doc))
        shutil.copy(eval_path, folder / "good.eval")
        must_keep: set[tuple[str, str, int]] = {
            ("good.json", str(s["id"]), s["epoch"]) for s in doc["samples"]
        }
        must_keep |= {
            ("good.eval", str(m["id"]), m["epoch"]) for n, m in members.items() if n.startswith("samples/")
        }
        for i, spec in enumerate(logs):
            must_keep |= _write(folder, i, spec, doc, members)
        root = Path(tmp) / "ws"
        root.mkdir()
        (root / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{folder}"\n')
        ws = Workspace.open(root)
        sync(ws, source="runs")
        rows = warehouse.query(ws, "SELECT path, sample_id, epoch FROM inspect_samples")
        got = {(r["path"], r["sample_id"], r["epoch"]) for r in rows.iter_rows(named=True)}
        assert must_keep <= got, sorted(must_keep - got)


def _write(
    folder: Path, i: int, spec: dict, doc: dict, members: dict[str, dict]
) -> set[tuple[str, str, int]]:
    """Write one mutated log; the samples it must keep (see the module doc)."""
    suffix = "." + spec["kind"]
    name = _name(spec["name"], i, suffix) + suffix.encode()
    where = os.fsencode(str(folder)) + b"/" + name
    if spec["kind"] == "json":
        mutated = copy.deepcopy(doc)
        mutated["eval"]["task_id"] = f"fuzz-{i}"
        places = _paths(mutated)
        touched = [places[n % len(places)] for n, _v in spec["mutations"]]
        for (_n, value), path in zip(spec["mutations"], touched, strict=True):
            _set(mutated, path, value)
        with open(where, "wb") as fh:
            fh.write(_encode(mutated, spec["encoding"]))
        samples = [("samples", j, s) for j, s in enumerate(doc["samples"])]
    else:
        mutated_members = copy.deepcopy(members)
        for m in ("header.json", "_journal/start.json"):
            if isinstance(mutated_members.get(m), dict):
                mutated_members[m]["eval"]["task_id"] = f"fuzz-{i}"
        places = [(m, *p) for m, d in sorted(mutated_members.items()) for p in _paths(d)]
        touched = [places[n % len(places)] for n, _v in spec["mutations"]]
        for (_n, value), path in zip(spec["mutations"], touched, strict=True):
            _set(mutated_members, path, value)
        with zipfile.ZipFile(where.decode("utf-8", "surrogateescape"), "w", zipfile.ZIP_DEFLATED) as z:
            for member, content in mutated_members.items():
                how = spec["encoding"] if any(p[0] == member for p in touched) else "utf-8"
                z.writestr(member, _encode(content, how))
        samples = [(m, None, s) for m, s in sorted(members.items()) if m.startswith("samples/")]
    readable = spec["name"] != "not-utf8" and (spec["kind"] == "eval" or spec["encoding"] == "utf-8")
    if not readable:
        return set()
    # per-sample quarantine holds only when every mutation is inside a sample, and none
    # touched an id or epoch (two samples could then share a key)
    inside = [p for p in touched if (p[0] == "samples" and len(p) > 1) or str(p[0]).startswith("samples/")]
    if len(inside) != len(touched) or any(p[-1] in ("id", "epoch") for p in touched):
        return set()
    hit = {p[:2] if p[0] == "samples" else p[:1] for p in touched}
    rel = name.decode("utf-8")
    keep = set()
    for where_, j, s in samples:
        key = (where_, j) if j is not None else (where_,)
        if key not in hit:
            keep.add((rel, str(s["id"]), s["epoch"]))
    return keep
