"""The sweep facts the warehouse sync needs, supplied without importing the sweep machinery.

``warehouse.sync`` owns the interface (``AttemptsProvider``: a callable that
returns a frame with ``ATTEMPT_COLUMNS``, or None). This module builds one for
a workspace. It stays import-light on purpose: ``fle-core sync`` and the
runner import it on every start, and reading the control store (polars,
pydantic records) only happens when the provider is called and a store exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fle_core.workspace import Workspace

if TYPE_CHECKING:
    import polars as pl

    from fle_core.warehouse.sync import AttemptsProvider


def has_control_store(ws: Workspace) -> bool:
    """True when the workspace has a control store (``control.db`` or a ``[control]`` table)."""
    return ws.control_path.exists() or bool(ws.section("control"))


def attempts_for_sync(ws: Workspace) -> AttemptsProvider:
    """The ``attempts`` argument of ``warehouse.sync.sync`` for this workspace: the control
    store's attempts frame, or None (leave the warehouse's copy alone) when there is no store."""

    def provide() -> pl.DataFrame | None:
        if not has_control_store(ws):
            return None
        from fle_core.sweeps.operations import attempts_frame

        return attempts_frame(ws)

    return provide
