"""The baseline: the same answers as the query layer, computed by full scans of the raw rows.

Written from CONTRACT section 4 without the rollups, so the benchmark also checks, at every
size, that the rollup answers equal the raw ones.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

from vpo_stats_plugin.filters import Filters

SIZED = "status != 'running' AND size_before_bytes IS NOT NULL AND size_after_bytes IS NOT NULL"


def _removed(kind: str) -> str:
    return (
        f"SUM(CASE WHEN tracks_before_{kind} > tracks_after_{kind} "
        f"THEN tracks_before_{kind} - tracks_after_{kind} ELSE 0 END)"
    )


def _status_counts() -> str:
    return ", ".join(
        f"SUM(status = '{s}') AS {s}" for s in ("succeeded", "failed", "interrupted", "running")
    )


def _sizes(before: int, after: int) -> dict[str, Any]:
    return {
        "size_before_bytes": before,
        "size_after_bytes": after,
        "saved_bytes": before - after,
        "saved_percent": round((before - after) * 100.0 / before, 2) if before else 0.0,
    }


SIZE_SUMS = (
    f"COALESCE(SUM(CASE WHEN {SIZED} THEN size_before_bytes END), 0) AS before_bytes, "
    f"COALESCE(SUM(CASE WHEN {SIZED} THEN size_after_bytes END), 0) AS after_bytes"
)


def summary(conn: sqlite3.Connection, filters: Filters) -> dict[str, Any]:
    row = conn.execute(
        f"SELECT COUNT(*) AS runs, {_status_counts()}, COUNT(DISTINCT path) AS files, "
        f"{SIZE_SUMS}, {_removed('audio')} AS ra, {_removed('subtitle')} AS rs, "
        f"{_removed('attachment')} AS rt, "
        "SUM(status = 'succeeded' AND video_target_codec IS NOT NULL "
        "AND COALESCE(video_transcode_skipped, 0) = 0) AS vt, "
        "SUM(video_transcode_skipped = 1) AS vs, SUM(COALESCE(audio_tracks_transcoded, 0)) AS at, "
        "SUM(COALESCE(audio_tracks_preserved, 0)) AS ap, TOTAL(duration_seconds) AS dur, "
        "COUNT(duration_seconds) AS timed, MIN(started_at) AS first, MAX(started_at) AS last "
        "FROM runs"
    ).fetchone()
    return {
        "runs": row["runs"],
        **{s: row[s] or 0 for s in ("succeeded", "failed", "interrupted", "running")},
        "files": row["files"],
        **_sizes(row["before_bytes"], row["after_bytes"]),
        "tracks_removed": {
            "audio": row["ra"] or 0,
            "subtitle": row["rs"] or 0,
            "attachment": row["rt"] or 0,
        },
        "videos_transcoded": row["vt"] or 0,
        "videos_transcode_skipped": row["vs"] or 0,
        "audio_tracks_transcoded": row["at"] or 0,
        "audio_tracks_preserved": row["ap"] or 0,
        "duration_seconds": {
            "total": round(row["dur"], 3),
            "mean": round(row["dur"] / row["timed"], 3) if row["timed"] else 0.0,
        },
        "first_run_at": row["first"],
        "last_run_at": row["last"],
        "filters": filters.as_json(),
    }


def _policy_rows(conn: sqlite3.Connection, where: str = "1", params: tuple = ()) -> list[dict]:
    rows = conn.execute(
        f"SELECT policy, COUNT(*) AS runs, {_status_counts()}, {SIZE_SUMS}, "
        f"MAX(started_at) AS last FROM runs WHERE {where} GROUP BY policy",
        params,
    ).fetchall()
    return [
        {
            "policy": r["policy"],
            "runs": r["runs"],
            **{s: r[s] or 0 for s in ("succeeded", "failed", "interrupted", "running")},
            **_sizes(r["before_bytes"], r["after_bytes"]),
            "last_run_at": r["last"],
        }
        for r in rows
    ]


def policies(conn: sqlite3.Connection, filters: Filters, sort: str = "runs") -> dict[str, Any]:
    rows = sorted(_policy_rows(conn), key=lambda r: r["policy"] or "")
    if sort == "runs":
        rows.sort(key=lambda r: r["runs"], reverse=True)
    elif sort == "saved":
        rows.sort(key=lambda r: r["saved_bytes"], reverse=True)
    return {"policies": rows, "filters": filters.as_json()}


def policy(conn: sqlite3.Connection, name: str, filters: Filters) -> dict[str, Any]:
    (row,) = _policy_rows(conn, "policy = ?", (name,))
    actions = conn.execute(
        "SELECT a.type, COUNT(*) AS count, SUM(NOT a.success) AS failed FROM actions a "
        "JOIN runs r ON r.id = a.run_id WHERE r.policy = ? GROUP BY a.type",
        (name,),
    ).fetchall()
    listed = sorted(actions, key=lambda a: (-a["count"], a["type"] or ""))
    return {
        **row,
        "actions": [
            {"type": a["type"], "count": a["count"], "failed": a["failed"]} for a in listed
        ],
        "filters": filters.as_json(),
    }


def _period(day: str, by: str) -> str:
    if by == "month":
        return day[:7]
    if by == "week":
        d = date.fromisoformat(day)
        return (d - timedelta(days=d.weekday())).isoformat()
    return day


def trend(conn: sqlite3.Connection, filters: Filters, by: str = "day") -> dict[str, Any]:
    rows = conn.execute(
        f"SELECT substr(started_at, 1, 10) AS day, COUNT(*) AS runs, {_status_counts()}, "
        f"{SIZE_SUMS} FROM runs GROUP BY day ORDER BY day"
    ).fetchall()
    points: dict[str, dict[str, Any]] = {}
    for r in rows:
        period = _period(r["day"], by)
        p = points.setdefault(
            period,
            {
                "period": period,
                "runs": 0,
                "succeeded": 0,
                "failed": 0,
                "interrupted": 0,
                "running": 0,
                "size_before_bytes": 0,
                "size_after_bytes": 0,
            },
        )
        p["runs"] += r["runs"]
        for s in ("succeeded", "failed", "interrupted", "running"):
            p[s] += r[s] or 0
        p["size_before_bytes"] += r["before_bytes"]
        p["size_after_bytes"] += r["after_bytes"]
    for p in points.values():
        p["saved_bytes"] = p["size_before_bytes"] - p["size_after_bytes"]
    return {"by": by, "points": list(points.values()), "filters": filters.as_json()}
