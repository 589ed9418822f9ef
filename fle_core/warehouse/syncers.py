"""What a source holds → the module that syncs it (the table ``sync`` dispatches on).

Each syncer has ``reading(ctx, source, attempts)``, a context manager giving the planned
work (``unchanged()``, ``rebuild``, ``copy(session, run)``), and ``evidence(con, name)``,
what the warehouse stored for a source name in the form its kind's ``Source.same_data``
compares (``identity`` asks it when a name's location changed).
"""

from __future__ import annotations

from types import ModuleType

from fle_core.warehouse import inspect_sync, programs_sync

SYNCERS: dict[str, ModuleType] = {"programs": programs_sync, "inspect_logs": inspect_sync}
