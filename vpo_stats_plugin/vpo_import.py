"""Reads the history VPO keeps in its own ``library.db`` as runs, strictly read-only (stdlib only).

VPO writes one ``processing_stats`` row per processed file (with ``performance_metrics`` rows per
phase) once the file is done. This module opens that database with a read-only URI, reads the
rows by column name (schema 18 and later), and maps each one to a run in the Run shape of
CONTRACT section 4. It never writes to VPO's database: no rows, no schema, no checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .errors import DatabaseUnusable, InputMissing, StatsError
from .filters import iso

KNOWN_SCHEMA = 27  # the newest VPO schema this reader was checked against
FIRST_STATS_SCHEMA = 18  # processing_stats, action_results, performance_metrics appeared here
READ_BATCH = 500  # rows per read query; each query is its own short read transaction
HASH_SCHEME = "sha256-16k:"  # VPO hashes the first 16 KiB; not comparable with our hashes


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# processing_stats columns the reader uses; all but REQUIRED_COLUMNS may be absent
STATS_COLUMNS = _words(
    """id processed_at success file_id policy_name size_before size_after size_change
    audio_tracks_before subtitle_tracks_before attachments_before audio_tracks_after
    subtitle_tracks_after attachments_after duration_seconds phases_completed phases_total
    total_changes video_source_codec video_target_codec video_transcode_skipped video_skip_reason
    audio_tracks_transcoded audio_tracks_preserved hash_before hash_after error_message
    encoder_type job_id"""
)
REQUIRED_COLUMNS = ("id", "processed_at", "success")
PHASE_COLUMNS = _words(
    "phase_name wall_time_seconds bytes_read bytes_written encoding_fps encoding_bitrate"
)
ACTION_COLUMNS = _words(
    """action_type track_type track_index before_state after_state success duration_ms
    rule_reference message"""
)


def default_vpo_path() -> Path:
    """``VPO_DATABASE_PATH`` when set, else ``~/.vpo/library.db``."""
    env = os.environ.get("VPO_DATABASE_PATH")
    return Path(env).expanduser() if env else Path.home() / ".vpo" / "library.db"


class VpoUnavailable(StatsError):
    """VPO's database cannot be read right now (locked, being replaced); exit 1, or retry."""

    def __init__(self, path: Path, cause: object) -> None:
        super().__init__(
            f"cannot read VPO's database {path} right now ({cause}): VPO may hold a lock on it. "
            "Try again in a moment, or use --follow, which retries."
        )
        self.path = path
        self.cause = str(cause)


def _query(conn: sqlite3.Connection, path: Path, sql: str, params: Iterable[Any] = ()) -> list:
    """Run a read on VPO's database; its SQLite errors become errors naming VPO's file."""
    try:
        return conn.execute(sql, list(params)).fetchall()
    except sqlite3.OperationalError as err:
        raise VpoUnavailable(path, err) from None
    except sqlite3.DatabaseError as err:
        raise _unusable(path, f"SQLite cannot read it ({err})") from None


def _unusable(path: Path, why: str) -> DatabaseUnusable:
    return DatabaseUnusable(
        f"{path} cannot be read as VPO's database: {why}. Give the path of VPO's library.db "
        "(default ~/.vpo/library.db, or set VPO_DATABASE_PATH)."
    )


