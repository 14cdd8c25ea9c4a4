"""Read queries: every answer in the JSON shape of CONTRACT section 4."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from ..errors import BadParameter, NotFound
from ..filters import Filters
from . import aggregate, rollups
from .dialect import dialect_of
from .shapes import action_json, phase_json, run_json
from .where import run_where

SORTS = ("runs", "saved", "name")
PERIODS = ("day", "week", "month")
MIN_PREFIX = 8


def _percent(saved: int, before: int) -> float:
    return round(saved * 100.0 / before, 2) if before else 0.0


def _sizes(row: dict[str, Any]) -> dict[str, Any]:
    before, after = row.get("size_before_bytes") or 0, row.get("size_after_bytes") or 0
    return {
        "size_before_bytes": before,
        "size_after_bytes": after,
        "saved_bytes": before - after,
        "saved_percent": _percent(before - after, before),
    }


def _by_status(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold per-status totals into one total with a count per status."""
    total: dict[str, Any] = {
        "runs": 0,
        "succeeded": 0,
        "failed": 0,
        "interrupted": 0,
        "running": 0,
    }
    for row in rows:
        total[row["status"]] = total.get(row["status"], 0) + row["runs"]
        for name, value in row.items():
            if name in ("status", "policy", "day", "node"):
                continue
            if name in ("first_run_at", "last_run_at"):
                pick = min if name == "first_run_at" else max
                values = [v for v in (total.get(name), value) if v is not None]
                total[name] = pick(values) if values else None
            else:
                total[name] = total.get(name, 0) + (value or 0)
    total.setdefault("first_run_at", None)
    total.setdefault("last_run_at", None)
    return total


