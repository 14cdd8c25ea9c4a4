"""Aggregates over filtered runs: whole days from the rollups, edge days and running runs raw.

A filter is split into the whole UTC days it covers, read from the smallest rollup level that
holds what the question filters and groups by (``rollup_total`` when there is no time bound),
plus at most two partial edge days and the running runs, summed from the raw rows with the
same per-run expressions (``rollups.py``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..filters import Filters
from . import rollups
from .rollups import DAY_END, DAY_START

# More running runs than this are read through the status index instead of by id.
RUNNING_BY_ID = 200


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


@dataclass
class Plan:
    """Which part of a filtered question the rollups answer and which the raw rows answer."""

    level: rollups.Level | None
    rollup_where: str = "TRUE"
    rollup_params: list[Any] = field(default_factory=list)
    raw: list[tuple[str, list[Any]]] = field(default_factory=list)  # (where over r, params)


def _dims(filters: Filters) -> list[tuple[str, Any]]:
    return [
        (name, getattr(filters, name))
        for name in ("policy", "node", "status")
        if getattr(filters, name) is not None
    ]


def choose_level(
    family: rollups.Family, filters: Filters, group: tuple[str, ...], timed: bool
) -> rollups.Level:
    """The smallest level of ``family`` keyed by everything the question needs."""
    need = {name for name, _ in _dims(filters)} | (set(group) - set(family.extra))
    if timed:
        need.add("day")
    for level in rollups.levels(family):
        if need <= set(level.key):
            return level
    raise AssertionError(f"no rollup level of {family.name} has {sorted(need)}")


def _running_where(conn: sqlite3.Connection) -> tuple[str, list[Any]] | None:
    """The running runs (never in the rollups), found through the status index first."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM runs WHERE status = 'running' LIMIT ?", (RUNNING_BY_ID + 1,)
        )
    ]
    if not ids:
        return None
    if len(ids) > RUNNING_BY_ID:
        return "r.status = 'running'", []
    return f"r.id IN ({', '.join('?' * len(ids))}) AND r.status = 'running'", ids


def plan(
    conn: sqlite3.Connection,
    filters: Filters,
    group: tuple[str, ...] = (),
    family: rollups.Family = rollups.RUNS,
) -> Plan:
    """Split ``filters`` into whole days (a rollup level) and the rest (raw rows)."""
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

    common = [f"r.{name} = ?" for name, _ in _dims(filters)]
    common_params = [value for _, value in _dims(filters)]
    raw_parts: list[tuple[list[str], list[Any]]] = []
    result = Plan(level=None)
    if lo is not None and hi is not None and lo > hi:
        # no whole day inside the range: all of it is raw
        raw_parts.append((["r.started_at >= ?", "r.started_at <= ?"], [since, until]))
    else:
        if since is not None and not since.endswith(DAY_START):
            raw_parts.append((["r.started_at >= ?", "r.started_at < ?"], [since, lo + DAY_START]))
        if until is not None and not until.endswith(DAY_END):
            raw_parts.append((["r.started_at > ?", "r.started_at <= ?"], [hi + DAY_END, until]))
        level = choose_level(family, filters, group, timed=since is not None or until is not None)
        clauses, params = [], []
        if lo is not None:
            clauses.append("r.day >= ?")
            params.append(lo)
        if hi is not None:
            clauses.append("r.day <= ?")
            params.append(hi)
        clauses += common
        result.level = level
        result.rollup_where = " AND ".join(clauses) or "TRUE"
        result.rollup_params = params + common_params
        # running runs are not in the rollups: read them raw within the whole days
        if filters.status in (None, "running"):
            running = _running_where(conn)
            if running is not None:
                bounds, bound_params = [], []
                if lo is not None:
                    bounds.append("r.started_at >= ?")
                    bound_params.append(lo + DAY_START)
                if hi is not None:
                    bounds.append("r.started_at <= ?")
                    bound_params.append(hi + DAY_END)
                raw_parts.append(([running[0], *bounds], running[1] + bound_params))
    for clauses, params in raw_parts:
        where = " AND ".join(clauses + common)
        result.raw.append((where, params + common_params))
    return result


def _merge(
    rows: list[sqlite3.Row], group: tuple[str, ...], family: rollups.Family, into: dict
) -> None:
    for row in rows:
        if row[family.counter] is None:
            continue  # an aggregate over no rows at all
        key = tuple(row[k] for k in group)
        current = into.get(key)
        if current is None:
            into[key] = dict(row)
            continue
        for name in row.keys():  # noqa: SIM118 (iterating a Row gives values)
            if name in group:
                continue
            value = row[name]
            if name in family.extremes:
                pick = min if family.extremes[name][0] == "MIN" else max
                values = [v for v in (current[name], value) if v is not None]
                current[name] = pick(values) if values else None
            else:
                current[name] = (current[name] or 0) + (value or 0)


def _totals(
    conn: sqlite3.Connection,
    filters: Filters,
    group: tuple[str, ...],
    family: rollups.Family,
    columns: tuple[str, ...] | None = None,
    split: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    p = plan(conn, filters, (*group, "status") if split else group, family)
    merged: dict[tuple, dict] = {}
    if p.level is not None:
        sql = rollups.rollup_select(p.level, p.rollup_where, group, columns, split)
        _merge(conn.execute(sql, p.rollup_params).fetchall(), group, family, merged)
    for where, params in p.raw:
        sql = rollups.raw_select(where, group, family, columns, split)
        _merge(conn.execute(sql, params).fetchall(), group, family, merged)
    return list(merged.values())


def totals(
    conn: sqlite3.Connection,
    filters: Filters,
    group: tuple[str, ...] = (),
    columns: tuple[str, ...] | None = None,
    split: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Summed run columns (all, or ``columns``) of the filtered runs, one dict per ``group`` key.

    Each status in ``split`` adds a column with the runs of that status.
    """
    return _totals(conn, filters, group, rollups.RUNS, columns, split)


def action_totals(
    conn: sqlite3.Connection, filters: Filters, group: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Action counts by type (and ``group`` keys) over the filtered runs."""
    return _totals(conn, filters, (*group, "type"), rollups.ACTIONS)


def codec_totals(conn: sqlite3.Connection, filters: Filters) -> list[dict[str, Any]]:
    """Succeeded runs and bytes saved by video codec transition (source, target)."""
    return _totals(conn, filters, ("source", "target"), rollups.CODECS)
