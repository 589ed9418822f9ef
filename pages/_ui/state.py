"""UI layer, part 2: URL state (validated query parameters), lazy tabs, shared views."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from fle_core import saved_views
from fle_core.errors import ViewNotFound
from fle_core.warehouse import catalog
from fle_core.workspace import Workspace
from pages._ui.core import data_version, guard, show_error
from pages._ui.frames import plain
from pages._ui.labels import name_format
from pages._ui.notes import pinned_change_text

# ---------------------------------------------------------------- URL state
#: Where "ignored link parameter" warnings go while ``param_notices`` is active. A
#: context variable, not session state: each session's script runs in its own thread.
_NOTICES: contextvars.ContextVar[Any] = contextvars.ContextVar("param_notices", default=None)


@contextlib.contextmanager
def param_notices(target: Any) -> Iterator[None]:
    """Send the warnings of URL widgets built inside the block to ``target``.

    For settings folded into a collapsed expander: a warning drawn next to the
    widget would be hidden with it, so a bad link parameter would pass unseen.
    """
    token = _NOTICES.set(target)
    try:
        yield
    finally:
        _NOTICES.reset(token)


def _warn_param(key: str, raw: object, why: str) -> None:
    """Say which parameter was ignored; the URL's text is shown as plain text (never Markdown)."""
    (_NOTICES.get() or st).warning(
        plain(f"Ignored the link parameter {key}={raw}: {why}. Using the default instead.", limit=400),
        icon=":material/link_off:",
    )


#: Session state key: the last URL parameters each page wrote (``set_param``), so that
#: coming back to a page from another one (the sidebar, a link) shows the view it had.
_MEMORY = "_url_memory"


def set_param(key: str, value: str | list[str] | None) -> None:
    """Write (or, with None, drop) one URL parameter, and remember it for this session."""
    memory = st.session_state.setdefault(_MEMORY, {})
    if value is None:
        st.query_params.pop(key, None)
        memory.pop(key, None)
    else:
        st.query_params[key] = value
        memory[key] = value


def restore_params(prefix: str) -> None:
    """Arriving on a page whose URL holds none of its parameters (a page switch in the same
    session: Streamlit clears the URL then), put back the ones it had when last shown.
    A link that carries parameters of the page, or a shared view, is left as it is."""
    if "view" in st.query_params or any(k.startswith(prefix) for k in st.query_params):
        return
    for key, value in st.session_state.get(_MEMORY, {}).items():
        if key.startswith(prefix):
            st.query_params[key] = value


def _write_param(key: str, value: Any, default: Any) -> None:
    """Mirror a widget value into the URL (omit defaults to keep links short)."""
    if value == default or value is None or value == []:
        set_param(key, None)
    elif isinstance(value, list):
        set_param(key, [str(v) for v in value])
    else:
        set_param(key, str(value))


def drop_params(keys: Sequence[str], why: str) -> None:
    """Remove URL parameters a page cannot apply right now, saying so once per key."""
    for key in keys:
        if key in st.query_params:
            _warn_param(key, ",".join(st.query_params.get_all(key)), why)
            st.query_params.pop(key, None)


def url_multiselect(
    label: str, key: str, options: Sequence[str], default: Sequence[str] = (), *, where=None, **kw
) -> list[str]:
    """A multiselect whose value lives in the URL as repeated ``key=`` parameters; task and
    model options are shown by their short names (``labels.name_format``)."""
    where = where or st
    name_format(key, kw)
    options = list(options)
    default = [d for d in default if d in options]
    if key not in st.session_state:
        raw = st.query_params.get_all(key)
        good = [v for v in raw if v in options]
        bad = [v for v in raw if v not in options]
        if bad:
            _warn_param(key, ",".join(bad), "not present in the current data")
        st.session_state[key] = good or list(default)
    else:  # options may shrink between runs (filters); keep the state valid
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    value = where.multiselect(label, options, key=key, **kw)
    _write_param(key, value, list(default))
    return value


def url_select(
    label: str,
    key: str,
    options: Sequence[Any],
    default: Any = None,
    *,
    where=None,
    widget: str = "selectbox",
    **kw,
) -> Any:
    """A single choice (selectbox/radio/segmented_control) mirrored into ``?key=``."""
    where = where or st
    name_format(key, kw)
    options = list(options)
    if not options:
        return None
    default = default if default in options else options[0]
    by_text = {str(o): o for o in options}
    if key not in st.session_state:
        raw = st.query_params.get(key)
        if raw is not None and raw not in by_text:
            _warn_param(key, raw, f"expected one of {', '.join(list(by_text)[:8])}")
        st.session_state[key] = by_text.get(raw, default) if raw is not None else default
    elif st.session_state[key] not in options:
        st.session_state[key] = default
    value = getattr(where, widget)(label, options, key=key, **kw)
    if value is None:  # segmented_control can be deselected
        value = default
    _write_param(key, value, default)
    return value


