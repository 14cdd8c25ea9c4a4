"""Rollups: finished runs summed per UTC day x policy x node x status.

One table of per-run SQL expressions drives everything: adding a run to its rollup row,
rebuilding rollups from raw rows, and summing the raw runs of the edge days that a filter cuts
in two. So an answer read from rollups and one computed from raw rows cannot drift apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

KEY = ("day", "policy", "node", "status")
KEY_EXPR = {
    "day": "substr(r.started_at, 1, 10)",
    "policy": "COALESCE(r.policy, '')",
    "node": "r.node",
    "status": "r.status",
}


def _removed(kind: str) -> str:
    before, after = f"r.tracks_before_{kind}", f"r.tracks_after_{kind}"
    return f"CASE WHEN {before} > {after} THEN {before} - {after} ELSE 0 END"


_SIZED = "r.size_before_bytes IS NOT NULL AND r.size_after_bytes IS NOT NULL"

# Summed columns: name -> expression over one run row ``r``.
SUMS = {
    "runs": "1",
    "sized_runs": f"CASE WHEN {_SIZED} THEN 1 ELSE 0 END",
    "size_before_bytes": f"CASE WHEN {_SIZED} THEN r.size_before_bytes ELSE 0 END",
    "size_after_bytes": f"CASE WHEN {_SIZED} THEN r.size_after_bytes ELSE 0 END",
    "removed_audio": _removed("audio"),
    "removed_subtitle": _removed("subtitle"),
    "removed_attachment": _removed("attachment"),
    "videos_transcoded": (
        "CASE WHEN r.status = 'succeeded' AND r.video_target_codec IS NOT NULL "
        "AND COALESCE(r.video_transcode_skipped, 0) = 0 THEN 1 ELSE 0 END"
    ),
    "videos_transcode_skipped": "CASE WHEN r.video_transcode_skipped = 1 THEN 1 ELSE 0 END",
    "audio_tracks_transcoded": "COALESCE(r.audio_tracks_transcoded, 0)",
    "audio_tracks_preserved": "COALESCE(r.audio_tracks_preserved, 0)",
    "timed_runs": "CASE WHEN r.duration_seconds IS NOT NULL THEN 1 ELSE 0 END",
    "duration_seconds": "COALESCE(r.duration_seconds, 0)",
}
# Extremes: name -> (aggregate, expression).
EXTREMES = {"first_run_at": ("MIN", "r.started_at"), "last_run_at": ("MAX", "r.started_at")}
COLUMNS = (*SUMS, *EXTREMES)


def _select_from_runs(where: str, grouped: bool) -> str:
    keys = ", ".join(f"{KEY_EXPR[k]} AS {k}" for k in KEY)
    if grouped:
        sums = ", ".join(f"SUM({expr})" for expr in SUMS.values())
        extremes = ", ".join(f"{agg}({expr})" for agg, expr in EXTREMES.values())
        group = " GROUP BY " + ", ".join(KEY_EXPR[k] for k in KEY)
    else:
        sums = ", ".join(SUMS.values())
        extremes = ", ".join(expr for _, expr in EXTREMES.values())
        group = ""
    return f"SELECT {keys}, {sums}, {extremes} FROM runs r WHERE {where}{group}"


def _upsert(select_sql: str) -> str:
    updates = [f"{c} = {c} + excluded.{c}" for c in SUMS]
    updates += [
        "first_run_at = MIN(first_run_at, excluded.first_run_at)",
        "last_run_at = MAX(last_run_at, excluded.last_run_at)",
    ]
    return (
        f"INSERT INTO rollup_daily ({', '.join(KEY)}, {', '.join(COLUMNS)}) {select_sql} "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {', '.join(updates)}"
    )


ADD_RUN_SQL = _upsert(_select_from_runs("r.id = ? AND r.status != 'running'", grouped=False))
ADD_RUNS_SQL = _upsert(
    _select_from_runs(
        "r.id IN (SELECT id FROM temp.batch_ids) AND r.status != 'running'", grouped=True
    )
)

_ACTION_KEYS = ", ".join(f"{KEY_EXPR[k]}" for k in KEY)
_ACTION_SELECT = (
    f"SELECT {_ACTION_KEYS}, COALESCE(a.type, ''), COUNT(*), SUM(CASE WHEN a.success THEN 0 ELSE 1 END) "
    "FROM actions a JOIN runs r ON r.id = a.run_id WHERE {where} "
    f"GROUP BY {_ACTION_KEYS}, COALESCE(a.type, '')"
)
_ACTION_UPSERT = (
    f"INSERT INTO rollup_actions ({', '.join(KEY)}, type, count, failed) {{select}} "
    f"ON CONFLICT ({', '.join(KEY)}, type) DO UPDATE SET "
    "count = count + excluded.count, failed = failed + excluded.failed"
)
ADD_RUN_ACTIONS_SQL = _ACTION_UPSERT.format(
    select=_ACTION_SELECT.format(where="r.id = ? AND r.status != 'running'")
)
ADD_ACTION_SQL = _ACTION_UPSERT.format(
    select=_ACTION_SELECT.format(where="a.run_id = ? AND a.seq = ? AND r.status != 'running'")
)
ADD_RUNS_ACTIONS_SQL = _ACTION_UPSERT.format(
    select=_ACTION_SELECT.format(
        where="r.id IN (SELECT id FROM temp.batch_ids) AND r.status != 'running'"
    )
)


def add_run(conn: sqlite3.Connection, run_id: str) -> None:
    """Add one just-finished run (and its actions) to the rollups."""
    conn.execute(ADD_RUN_SQL, (run_id,))
    conn.execute(ADD_RUN_ACTIONS_SQL, (run_id,))


def add_batch(conn: sqlite3.Connection) -> None:
    """Add the finished runs whose ids are in ``temp.batch_ids`` to the rollups."""
    conn.execute(ADD_RUNS_SQL)
    conn.execute(ADD_RUNS_ACTIONS_SQL)


def recompute_keys(conn: sqlite3.Connection, keys: Iterable[tuple[str, str, str, str]]) -> None:
    """Recompute the rollup rows of ``keys`` from the raw runs (after a purge)."""
    key_where = " AND ".join(f"{KEY_EXPR[k]} = ?" for k in KEY)
    for key in set(keys):
        day = key[0]
        # started_at range first so the index on started_at does the work
        bounds = (f"{day}T00:00:00.000000Z", f"{day}T23:59:59.999999Z")
        where = f"r.started_at BETWEEN ? AND ? AND {key_where} AND r.status != 'running'"
        conn.execute(f"DELETE FROM rollup_daily WHERE {' AND '.join(f'{k} = ?' for k in KEY)}", key)
        conn.execute(
            f"DELETE FROM rollup_actions WHERE {' AND '.join(f'{k} = ?' for k in KEY)}", key
        )
        insert_cols = f"{', '.join(KEY)}, {', '.join(COLUMNS)}"
        conn.execute(
            f"INSERT INTO rollup_daily ({insert_cols}) {_select_from_runs(where, grouped=True)}",
            (*bounds, *key),
        )
        conn.execute(
            f"INSERT INTO rollup_actions ({', '.join(KEY)}, type, count, failed) "
            + _ACTION_SELECT.format(where=where),
            (*bounds, *key),
        )


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the raw rows (inside the caller's transaction)."""
    conn.execute("DELETE FROM rollup_daily")
    conn.execute("DELETE FROM rollup_actions")
    conn.execute("DELETE FROM rollup_paths")
    finished = "r.status != 'running'"
    conn.execute(
        f"INSERT INTO rollup_daily ({', '.join(KEY)}, {', '.join(COLUMNS)}) "
        + _select_from_runs(finished, grouped=True)
    )
    conn.execute(
        f"INSERT INTO rollup_actions ({', '.join(KEY)}, type, count, failed) "
        + _ACTION_SELECT.format(where=finished)
    )
    conn.execute(
        "INSERT INTO rollup_paths (path, runs) SELECT path, COUNT(*) FROM runs GROUP BY path"
    )


