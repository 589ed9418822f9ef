"""CLI commands: sync (owned by the sync work; placeholder until it lands)."""

from __future__ import annotations


def register(sub) -> None:
    pass