def url_int(
    label: str, key: str, default: int, lo: int, hi: int, *, where=None, widget: str = "number_input", **kw
) -> int:
    """An integer in [lo, hi] mirrored into ``?key=``; junk falls back to the default."""
    where = where or st
    if key not in st.session_state:
        raw = st.query_params.get(key)
        value = default
        if raw is not None:
            try:
                value = int(raw)
                if not lo <= value <= hi:
                    _warn_param(key, raw, f"must be between {lo} and {hi}")
                    value = default
            except ValueError:
                _warn_param(key, raw, "not a whole number")
        st.session_state[key] = value
    if widget == "slider":
        value = where.slider(label, lo, hi, key=key, **kw)
    else:
        value = where.number_input(label, lo, hi, step=1, key=key, **kw)
    _write_param(key, int(value), default)
    return int(value)


def url_ints(
    label: str, key: str, options: Sequence[int], default: Sequence[int], *, where=None
) -> list[int]:
    """A multiselect of integers (e.g. k values) mirrored into the URL."""
    chosen = url_multiselect(label, key, [str(o) for o in options], [str(d) for d in default], where=where)
    return sorted(int(c) for c in chosen)


def url_text(key: str) -> str | None:
    """A raw string parameter (e.g. a trajectory key), read only; pages validate it."""
    return st.query_params.get(key)


# ---------------------------------------------------------------- shared views
@dataclass(frozen=True)
class Pin:
    """The data version a page computes from: latest, or frozen by a shared view."""

    version: int  # the warehouse data version used for caching
    as_of: int | None  # passed to loaders as ``as_of_sync``; None means latest
    view_id: str | None = None


def apply_view(ws: Workspace, page: str, prefix: str) -> Pin:
    """Restore a ``?view=ID`` permalink and return the data version to compute from.

    The view's parameters are applied only when the URL holds none of this
    page's keys, so a reloaded (or edited) URL keeps its own filters while
    staying pinned to the view's data version.
    """
    restore_params(prefix)
    latest = data_version(ws)
    view_id = st.query_params.get("view")
    if not view_id:
        return Pin(latest, None)
    try:
        view = saved_views.load_view(ws, view_id)
    except ViewNotFound as exc:
        show_error(exc)
        st.query_params.pop("view", None)
        return Pin(latest, None)
    if view.page != page:
        st.warning(
            plain(
                f"Shared view {view.id} belongs to the {view.page} page; showing it there "
                "is not possible from here, so this page shows the latest data."
            )
        )
        return Pin(latest, None)
    if not any(k.startswith(prefix) for k in st.query_params):
        for key, value in view.params.items():
            if key.startswith(prefix):
                st.query_params[key] = value
                st.session_state.pop(key, None)
    _view_banner(view, latest, ws)
    return Pin(view.data_version, view.data_version, view.id)


def _view_banner(view: saved_views.SavedView, latest: int, ws: Workspace) -> None:
    when = view.created_at.strftime("%Y-%m-%d %H:%M UTC")
    for r in catalog.rebuilds_since(ws, view.data_version).iter_rows(named=True):
        st.warning(plain(pinned_change_text(r), limit=800), icon=":material/history_toggle_off:")
    if latest > view.data_version:
        col1, col2 = st.columns([5, 2], vertical_alignment="center")
        col1.info(
            f"Shared view `{view.id}` (saved {when}), **as of sync {view.data_version}**. "
            f"Newer data exists (sync {latest}).",
            icon=":material/history:",
        )
        if col2.button("Update to latest", key="_view_update", icon=":material/update:"):
            st.query_params.pop("view", None)
            st.rerun()
    else:
        st.caption(
            f":material/link: Shared view `{view.id}` (saved {when}), "
            f"as of sync {view.data_version}: the latest data."
        )


def share_button(ws: Workspace, page: str, prefix: str, pin: Pin) -> None:
    """Save the page's URL state + data version as a permalink and show the link."""
    if st.button(
        "Share",
        key="_share",
        icon=":material/share:",
        help="Save a permalink that freezes these filters, settings and the data version",
    ):
        values = {k: st.query_params.get_all(k) for k in st.query_params if k.startswith(prefix)}
        params = {k: v[0] if len(v) == 1 else v for k, v in values.items()}
        with guard():
            view_id = saved_views.save_view(ws, page, params, pin.version)
            st.query_params["view"] = view_id
            st.session_state["_shared_link"] = _link_for(view_id)
    link = st.session_state.get("_shared_link")
    if link and st.query_params.get("view") and link.endswith(st.query_params.get("view")):
        st.code(link, language=None)


def _link_for(view_id: str) -> str:
    base = ""
    with contextlib.suppress(Exception):  # st.context.url is unavailable under AppTest
        base = (st.context.url or "").split("?", 1)[0]
    return f"{base}?view={view_id}"


def url_tabs(labels: Sequence[str], key: str) -> dict[str, Any]:
    """Lazy tabs whose selection lives in ``?key=``: only the open tab's content should run.

    Returns ``{label: container}``; check ``container.open`` before computing.
    """
    labels = list(labels)
    raw = st.query_params.get(key)
    if key not in st.session_state and raw is not None and raw not in labels:
        _warn_param(key, raw, f"expected one of {', '.join(labels)}")
        raw = None
    default = st.session_state.get(key) or raw or labels[0]
    tabs = st.tabs(labels, key=key, on_change="rerun", default=default)
    _write_param(key, st.session_state.get(key) or default, labels[0])
    return dict(zip(labels, tabs, strict=True))
