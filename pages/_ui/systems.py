"""UI layer: what one row of an analysis is — a system, a system and sweep config, or a
model — and the notes that say what a roll-up pooled and which tasks it left out
(``fle_core.analysis.systems``)."""

from __future__ import annotations

import polars as pl

from pages._ui.data import NO_CONFIG, compute_fn, distinct


def config_options(frame: pl.DataFrame) -> list[str]:
    """Config filter options: each params JSON, plus ``NO_CONFIG`` when some runs have none;
    empty when no trajectory has a config (the filter is then hidden)."""
    configs = distinct(frame, "config")
    if not configs:
        return []
    return configs + ([NO_CONFIG] if frame["config"].null_count() else [])


def config_text(config: str) -> str:
    """A config as shown in a widget: ``prompt=v2, temperature=0.2``."""
    from fle_core.analysis import config_label

    return config_label(None if config == NO_CONFIG else config)


def several_systems(frame: pl.DataFrame) -> bool:
    """Whether some model here ran as more than one system (``analysis.systems``)."""
    from fle_core.analysis import systems

    return not systems.pooled_systems(frame).is_empty()


@compute_fn("suite_note")
def _c_suite_note(s: pl.DataFrame) -> dict:
    """What suite-level numbers left out (tasks not every system ran) and what a roll-up by
    model pools: ``{"dropped": str | None, "pooled": [(model, n, labels)]}``."""
    from fle_core.analysis import systems

    pooled = systems.pooled_systems(s)
    return {
        "dropped": systems.suite_note(s),
        "pooled": [(r["model"], r["systems"], r["labels"]) for r in pooled.iter_rows(named=True)],
    }