def run_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Runs by status, from the all-time rollup plus the running runs (no history scan)."""
    counts = {
        status: n
        for status, n in conn.execute("SELECT status, SUM(runs) FROM rollup_total GROUP BY status")
        if n
    }
    running = conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
    if running:
        counts["running"] = running
    return counts


# Distinct files under a filter cannot be summed from rollups. A filter matching a large share
# of all runs is counted in one pass over the index (path, started_at, policy, node, status),
# in path order: no table row read, no temporary b-tree for DISTINCT. A narrow one goes through
# the index of its filter and reads the matched rows (contiguous for time ranges, as runs are
# stored in the order they start; scattered for policy, node or status). The shares are where
# the two cost the same, measured on the benchmark's history (benchmarks/bench.py).
DENSE_SHARE_TIME = 12
DENSE_SHARE_OTHER = 50


def _one_key(filters: Filters) -> tuple[str, str] | None:
    """The policy, node or end status a filter names, when it names that and nothing else:
    its files are kept counted (``rollup_path_keys``; running runs' status is not)."""
    if filters.since is not None or filters.until is not None:
        return None
    named = [
        (dim, value)
        for dim, value in (
            ("policy", filters.policy),
            ("node", filters.node),
            ("status", filters.status),
        )
        if value is not None
    ]
    if len(named) == 1 and named[0] != ("status", "running"):
        return named[0]
    return None


def _distinct_files(conn: sqlite3.Connection, filters: Filters, matched: int) -> int:
    if filters.empty:
        return rollups.files(conn)
    if not matched:
        return 0
    keyed = _one_key(filters)
    if keyed is not None:
        return rollups.files_within(conn, *keyed)
    where, params = run_where(filters)
    total = sum(run_counts(conn).values())
    time_only = filters.policy is None and filters.node is None and filters.status is None
    share = DENSE_SHARE_TIME if time_only else DENSE_SHARE_OTHER
    hint = dialect_of(conn).index_hint("runs_path_filters") if matched * share >= total else ""
    return conn.execute(
        f"SELECT COUNT(DISTINCT r.path) FROM runs r {hint}WHERE {where}", params
    ).fetchone()[0]


def summary(conn: sqlite3.Connection, filters: Filters) -> dict[str, Any]:
    """Totals over the filtered runs."""
    t = _by_status(aggregate.totals(conn, filters, ("status",)))
    duration = t.get("duration_seconds", 0) or 0.0
    timed = t.get("timed_runs", 0)
    return {
        "runs": t["runs"],
        "succeeded": t["succeeded"],
        "failed": t["failed"],
        "interrupted": t["interrupted"],
        "running": t["running"],
        "files": _distinct_files(conn, filters, t["runs"]),
        **_sizes(t),
        "tracks_removed": {
            "audio": t.get("removed_audio", 0),
            "subtitle": t.get("removed_subtitle", 0),
            "attachment": t.get("removed_attachment", 0),
        },
        "videos_transcoded": t.get("videos_transcoded", 0),
        "videos_transcode_skipped": t.get("videos_transcode_skipped", 0),
        "audio_tracks_transcoded": t.get("audio_tracks_transcoded", 0),
        "audio_tracks_preserved": t.get("audio_tracks_preserved", 0),
        "duration_seconds": {
            "total": round(duration, 3),
            "mean": round(duration / timed, 3) if timed else 0.0,
        },
        "first_run_at": t["first_run_at"],
        "last_run_at": t["last_run_at"],
        "filters": filters.as_json(),
    }


def _group_row(key: str, name: str | None, t: dict[str, Any]) -> dict[str, Any]:
    return {
        key: name,
        "runs": t["runs"],
        "succeeded": t["succeeded"],
        "failed": t["failed"],
        "interrupted": t["interrupted"],
        "running": t["running"],
        **_sizes(t),
        "last_run_at": t["last_run_at"],
    }


def _grouped(
    conn: sqlite3.Connection, filters: Filters, key: str, sort: str
) -> list[dict[str, Any]]:
    """One row per value of ``key`` (policy or node), in the order ``sort`` names."""
    if sort not in SORTS:
        raise BadParameter("sort", f"{sort!r} is not one of {', '.join(SORTS)}")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in aggregate.totals(conn, filters, (key, "status")):
        grouped.setdefault(row[key], []).append(row)
    rows = [_group_row(key, name or None, _by_status(items)) for name, items in grouped.items()]
    rows.sort(key=lambda r: r[key] or "")
    if sort == "runs":
        rows.sort(key=lambda r: r["runs"], reverse=True)
    elif sort == "saved":
        rows.sort(key=lambda r: r["saved_bytes"], reverse=True)
    return rows


def policies(conn: sqlite3.Connection, filters: Filters, sort: str = "runs") -> dict[str, Any]:
    """One row per policy."""
    return {"policies": _grouped(conn, filters, "policy", sort), "filters": filters.as_json()}


def nodes(conn: sqlite3.Connection, filters: Filters, sort: str = "runs") -> dict[str, Any]:
    """One row per node (the machine that recorded the runs)."""
    return {"nodes": _grouped(conn, filters, "node", sort), "filters": filters.as_json()}


def policy(conn: sqlite3.Connection, name: str, filters: Filters) -> dict[str, Any]:
    """One policy's totals and its actions by type."""
    if filters.policy is not None and filters.policy != name:
        raise BadParameter("policy", f"the filter --policy {filters.policy!r} contradicts {name!r}")
    scoped = replace(filters, policy=name)
    t = _by_status(aggregate.totals(conn, scoped, ("status",)))
    if not t["runs"]:
        raise NotFound(
            f"no stats for policy {name!r}" + ("" if filters.empty else " with these filters"),
            cli_hint="`vpo-stats policies` lists the policies that have runs",
            web_hint="GET api/policies lists the policies that have runs",
        )
    actions = aggregate.action_totals(conn, scoped)
    actions.sort(key=lambda a: (-a["count"], a["type"]))
    return {
        **_group_row("policy", name, t),
        "actions": [
            {"type": a["type"] or None, "count": a["count"], "failed": a["failed"]} for a in actions
        ],
        "filters": filters.as_json(),
    }


def recent(conn: sqlite3.Connection, filters: Filters, limit: int = 20) -> dict[str, Any]:
    """Newest runs first."""
    if not 1 <= int(limit) <= 1000:
        raise BadParameter("limit", f"{limit} is not between 1 and 1000")
    where, params = run_where(filters)
    rows = conn.execute(
        f"SELECT * FROM runs r WHERE {where} ORDER BY r.started_at DESC, r.id LIMIT ?",
        [*params, int(limit)],
    ).fetchall()
    return {"runs": [run_json(r) for r in rows], "filters": filters.as_json()}


def file_runs(conn: sqlite3.Connection, path: str, filters: Filters) -> dict[str, Any]:
    """Every run of one file (by its path or the path it was written to), oldest first."""
    where, params = run_where(filters)
    rows = conn.execute(
        f"SELECT * FROM runs r WHERE (r.path = ? OR r.output_path = ?) AND {where} "
        "ORDER BY r.started_at, r.id",
        [path, path, *params],
    ).fetchall()
    if not rows:
        hint = "shows the paths recorded"
        if "\\x5c" in path:  # perhaps a path as shown, \xNN standing for a byte (names.py)
            hint += "; one shown with \\xNN has bytes that are not UTF-8: give its real name"
        raise NotFound(
            f"no stats for file {path!r}",
            cli_hint=f"`vpo-stats recent` {hint}",
            web_hint=f"GET api/recent {hint}",
        )
    return {"path": path, "runs": [run_json(r) for r in rows], "filters": filters.as_json()}


def _details(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[list, list]]:
    out: dict[str, tuple[list, list]] = {i: ([], []) for i in ids}
    marks = ", ".join("?" * len(ids))
    for row in conn.execute(
        f"SELECT * FROM actions WHERE run_id IN ({marks}) ORDER BY run_id, seq", ids
    ):
        out[row["run_id"]][0].append(action_json(row))
    for row in conn.execute(
        f"SELECT * FROM phases WHERE run_id IN ({marks}) ORDER BY run_id, seq", ids
    ):
        out[row["run_id"]][1].append(phase_json(row))
    return out


def run(conn: sqlite3.Connection, ident: str) -> dict[str, Any]:
    """One run with actions and phases, by id or a unique prefix of 8+ characters."""
    ident = ident.strip().lower()
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (ident,)).fetchone()
    if row is None:
        if len(ident) < MIN_PREFIX:
            raise BadParameter(
                "run_id",
                f"{ident!r} is too short: give the whole id or at least {MIN_PREFIX} characters",
            )
        rows = conn.execute(
            "SELECT * FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            (ident, ident + "\U0010ffff"),
        ).fetchall()
        if not rows:
            raise NotFound(
                f"no run {ident!r}",
                cli_hint="`vpo-stats recent` lists run ids",
                web_hint="GET api/recent lists run ids",
            )
        if len(rows) > 1:
            raise BadParameter("run_id", f"{ident!r} matches several runs: give more characters")
        row = rows[0]
    out = run_json(row)
    out["actions"], out["phases"] = _details(conn, [out["id"]])[out["id"]]
    return out


