"""CLI commands: sweep (owned by the sweep work; placeholder until it lands)."""

from __future__ import annotations


def register(sub) -> None:
    pass
