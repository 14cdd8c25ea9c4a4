"""Writes: one short transaction per recorded event; large ones for import and purge."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any

from ..errors import BadParameter
from ..filters import STATUSES, Filters, iso, parse_when
from ..liveness import is_alive
from . import rollups
from .shapes import (
    ACTION_FIELDS,
    PHASE_FIELDS,
    RUN_COLUMNS,
    action_columns,
    run_columns,
)
from .where import run_where


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _insert(table: str, columns: Iterable[str]) -> str:
    cols = list(columns)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


INSERT_RUN = _insert("runs", (*RUN_COLUMNS, "last_activity_at", "pid", "process_started"))
INSERT_ACTION = _insert("actions", ("run_id", "seq", *ACTION_FIELDS))
INSERT_PHASE = _insert("phases", ("run_id", "seq", *PHASE_FIELDS))
ADD_PATH = (
    "INSERT INTO rollup_paths (path, runs) VALUES (?, ?) "
    "ON CONFLICT (path) DO UPDATE SET runs = runs + excluded.runs"
)


def begin_run(conn: sqlite3.Connection, run: dict[str, Any]) -> None:
    """Store a new running run (``run`` in the Run shape, plus ``pid``/``process_started``)."""
    columns = run_columns(run)
    with transaction(conn):
        conn.execute(
            INSERT_RUN,
            [columns[c] for c in RUN_COLUMNS]
            + [run["started_at"], run.get("pid"), run.get("process_started")],
        )
        conn.execute(ADD_PATH, (columns["path"], 1))


def record_action(conn: sqlite3.Connection, run_id: str, action: dict[str, Any], when: str) -> bool:
    """Append one action to a run; False when the run is unknown."""
    columns = action_columns(action)
    with transaction(conn):
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return False
        seq = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM actions WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        conn.execute(INSERT_ACTION, [run_id, seq, *(columns[c] for c in ACTION_FIELDS)])
        conn.execute("UPDATE runs SET last_activity_at = ? WHERE id = ?", (when, run_id))
        if row["status"] != "running":
            conn.execute(rollups.ADD_ACTION_SQL, (run_id, seq))
    return True


def _key(conn: sqlite3.Connection, run_id: str) -> tuple[str, str, str, str] | None:
    keys = ", ".join(rollups.KEY_EXPR[k] for k in rollups.KEY)
    row = conn.execute(f"SELECT {keys} FROM runs r WHERE r.id = ?", (run_id,)).fetchone()
    return None if row is None else tuple(row)


def finish_run(
    conn: sqlite3.Connection, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]
) -> bool:
    """Finish a run with ``fields`` (run columns) and its phases; False when the run is unknown."""
    with transaction(conn):
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return False
        old_key = _key(conn, run_id)
        if fields.get("total_changes") is None:
            fields = dict(fields)
            fields["total_changes"] = conn.execute(
                "SELECT COUNT(*) FROM actions WHERE run_id = ? AND success", (run_id,)
            ).fetchone()[0]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])
        conn.execute("DELETE FROM phases WHERE run_id = ?", (run_id,))
        conn.executemany(
            INSERT_PHASE,
            [[run_id, i, *(p.get(c) for c in PHASE_FIELDS)] for i, p in enumerate(phases, 1)],
        )
        if row["status"] == "running":
            rollups.add_run(conn, run_id)
        else:  # finished twice, or reaped as interrupted before its end arrived
            rollups.recompute_keys(conn, [k for k in (old_key, _key(conn, run_id)) if k])
    return True


def reap_interrupted(
    conn: sqlite3.Connection, node: str, stale_after: float, now: datetime | None = None
) -> int:
    """Mark runs whose process died as interrupted; answers how many."""
    rows = conn.execute(
        "SELECT id, node, pid, process_started, last_activity_at FROM runs WHERE status = 'running'"
    ).fetchall()
    if not rows:
        return 0
    cutoff = iso((now or datetime.now(timezone.utc)) - timedelta(seconds=stale_after))
    dead = [
        r["id"]
        for r in rows
        if (r["node"] == node and not is_alive(r["pid"], r["process_started"]))
        or (r["last_activity_at"] or "") < cutoff
    ]
    if not dead:
        return 0
    with transaction(conn):
        for run_id in dead:
            changed = conn.execute(
                "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?) "
                "WHERE id = ? AND status = 'running'",
                ("interrupted: the processing stopped before the file was done", run_id),
            ).rowcount
            if changed:
                rollups.add_run(conn, run_id)
    return len(dead)


def _normal_time(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return iso(parse_when(str(value)))


def check_run(run: Any) -> dict[str, Any]:
    """Validate an imported run; raises ValueError naming the field."""
    if not isinstance(run, dict):
        raise ValueError("a run must be a JSON object")
    for field in ("id", "path", "started_at", "status"):
        if not run.get(field) or not isinstance(run[field], str):
            raise ValueError(f"missing or non-text field {field!r}")
    if run["status"] not in STATUSES:
        raise ValueError(f"status {run['status']!r} is not one of {', '.join(STATUSES)}")
    out = dict(run)
    for field in ("started_at", "finished_at"):
        try:
            out[field] = _normal_time(run.get(field))
        except ValueError:
            raise ValueError(f"{field} {run.get(field)!r} is not an ISO-8601 time") from None
    for field in ("actions", "phases"):
        if not isinstance(out.get(field) or [], list):
            raise ValueError(f"{field} must be a list")
    return out


def import_runs(
    conn: sqlite3.Connection,
    runs: Iterable[Any],
    *,
    batch_size: int = 5000,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    on_skip: Callable[[int, Any, str], None] | None = None,
) -> dict[str, int]:
    """Insert runs not present yet (by id), in batches; idempotent."""
    counts = {"read": 0, "imported": 0, "present": 0, "skipped": 0}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS batch_ids (id TEXT PRIMARY KEY)")
    iterator = iter(runs)
    while batch := list(islice(iterator, batch_size)):
        good: dict[str, dict[str, Any]] = {}
        for raw in batch:
            counts["read"] += 1
            try:
                run = check_run(raw)
            except ValueError as err:
                counts["skipped"] += 1
                if on_skip:
                    on_skip(counts["read"], raw, str(err))
                continue
            if run["id"] in good:
                counts["present"] += 1
                continue
            good[run["id"]] = run
        with transaction(conn):
            conn.execute("DELETE FROM temp.batch_ids")
            conn.executemany("INSERT INTO temp.batch_ids (id) VALUES (?)", [(i,) for i in good])
            present = {r[0] for r in conn.execute("SELECT id FROM runs WHERE id IN temp.batch_ids")}
            fresh = [run for run_id, run in good.items() if run_id not in present]
            counts["present"] += len(present)
            counts["imported"] += len(fresh)
            conn.executemany(
                INSERT_RUN,
                [
                    [c[name] for name in RUN_COLUMNS]
                    + [run.get("finished_at") or run["started_at"], None, None]
                    for run in fresh
                    for c in (run_columns(run),)
                ],
            )
            conn.executemany(
                INSERT_ACTION,
                [
                    [run["id"], i, *(c[name] for name in ACTION_FIELDS)]
                    for run in fresh
                    for i, action in enumerate(run.get("actions") or [], 1)
                    for c in (action_columns(action),)
                ],
            )
            conn.executemany(
                INSERT_PHASE,
                [
                    [run["id"], i, *(phase.get(name) for name in PHASE_FIELDS)]
                    for run in fresh
                    for i, phase in enumerate(run.get("phases") or [], 1)
                ],
            )
            conn.execute("DELETE FROM temp.batch_ids")
            conn.executemany(
                "INSERT INTO temp.batch_ids (id) VALUES (?)", [(r["id"],) for r in fresh]
            )
            rollups.add_batch(conn)
            paths: dict[str, int] = {}
            for run in fresh:
                paths[run["path"]] = paths.get(run["path"], 0) + 1
            conn.executemany(ADD_PATH, list(paths.items()))
        if on_progress:
            on_progress(dict(counts))
    return counts


def purge(
    conn: sqlite3.Connection, filters: Filters, *, everything: bool = False, dry_run: bool = True
) -> dict[str, int]:
    """Delete the finished runs matching ``filters`` (with actions, phases, rollups) at once."""
    if not everything and filters.empty:
        raise BadParameter(
            "filters", "purge needs --before/--since/--until, --policy, --node, --status or --all"
        )
    where, params = run_where(filters)
    where += " AND r.status != 'running'"
    if dry_run:
        matched = conn.execute(f"SELECT COUNT(*) FROM runs r WHERE {where}", params).fetchone()[0]
        return {"matched": matched, "deleted": 0}
    keys_sql = ", ".join(rollups.KEY_EXPR[k] for k in rollups.KEY)
    with transaction(conn):
        keys = [
            tuple(r)
            for r in conn.execute(f"SELECT DISTINCT {keys_sql} FROM runs r WHERE {where}", params)
        ]
        paths = conn.execute(
            f"SELECT r.path, COUNT(*) FROM runs r WHERE {where} GROUP BY r.path", params
        ).fetchall()
        deleted = conn.execute(
            f"DELETE FROM runs WHERE id IN (SELECT r.id FROM runs r WHERE {where})", params
        ).rowcount
        rollups.recompute_keys(conn, keys)
        conn.executemany(
            "UPDATE rollup_paths SET runs = runs - ? WHERE path = ?", [(n, p) for p, n in paths]
        )
        conn.execute("DELETE FROM rollup_paths WHERE runs <= 0")
    return {"matched": deleted, "deleted": deleted}


def record_error(conn: sqlite3.Connection, cause: str, message: str, count: int, when: str) -> None:
    """Add ``count`` recording errors of ``cause`` to the persistent tally."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO recording_errors (cause, count, first_at, last_at, last_message) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cause) DO UPDATE SET count = count + "
            "excluded.count, last_at = excluded.last_at, last_message = excluded.last_message",
            (cause, count, when, when, message[:2000]),
        )