def raw_select(where: str, group: tuple[str, ...]) -> str:
    """Sum the raw runs matching ``where`` into rollup columns, grouped by ``group`` keys."""
    keys = [f"{KEY_EXPR[k]} AS {k}" for k in group]
    sums = [f"SUM({expr}) AS {name}" for name, expr in SUMS.items()]
    extremes = [f"{agg}({expr}) AS {name}" for name, (agg, expr) in EXTREMES.items()]
    group_sql = (" GROUP BY " + ", ".join(KEY_EXPR[k] for k in group)) if group else ""
    return f"SELECT {', '.join(keys + sums + extremes)} FROM runs r WHERE {where}{group_sql}"


def rollup_select(where: str, group: tuple[str, ...]) -> str:
    """Sum rollup rows matching ``where`` (over alias ``r``), grouped by ``group`` keys."""
    keys = [f"r.{k} AS {k}" for k in group]
    sums = [f"SUM(r.{name}) AS {name}" for name in SUMS]
    extremes = [f"{agg}(r.{name}) AS {name}" for name, (agg, _) in EXTREMES.items()]
    group_sql = (" GROUP BY " + ", ".join(f"r.{k}" for k in group)) if group else ""
    return (
        f"SELECT {', '.join(keys + sums + extremes)} FROM rollup_daily r WHERE {where}{group_sql}"
    )


def raw_actions_select(where: str, group: tuple[str, ...]) -> str:
    """Count raw actions of runs matching ``where``, by action type and ``group`` keys."""
    keys = [f"{KEY_EXPR[k]} AS {k}" for k in group]
    group_sql = ", ".join([KEY_EXPR[k] for k in group] + ["COALESCE(a.type, '')"])
    columns = ", ".join([*keys, "COALESCE(a.type, '') AS type"])
    return (
        f"SELECT {columns}, COUNT(*) AS count, "
        "SUM(CASE WHEN a.success THEN 0 ELSE 1 END) AS failed "
        f"FROM actions a JOIN runs r ON r.id = a.run_id WHERE {where} GROUP BY {group_sql}"
    )


def rollup_actions_select(where: str, group: tuple[str, ...]) -> str:
    """Sum action rollups matching ``where`` (over alias ``r``), by type and ``group`` keys."""
    keys = [f"r.{k} AS {k}" for k in group]
    group_sql = ", ".join([f"r.{k}" for k in group] + ["r.type"])
    return (
        f"SELECT {', '.join([*keys, 'r.type AS type'])}, SUM(r.count) AS count, "
        f"SUM(r.failed) AS failed FROM rollup_actions r WHERE {where} GROUP BY {group_sql}"
    )
