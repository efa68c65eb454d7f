"""The planner evaluation run once per state source, so every row appears with each source side by side.

    rows = run_state_sources(cfg, ("ground_truth", "estimator"))

Each source (:data:`training.planner.control.STATE_SOURCES`) runs the rows of ``cfg`` under every condition with
the same seeds, so a row differs between sources only in where the planner's state (and a navigation goal's
position in the plan frame) comes from. The expert reads its own observation, not the planner state, so it runs
once (with the first source) and every joystick row's ``expert_ratio`` is taken against the expert row of its
condition.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from training.planner.evaluate import PlannerEvalConfig, run, summary


def run_state_sources(cfg: PlannerEvalConfig, sources: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of :func:`training.planner.evaluate.run` for each of ``sources`` in turn (each row's
    ``state_source`` names its source); the expert rows only once. ``cfg.json_out`` is not written."""
    if not sources:
        raise ValueError("sources: expected at least one state source, got none")
    rows: list[dict[str, Any]] = []
    for k, source in enumerate(sources):
        row_names = cfg.rows if k == 0 else tuple(r for r in cfg.rows if r != "expert")
        if not row_names:
            continue
        rows += run(dataclasses.replace(cfg, state_source=source, rows=row_names, json_out=None))
    expert = {r["condition"]: r for r in rows if r["name"] == "expert"}
    for r in rows:
        if r["name"] in ("joystick", "unguided") and r["condition"] in expert:
            r["expert_ratio"] = r["lin_err_m_per_s"] / max(expert[r["condition"]]["lin_err_m_per_s"], 1e-9)
    return rows


def rows_of(rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """The rows planned from ``source``, with the expert rows (the reference of every source)."""
    return [r for r in rows if r["name"] == "expert" or r.get("state_source") == source]


def summaries(rows: list[dict[str, Any]], sources: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """:func:`training.planner.evaluate.summary` of each source's rows, by source."""
    return {s: summary(rows_of(rows, s)) for s in sources}
