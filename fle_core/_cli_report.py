"""CLI commands: report (owned by the report work; placeholder until it lands)."""

from __future__ import annotations


def register(sub) -> None:
    pass
