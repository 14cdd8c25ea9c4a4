"""Aggregates over filtered runs: whole days from the rollups, edge days and running runs raw."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..filters import Filters
from . import rollups

DAY_START = "T00:00:00.000000Z"
DAY_END = "T23:59:59.999999Z"


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


@dataclass
class Plan:
    """Which part of a filtered question the rollups answer and which the raw rows answer."""

    rollup_where: str | None
    rollup_params: list[Any] = field(default_factory=list)
    raw_where: str = "0"
    raw_params: list[Any] = field(default_factory=list)


def _common(filters: Filters, prefix: str) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    if filters.policy is not None:
        clauses.append(f"{prefix}policy = ?")
        params.append(filters.policy)
    if filters.node is not None:
        clauses.append(f"{prefix}node = ?")
        params.append(filters.node)
    if filters.status is not None:
        clauses.append(f"{prefix}status = ?")
        params.append(filters.status)
    return clauses, params


def plan(filters: Filters) -> Plan:
    """Split ``filters`` into whole days (rollups) and the rest (raw rows)."""
    since, until = filters.since, filters.until
    lo = (
        None
        if since is None
        else since[:10]
        if since.endswith(DAY_START)
        else _shift(since[:10], 1)
    )
    hi = (
        None if until is None else until[:10] if until.endswith(DAY_END) else _shift(until[:10], -1)
    )
    common, common_params = _common(filters, "r.")

    raw_parts: list[str] = []
    raw_params: list[Any] = []
    if lo is not None and hi is not None and lo > hi:
        # no whole day inside the range: all of it is raw
        raw_parts.append("(r.started_at BETWEEN ? AND ?)")
        raw_params += [since, until]
        full = None
    else:
        if since is not None and not since.endswith(DAY_START):
            raw_parts.append("(r.started_at >= ? AND r.started_at < ?)")
            raw_params += [since, lo + DAY_START]
        if until is not None and not until.endswith(DAY_END):
            raw_parts.append("(r.started_at > ? AND r.started_at <= ?)")
            raw_params += [hi + DAY_END, until]
        full = (lo, hi)
        # running runs are not in the rollups: read them raw within the whole days
        running = ["r.status = 'running'"]
        if lo is not None:
            running.append("r.started_at >= ?")
            raw_params.append(lo + DAY_START)
        if hi is not None:
            running.append("r.started_at <= ?")
            raw_params.append(hi + DAY_END)
        raw_parts.append("(" + " AND ".join(running) + ")")

    raw_where = "(" + " OR ".join(raw_parts) + ")"
    if common:
        raw_where += " AND " + " AND ".join(common)
    result = Plan(rollup_where=None, raw_where=raw_where, raw_params=raw_params + common_params)
    if full is not None:
        clauses, params = [], []
        if full[0] is not None:
            clauses.append("r.day >= ?")
            params.append(full[0])
        if full[1] is not None:
            clauses.append("r.day <= ?")
            params.append(full[1])
        clauses += common
        result.rollup_where = " AND ".join(clauses) or "1"
        result.rollup_params = params + common_params
    return result


def _merge(rows: list[sqlite3.Row], group: tuple[str, ...], into: dict) -> None:
    for row in rows:
        key = tuple(row[k] for k in group)
        data = dict(row)
        if data.get(next(iter(rollups.SUMS))) is None:
            continue  # an aggregate with no rows at all
        current = into.get(key)
        if current is None:
            into[key] = data
            continue
        for name in rollups.SUMS:
            current[name] = (current[name] or 0) + (data[name] or 0)
        for name, (agg, _) in rollups.EXTREMES.items():
            values = [v for v in (current[name], data[name]) if v is not None]
            current[name] = (min if agg == "MIN" else max)(values) if values else None


def totals(conn: sqlite3.Connection, filters: Filters, group: tuple[str, ...] = ()) -> list[dict]:
    """Summed rollup columns of the filtered runs, one dict per ``group`` key."""
    p = plan(filters)
    merged: dict[tuple, dict] = {}
    if p.rollup_where is not None:
        sql = rollups.rollup_select(p.rollup_where, group)
        _merge(conn.execute(sql, p.rollup_params).fetchall(), group, merged)
    sql = rollups.raw_select(p.raw_where, group)
    _merge(conn.execute(sql, p.raw_params).fetchall(), group, merged)
    return list(merged.values())


def action_totals(
    conn: sqlite3.Connection, filters: Filters, group: tuple[str, ...] = ()
) -> list[dict]:
    """Action counts by type (and ``group`` keys) over the filtered runs."""
    p = plan(filters)
    merged: dict[tuple, dict] = {}
    rows: list[sqlite3.Row] = []
    if p.rollup_where is not None:
        rows += conn.execute(
            rollups.rollup_actions_select(p.rollup_where, group), p.rollup_params
        ).fetchall()
    rows += conn.execute(rollups.raw_actions_select(p.raw_where, group), p.raw_params).fetchall()
    for row in rows:
        key = (*(row[k] for k in group), row["type"])
        entry = merged.setdefault(
            key, {**{k: row[k] for k in group}, "type": row["type"], "count": 0, "failed": 0}
        )
        entry["count"] += row["count"] or 0
        entry["failed"] += row["failed"] or 0
    return list(merged.values())