def open_vpo(path: str | Path, *, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open VPO's database read-only (``mode=ro`` URI, ``query_only``); nothing is ever written."""
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise InputMissing(
            f"VPO's database {path} does not exist. Give the path of VPO's library.db "
            "(default ~/.vpo/library.db, or set VPO_DATABASE_PATH)."
        )
    if path.is_dir():
        raise _unusable(path, "it is a directory")
    uri = f"{path.as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None)
    except sqlite3.Error as err:
        raise VpoUnavailable(path, err) from None
    conn.row_factory = sqlite3.Row
    _query(conn, path, "PRAGMA query_only = 1")
    return conn


@dataclass(frozen=True)
class VpoSchema:
    """What the reader found in VPO's database: schema version and the columns it can use."""

    path: Path
    version: int | None
    stats_columns: frozenset[str]
    phase_columns: frozenset[str]
    action_columns: frozenset[str]
    has_files: bool

    def describe(self) -> str:
        """One line for the user: which VPO schema, and whether it is newer than known."""
        if self.version is None:
            text = "VPO schema version unknown (no _meta row)"
        else:
            text = f"VPO schema version {self.version}"
        if self.version is not None and self.version > KNOWN_SCHEMA:
            text += (
                f" (newer than {KNOWN_SCHEMA}, the newest checked: reading known columns by name)"
            )
        return text


def _columns(conn: sqlite3.Connection, path: Path, table: str) -> frozenset[str]:
    return frozenset(row[1] for row in _query(conn, path, f'PRAGMA table_info("{table}")'))


def inspect_vpo(conn: sqlite3.Connection, path: str | Path) -> VpoSchema:
    """Check ``conn`` is a VPO database with processing stats; raises ``DatabaseUnusable``."""
    path = Path(path)
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.OperationalError as err:
        raise VpoUnavailable(path, err) from None
    except sqlite3.DatabaseError as err:
        raise _unusable(path, f"it is not an SQLite database ({err})") from None
    version = None
    if "_meta" in tables:
        rows = _query(conn, path, "SELECT value FROM _meta WHERE key = 'schema_version'")
        if rows and str(rows[0][0]).strip().isdigit():
            version = int(str(rows[0][0]).strip())
    if "processing_stats" not in tables:
        why = "it has no processing_stats table"
        if version is not None and version < FIRST_STATS_SCHEMA:
            why += f" (VPO schema {version}; statistics start at schema {FIRST_STATS_SCHEMA})"
        raise _unusable(path, why)
    stats = _columns(conn, path, "processing_stats")
    missing = [c for c in REQUIRED_COLUMNS if c not in stats]
    if missing:
        raise _unusable(path, f"processing_stats lacks the column(s) {', '.join(missing)}")
    try:
        conn.execute("SELECT rowid FROM processing_stats LIMIT 0")
    except sqlite3.OperationalError:
        raise _unusable(path, "processing_stats has no rowid to read it in order") from None
    return VpoSchema(
        path=path,
        version=version,
        stats_columns=stats,
        phase_columns=_columns(conn, path, "performance_metrics")
        if "performance_metrics" in tables
        else frozenset(),
        action_columns=_columns(conn, path, "action_results")
        if "action_results" in tables
        else frozenset(),
        has_files="files" in tables and "path" in _columns(conn, path, "files"),
    )


_FRACTION = re.compile(r"\.(\d+)")


def parse_vpo_time(value: Any) -> datetime | None:
    """VPO's ``processed_at`` (``isoformat()`` of UTC, maybe ``Z`` or naive) as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    if raw[-1] in "Zz":
        raw = raw[:-1] + "+00:00"
    raw = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], raw, count=1)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class SkipRow(Exception):
    """A VPO row that cannot be a run; the message says why."""


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    try:
        number = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    return number if number is None or math.isfinite(number) else None


def _hash(value: Any) -> str | None:
    return f"{HASH_SCHEME}{value}" if isinstance(value, str) and value else None


def _state(text: Any) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {"text": str(text)}


def map_phase(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``performance_metrics`` row as a phase; VPO's kbps bitrate becomes bits/s."""
    kbps = _float(row.get("encoding_bitrate"))
    return {
        "name": row.get("phase_name"),
        "wall_time_seconds": _float(row.get("wall_time_seconds")),
        "bytes_read": _int(row.get("bytes_read")),
        "bytes_written": _int(row.get("bytes_written")),
        "encoding_fps": _float(row.get("encoding_fps")),
        "encoding_bitrate": None if kbps is None else round(kbps * 1000),
    }


def map_action(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``action_results`` row (VPO as shipped writes none) as an action."""
    return {
        "type": row.get("action_type"),
        "track_type": row.get("track_type"),
        "track_index": _int(row.get("track_index")),
        "before": _state(row.get("before_state")),
        "after": _state(row.get("after_state")),
        "success": bool(row.get("success")),
        "duration_ms": _int(row.get("duration_ms")),
        "rule": row.get("rule_reference"),
        "message": row.get("message"),
        "phase": None,
    }


def _unknown_if_zero(value: Any) -> int | None:
    # VPO as shipped always writes 0 here: a 0 means "never counted", a non-zero value is real
    number = _int(value)
    return number if number else None


def map_row(
    row: Mapping[str, Any],
    *,
    node: str,
    phases: Iterable[Mapping[str, Any]] = (),
    actions: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One ``processing_stats`` row (with ``path`` from ``files``) as a run; raises ``SkipRow``."""
    run_id = row.get("id")
    if not isinstance(run_id, str) or not run_id.strip():
        raise SkipRow(f"its id {run_id!r} is not text")
    finished = parse_vpo_time(row.get("processed_at"))
    if finished is None:
        raise SkipRow(f"processed_at {row.get('processed_at')!r} is not an ISO-8601 time")
    path = row.get("path")
    if not isinstance(path, str) or not path:
        raise SkipRow(f"file_id {row.get('file_id')!r} is not in VPO's files table: no path")
    success = row.get("success")
    if success not in (0, 1, True, False):
        raise SkipRow(f"success is {success!r}, not 0 or 1")
    duration = _float(row.get("duration_seconds"))
    started = finished - timedelta(seconds=duration) if duration and duration > 0 else finished
    before, after = _int(row.get("size_before")), _int(row.get("size_after"))
    if before is not None and after is not None:
        saved = before - after
    else:
        saved = _int(row.get("size_change"))
    skipped = row.get("video_transcode_skipped")

    def tracks(when: str) -> dict[str, int | None]:
        return {
            "video": None,  # VPO does not count video tracks
            "audio": _int(row.get(f"audio_tracks_{when}")),
            "subtitle": _int(row.get(f"subtitle_tracks_{when}")),
            "attachment": _int(row.get(f"attachments_{when}")),
        }

    return {
        "id": run_id,
        "job_id": row.get("job_id"),
        "file_id": row.get("file_id"),
        "path": path,
        "output_path": None,  # VPO does not record where the output went
        "policy": row.get("policy_name"),
        "node": node,
        "status": "succeeded" if success else "failed",
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_seconds": duration,
        "size_before_bytes": before,
        "size_after_bytes": after,
        "saved_bytes": saved,
        "tracks_before": tracks("before"),
        "tracks_after": tracks("after"),
        "video_source_codec": row.get("video_source_codec"),
        "video_target_codec": row.get("video_target_codec"),
        "video_transcode_skipped": None if skipped is None else bool(skipped),
        "video_skip_reason": row.get("video_skip_reason"),
        "audio_tracks_transcoded": _unknown_if_zero(row.get("audio_tracks_transcoded")),
        "audio_tracks_preserved": _unknown_if_zero(row.get("audio_tracks_preserved")),
        "encoder_type": row.get("encoder_type"),
        "phases_completed": _int(row.get("phases_completed")),
        "phases_total": _int(row.get("phases_total")),
        "total_changes": _int(row.get("total_changes")),
        "hash_before": _hash(row.get("hash_before")),
        "hash_after": _hash(row.get("hash_after")),
        "error": row.get("error_message"),
        "source": "vpo",
        "actions": [map_action(a) for a in actions],
        "phases": [map_phase(p) for p in phases],
    }


def _children(
    conn: sqlite3.Connection,
    path: Path,
    table: str,
    columns: frozenset[str],
    wanted: tuple[str, ...],
    ids: list[str],
) -> dict[str, list[dict[str, Any]]]:
    if not columns or not ids or "stats_id" not in columns:
        return {}
    names = [c for c in wanted if c in columns]
    select = ", ".join(f'"{c}"' for c in ["stats_id", *names])
    order = "rowid" if "id" not in columns else "id"
    sql = (
        f'SELECT {select} FROM "{table}" WHERE stats_id IN ({", ".join("?" * len(ids))}) '
        f"ORDER BY {order}"
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in _query(conn, path, sql, ids):
        out.setdefault(row["stats_id"], []).append(dict(row))
    return out


class VpoReader:
    """Reads ``processing_stats`` rows past a rowid as runs; counts what it read and skipped."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        schema: VpoSchema,
        *,
        node: str,
        since: datetime | None = None,
        batch: int = READ_BATCH,
        stop: threading.Event | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.node = node
        self.since = since
        self.batch = batch
        self.stop = stop
        self.read = 0
        self.skipped: list[tuple[str, str]] = []
        self.high_water: tuple[int, str | None] = (0, None)
        names = [c for c in STATS_COLUMNS if c in schema.stats_columns]
        cols = ", ".join(f'ps."{c}"' for c in names)
        path = "f.path" if schema.has_files else "NULL"
        join = " LEFT JOIN files AS f ON f.id = ps.file_id" if schema.has_files else ""
        where = "ps.rowid > ?"
        if since is not None:
            # a coarse, index-friendly bound on the finish time (text); exact test in runs()
            where += " AND ps.processed_at >= ?"
        self._sql = (
            f"SELECT ps.rowid AS _rowid, {cols}, {path} AS path FROM processing_stats AS ps{join} "
            f"WHERE {where} ORDER BY ps.rowid LIMIT ?"
        )

    def _params(self, after: int) -> list[Any]:
        params: list[Any] = [after]
        if self.since is not None:
            params.append((self.since - timedelta(days=1)).date().isoformat())
        return params

    def remaining(self, after_rowid: int = 0) -> int:
        """How many rows lie past ``after_rowid`` (within ``since``), for a progress total."""
        sql = self._sql.split(" ORDER BY")[0]
        sql = "SELECT COUNT(*) FROM (" + sql + ")"
        return int(_query(self.conn, self.schema.path, sql, self._params(after_rowid))[0][0])

    def marker_holds(self, rowid: int, stats_id: str | None) -> bool:
        """Whether the row at ``rowid`` is still ``stats_id`` (else VPO renumbered the table)."""
        if rowid <= 0 or stats_id is None:
            return True
        rows = _query(
            self.conn, self.schema.path, "SELECT id FROM processing_stats WHERE rowid = ?", [rowid]
        )
        return bool(rows) and rows[0][0] == stats_id

    def runs(self, after_rowid: int = 0) -> Iterator[dict[str, Any]]:
        """Runs for the rows past ``after_rowid``, in rowid order; ``high_water`` follows them."""
        after = after_rowid
        while not (self.stop and self.stop.is_set()):
            path = self.schema.path
            params = [*self._params(after), self.batch]
            rows = [dict(r) for r in _query(self.conn, path, self._sql, params)]
            if not rows:
                return
            ids = [r["id"] for r in rows if r.get("id") is not None]
            phases = _children(
                self.conn,
                path,
                "performance_metrics",
                self.schema.phase_columns,
                PHASE_COLUMNS,
                ids,
            )
            actions = _children(
                self.conn, path, "action_results", self.schema.action_columns, ACTION_COLUMNS, ids
            )
            for row in rows:
                after = row["_rowid"]
                self.high_water = (after, row.get("id"))
                try:
                    run = map_row(
                        row,
                        node=self.node,
                        phases=phases.get(row.get("id"), ()),
                        actions=actions.get(row.get("id"), ()),
                    )
                except SkipRow as why:
                    self.read += 1
                    self.skipped.append((str(row.get("id")), str(why)))
                    continue
                if self.since is not None and run["started_at"] < iso(self.since):
                    continue
                self.read += 1
                yield run
            if len(rows) < self.batch:
                return


def read_vpo_runs(
    path: str | Path,
    *,
    node: str,
    since: datetime | None = None,
    after_rowid: int = 0,
    batch: int = READ_BATCH,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(rowid, run)`` for each usable row of VPO's database at ``path`` past ``after_rowid``."""
    conn = open_vpo(path)
    try:
        reader = VpoReader(conn, inspect_vpo(conn, path), node=node, since=since, batch=batch)
        for run in reader.runs(after_rowid):
            yield reader.high_water[0], run
    finally:
        conn.close()