def _period(day: str, by: str) -> str:
    if by == "month":
        return day[:7]
    if by == "week":
        d = date.fromisoformat(day)
        return (d - timedelta(days=d.weekday())).isoformat()
    return day


TREND_COLUMNS = ("runs", "size_before_bytes", "size_after_bytes")
TREND_STATUSES = ("succeeded", "failed", "interrupted", "running")


def trend(conn: sqlite3.Connection, filters: Filters, by: str = "day") -> dict[str, Any]:
    """Totals per day, week (its Monday) or month."""
    if by not in PERIODS:
        raise BadParameter("by", f"{by!r} is not one of {', '.join(PERIODS)}")
    periods: dict[str, dict[str, Any]] = {}
    rows = aggregate.totals(conn, filters, ("day",), TREND_COLUMNS, TREND_STATUSES)
    for row in sorted(rows, key=lambda r: r["day"]):
        period = row["day"] if by == "day" else _period(row["day"], by)
        point = periods.get(period)
        if point is None:
            point = periods[period] = {"period": period, "runs": 0}
            point.update(dict.fromkeys(TREND_STATUSES, 0))
            point.update(size_before_bytes=0, size_after_bytes=0)
        point["runs"] += row["runs"]
        for status in TREND_STATUSES:
            point[status] += row[status]
        point["size_before_bytes"] += row["size_before_bytes"]
        point["size_after_bytes"] += row["size_after_bytes"]
    points = list(periods.values())
    for point in points:
        point["saved_bytes"] = point["size_before_bytes"] - point["size_after_bytes"]
    return {"by": by, "points": points, "filters": filters.as_json()}


def codecs(conn: sqlite3.Connection, filters: Filters) -> dict[str, Any]:
    """Video codec transitions (source -> target) of the filtered succeeded runs, most first.

    Counts succeeded runs that recorded a video codec; ``target`` is null when the transcode
    was skipped or no target was recorded; ``saved_bytes`` over the runs whose sizes are known.
    """
    rows = [
        {
            "source": row["source"] or None,
            "target": row["target"] or None,
            "runs": row["runs"],
            "saved_bytes": row["saved_bytes"],
        }
        for row in aggregate.codec_totals(conn, filters)
        if row["runs"]
    ]
    rows.sort(key=lambda e: (-e["runs"], e["source"] or "", e["target"] or ""))
    return {"transitions": rows, "filters": filters.as_json()}


def iter_runs(
    conn: sqlite3.Connection, filters: Filters, chunk: int = 500
) -> Iterator[dict[str, Any]]:
    """Every matching run with actions and phases, oldest first, in constant memory."""
    where, params = run_where(filters)
    after: tuple[str, str] = ("", "")
    while True:
        rows = conn.execute(
            f"SELECT * FROM runs r WHERE {where} AND (r.started_at, r.id) > (?, ?) "
            "ORDER BY r.started_at, r.id LIMIT ?",
            [*params, *after, chunk],
        ).fetchall()
        if not rows:
            return
        details = _details(conn, [r["id"] for r in rows])
        for row in rows:
            out = run_json(row)
            out["actions"], out["phases"] = details[out["id"]]
            yield out
        after = (rows[-1]["started_at"], rows[-1]["id"])
