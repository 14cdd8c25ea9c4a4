"""Writes: one short transaction per recorded event; large ones for import and purge."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any

from ..errors import BadParameter
from ..filters import STATUSES, Filters, iso
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


def begin_run(conn: sqlite3.Connection, run: dict[str, Any]) -> None:
    """Store a new running run (``run`` in the Run shape, plus ``pid``/``process_started``)."""
    columns = run_columns(run)
    with transaction(conn):
        conn.execute(
            INSERT_RUN,
            [columns[c] for c in RUN_COLUMNS]
            + [run["started_at"], run.get("pid"), run.get("process_started")],
        )
        rollups.add_paths(conn, {columns["path"]: 1})


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
            rollups.add_action(conn, run_id, seq)
    return True


def finish_run(
    conn: sqlite3.Connection, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]
) -> bool:
    """Finish a run with ``fields`` (run columns) and its phases; False when the run is unknown."""
    with transaction(conn):
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return False
        if fields.get("total_changes") is None:
            fields = dict(fields)
            fields["total_changes"] = conn.execute(
                "SELECT COUNT(*) FROM actions WHERE run_id = ? AND success", (run_id,)
            ).fetchone()[0]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        # finished twice, or reaped as interrupted before its end arrived: out of the rollups
        # as it was, back in as it is now
        counted = row["status"] != "running"
        with rollups.removing(conn, "r.id = ?", [run_id]) if counted else nullcontext():
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])
        conn.execute("DELETE FROM phases WHERE run_id = ?", (run_id,))
        conn.executemany(
            INSERT_PHASE,
            [[run_id, i, *(p.get(c) for c in PHASE_FIELDS)] for i, p in enumerate(phases, 1)],
        )
        rollups.add_run(conn, run_id)
    return True


def reap_interrupted(
    conn: sqlite3.Connection, node: str, stale_after: float, now: datetime | None = None
) -> int:
    """Mark runs whose process died as interrupted; answers how many.

    A run of this node is dead when its process (pid and start time) is gone, whatever its age;
    a run of another node, whose processes cannot be seen from here, when it has shown no
    activity (its recorder touches it while it lives) for ``stale_after`` seconds.
    """
    rows = conn.execute(
        "SELECT id, node, pid, process_started, last_activity_at FROM runs WHERE status = 'running'"
    ).fetchall()
    if not rows:
        return 0
    cutoff = iso((now or datetime.now(timezone.utc)) - timedelta(seconds=stale_after))
    dead = [
        r["id"]
        for r in rows
        if (
            not is_alive(r["pid"], r["process_started"])
            if r["node"] == node
            else (r["last_activity_at"] or "") < cutoff
        )
    ]
    if not dead:
        return 0
    reaped = 0
    with transaction(conn):
        for run_id in dead:
            changed = conn.execute(  # a run touched since it was read above is left alone
                "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?) "
                "WHERE id = ? AND status = 'running' "
                "AND (node = ? OR COALESCE(last_activity_at, '') < ?)",
                (
                    "interrupted: the processing stopped before the file was done",
                    run_id,
                    node,
                    cutoff,
                ),
            ).rowcount
            if changed:
                reaped += 1
                rollups.add_run(conn, run_id)
    return reaped


def touch_runs(conn: sqlite3.Connection, run_ids: list[str], when: str) -> None:
    """Mark runs still in flight as active at ``when`` (the recorder's heartbeat)."""
    with transaction(conn):
        conn.executemany(
            "UPDATE runs SET last_activity_at = ? WHERE id = ? AND status = 'running'",
            [(when, run_id) for run_id in run_ids],
        )


_MAX_INT = 2**63
_RUN_INTS = (
    "size_before_bytes",
    "size_after_bytes",
    "audio_tracks_transcoded",
    "audio_tracks_preserved",
    "phases_completed",
    "phases_total",
    "total_changes",
)
_RUN_TEXTS = (
    "job_id",
    "output_path",
    "policy",
    "video_source_codec",
    "video_target_codec",
    "video_skip_reason",
    "encoder_type",
    "hash_before",
    "hash_after",
    "error",
    "source",
)
_ACTION_TEXTS = ("type", "track_type", "rule", "message", "phase")
_PHASE_NUMBERS = (
    "wall_time_seconds",
    "bytes_read",
    "bytes_written",
    "encoding_fps",
    "encoding_bitrate",
)


def _normal_time(value: Any) -> str | None:
    """An ISO-8601 time (UTC when it has no offset) in the stored form; ValueError otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return iso(moment)


def _check_value(where: str, value: Any, kind: str) -> None:
    """Raise ValueError unless ``value`` is None or of ``kind`` (int, count, number, text, bool)."""
    if value is None:
        return
    if kind == "text":
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and abs(value) < _MAX_INT
    else:  # int, or count (an int that cannot be negative)
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < _MAX_INT
        ok = ok and (kind == "int" or value >= 0)
    if not ok:
        want = {"count": "a whole number >= 0", "int": "a whole number"}.get(kind, kind)
        raise ValueError(f"{where} is {value!r}: it must be {want} or null")


def check_run(run: Any) -> dict[str, Any]:
    """Validate an imported run (Run shape); raises ValueError naming the field.

    Everything a run will store is checked before any of it is written, so a bad run is
    skipped whole and never half-imported.
    """
    if not isinstance(run, dict):
        raise ValueError("a run must be a JSON object")
    for field in ("id", "path", "started_at", "status", "node"):
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
    for field in _RUN_INTS:
        _check_value(field, run.get(field), "count")
    for field in _RUN_TEXTS:
        _check_value(field, run.get(field), "text")
    _check_value("duration_seconds", run.get("duration_seconds"), "number")
    _check_value("video_transcode_skipped", run.get("video_transcode_skipped"), "bool")
    file_id = run.get("file_id")
    if not (file_id is None or isinstance(file_id, str)):
        _check_value("file_id", file_id, "int")
    for when in ("tracks_before", "tracks_after"):
        counts = run.get(when)
        if counts is None:
            continue
        if not isinstance(counts, dict):
            raise ValueError(f"{when} must be an object of track counts")
        for kind, value in counts.items():
            _check_value(f"{when}.{kind}", value, "count")
    for field in ("actions", "phases"):
        items = out.get(field) or []
        if not isinstance(items, list):
            raise ValueError(f"{field} must be a list")
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise ValueError(f"{field}[{number}] must be an object")
            if field == "actions":
                for name in _ACTION_TEXTS:
                    _check_value(f"actions[{number}].{name}", item.get(name), "text")
                _check_value(f"actions[{number}].track_index", item.get("track_index"), "int")
                _check_value(f"actions[{number}].duration_ms", item.get("duration_ms"), "number")
                _check_value(f"actions[{number}].success", item.get("success"), "bool")
            else:
                _check_value(f"phases[{number}].name", item.get("name"), "text")
                for name in _PHASE_NUMBERS:
                    _check_value(f"phases[{number}].{name}", item.get(name), "number")
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
            rollups.add_paths(conn, paths)
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
    with transaction(conn):
        paths = conn.execute(
            f"SELECT r.path, COUNT(*) FROM runs r WHERE {where} GROUP BY r.path", params
        ).fetchall()
        with rollups.removing(conn, where, params):
            deleted = conn.execute(
                f"DELETE FROM runs WHERE id IN (SELECT r.id FROM runs r WHERE {where})", params
            ).rowcount
        rollups.remove_paths(conn, {p: n for p, n in paths})
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
