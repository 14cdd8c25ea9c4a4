"""Bulk import: runs in the Run shape (an export, VPO's history) checked, then written in large
transactions with their actions, phases and rollups.

Import is the one write whose cost is per run times millions, so checking a run and turning it
into rows is one pass over its fields, with a fast path for the values that are already right
(and the general checks deciding everything else, so both paths agree).
"""

from __future__ import annotations

import gc
import json
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from itertools import islice, product
from typing import Any

from ..filters import STATUSES, iso
from . import rollups
from .dialect import dialect_of
from .shapes import ACTION_FIELDS, DETAIL_FIELDS, PHASE_FIELDS, PLAIN_FIELDS, TRACK_TYPES
from .writes import ACTION_ROW, PHASE_ROW, RUN_ROW, transaction

_MAX_INT = 2**63
REQUIRED_TEXTS = ("id", "path", "started_at", "status", "node")
COUNTS = (
    "size_before_bytes",
    "size_after_bytes",
    "audio_tracks_transcoded",
    "audio_tracks_preserved",
    "phases_completed",
    "phases_total",
    "total_changes",
)
TEXTS = (
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
ACTION_TEXTS = ("type", "track_type", "rule", "message", "phase")  # in ACTION_FIELDS order
PHASE_NUMBERS = PHASE_FIELDS[1:]
_STARTED = PLAIN_FIELDS.index("started_at")
_FINISHED = PLAIN_FIELDS.index("finished_at")
_FILE_ID = PLAIN_FIELDS.index("file_id")
_SKIPPED = DETAIL_FIELDS.index("video_transcode_skipped")
_SOURCE = DETAIL_FIELDS.index("source")
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").fullmatch
_NO_TRACKS = (None,) * len(TRACK_TYPES)
# a run id: a UUID in its usual 8-4-4-4-12 hex form (as uuid.UUID prints it, in either case)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}").fullmatch
UUID_EXAMPLE = "6f1c2d3e-0000-4000-8000-000000000001"


def check_value(where: str, value: Any, kind: str) -> None:
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


# Fast paths: values of these exact types need no more than these checks; anything else goes
# through check_value, which accepts or names the field.
def _texts(values: Iterable[Any], names: tuple[str, ...], where: str = "") -> None:
    for name, value in zip(names, values):
        if value is not None and type(value) is not str:
            check_value(where + name, value, "text")


def _numbers(values: Iterable[Any], names: tuple[str, ...], where: str = "") -> None:
    for name, value in zip(names, values):
        if not _fine_number(value):
            check_value(where + name, value, "number")


def _fine_number(value: Any) -> bool:
    """Plainly fine as a number: None, or an int or finite float SQLite can hold."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value) and -_MAX_INT < value < _MAX_INT
    return value is None or (kind is int and -_MAX_INT < value < _MAX_INT)


def _time(field: str, value: Any) -> str | None:
    """An ISO-8601 time in the stored form (UTC, microseconds, Z); ValueError naming ``field``."""
    if value is None or value == "":
        return None
    if type(value) is str and _STORED_TIME(value):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        return iso(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{field} {value!r} is not an ISO-8601 time") from None


def _track_counts(run: dict[str, Any], when: str) -> tuple[Any, ...]:
    counts = run.get(when)
    if counts is None:
        return _NO_TRACKS
    if not isinstance(counts, dict):
        raise ValueError(f"{when} must be an object of track counts")
    for kind, value in counts.items():
        if value is not None and not (type(value) is int and 0 <= value < _MAX_INT):
            check_value(f"{when}.{kind}", value, "count")
    return tuple(map(counts.get, TRACK_TYPES))


def _items(run: dict[str, Any], field: str) -> list[dict[str, Any]]:
    items = run.get(field) or []
    if not isinstance(items, list):
        raise ValueError(f"{field} must be a list")
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ValueError(f"{field}[{number}] must be an object")
    return items


# made once: json.dumps with options makes an encoder per call
_encode = json.JSONEncoder(sort_keys=True, default=str).encode
MAX_DEPTH = 32  # levels of a stored JSON value: as deep as the recorder keeps a host's values


def _depth(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """How many levels of lists and objects ``value`` has, counted up to ``limit``."""
    if not isinstance(value, (dict, list)) or limit == 0:
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


def _dump(value: Any, where: str) -> str | None:
    """``value`` as stored JSON text; ValueError naming ``where`` if it nests too deeply to be
    read back."""
    if value is None:
        return None
    try:
        text = _encode(value)
    except RecursionError:
        text = None
    # fewer brackets than the limit (nearly always) proves it shallow enough, cheaply
    if text is None or (
        text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH
    ):
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    return text


# Actions whose text fields and success are all of these types need no more type checks.
_TEXT_TYPES = (str, type(None))
_FINE_ACTION_TYPES = frozenset(
    (*texts, success) for texts in product(_TEXT_TYPES, repeat=5) for success in (bool, type(None))
)


def _action_row(run_id: str, seq: int, action: dict[str, Any]) -> list[Any]:
    row = [run_id, seq, *map(action.get, ACTION_FIELDS)]
    # row[2:]: type, track_type, track_index, before, after, success, duration_ms, rule, message, phase
    texts = (row[2], row[3], row[9], row[10], row[11])
    if tuple(map(type, (*texts, row[7]))) not in _FINE_ACTION_TYPES:
        _texts(texts, ACTION_TEXTS, f"actions[{seq}].")
        check_value(f"actions[{seq}].success", row[7], "bool")
    if row[4] is not None and not (type(row[4]) is int and -_MAX_INT < row[4] < _MAX_INT):
        check_value(f"actions[{seq}].track_index", row[4], "int")
    if not _fine_number(row[8]):
        check_value(f"actions[{seq}].duration_ms", row[8], "number")
    row[5] = _dump(row[5], f"actions[{seq}].before")
    row[6] = _dump(row[6], f"actions[{seq}].after")
    row[7] = 1 if row[7] else 0
    return row


def _phase_row(run_id: str, seq: int, phase: dict[str, Any]) -> list[Any]:
    row = [run_id, seq, *map(phase.get, PHASE_FIELDS)]
    if not (type(row[2]) in _TEXT_TYPES and all(map(_fine_number, row[3:]))):
        _texts((row[2],), ("name",), f"phases[{seq}].")
        _numbers(row[3:], PHASE_NUMBERS, f"phases[{seq}].")
    return row


def run_rows(
    run: Any, from_store: bool = False
) -> tuple[list[Any], list[list[Any]], list[list[Any]]]:
    """Check an imported run (Run shape) and answer its runs, actions and phases rows.

    Raises ValueError naming the first bad field: everything a run will store is checked
    before any of it is written, so a bad run is skipped whole and never half-imported.
    ``from_store``: the run comes from another stats database, which took it from a host: a
    finish before its start (a clock set back meanwhile) is kept as that store has it.
    """
    if not isinstance(run, dict):
        raise ValueError("a run must be a JSON object")
    get = run.get
    for field in REQUIRED_TEXTS:
        value = get(field)
        if not value or not isinstance(value, str):
            raise ValueError(f"missing or non-text field {field!r}")
    if run["status"] not in STATUSES:
        raise ValueError(f"status {run['status']!r} is not one of {', '.join(STATUSES)}")
    started = _time("started_at", run["started_at"])
    finished = _time("finished_at", get("finished_at"))
    if finished is not None and finished < started and not from_store:  # (sorts as time does)
        raise ValueError(f"finished_at {finished} is earlier than started_at {started}")
    if not _UUID(run["id"]):
        raise ValueError(f"id {run['id']!r} is not a UUID (like {UUID_EXAMPLE})")
    for field, value in zip(COUNTS, map(get, COUNTS)):
        if value is not None and not (type(value) is int and 0 <= value < _MAX_INT):
            check_value(field, value, "count")
    _texts(map(get, TEXTS), TEXTS)
    _numbers((get("duration_seconds"),), ("duration_seconds",))
    skipped = get("video_transcode_skipped")
    if skipped is not None and type(skipped) is not bool:
        check_value("video_transcode_skipped", skipped, "bool")
    file_id = get("file_id")
    if not (file_id is None or isinstance(file_id, str)):
        check_value("file_id", file_id, "int")
    before, after = _track_counts(run, "tracks_before"), _track_counts(run, "tracks_after")
    actions, phases = _items(run, "actions"), _items(run, "phases")

    run_id = run["id"]
    action_rows = [_action_row(run_id, seq, action) for seq, action in enumerate(actions, 1)]
    phase_rows = [_phase_row(run_id, seq, phase) for seq, phase in enumerate(phases, 1)]
    row = [*map(get, PLAIN_FIELDS), *before, *after, *map(get, DETAIL_FIELDS)]
    row[_STARTED], row[_FINISHED] = started, finished
    detail = len(PLAIN_FIELDS) + 2 * len(TRACK_TYPES)
    if skipped is not None:
        row[detail + _SKIPPED] = int(skipped)
    row[detail + _SOURCE] = row[detail + _SOURCE] or "hooks"
    row += [finished or started, None, None]  # last_activity_at, pid, process_started
    return row, action_rows, phase_rows


IMPORT_CACHE_KIB = 64 * 1024  # SQLite's page cache while importing: indexes stay in memory
# WAL pages (4 KiB) before SQLite copies them back: the default 1,000 copies the same index
# pages back after every batch; this many keeps the WAL near 300 MiB and costs no speed
IMPORT_AUTOCHECKPOINT_PAGES = 65_536


@contextmanager
def sqlite_bulk(conn: sqlite3.Connection) -> Iterator[None]:
    """SQLite's settings for a long import, restored after it."""
    collecting = gc.isenabled()
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    autocheckpoint = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    try:
        # the rows made here hold no cycles, and with many runs in memory (a caller's list)
        # every collection walks them all: half the time went there
        gc.disable()
        conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        # every action and phase written belongs to a run written in the same transaction
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(f"PRAGMA wal_autocheckpoint = {IMPORT_AUTOCHECKPOINT_PAGES}")
        yield
    finally:
        if collecting:
            gc.enable()
        for pragma in (
            "wal_checkpoint(PASSIVE)",
            f"wal_autocheckpoint = {autocheckpoint}",
            "foreign_keys = ON",
            f"cache_size = {cache}",
        ):
            with suppress(sqlite3.Error):  # an import that failed on the database says why
                conn.execute(f"PRAGMA {pragma}")


def import_store(
    conn: sqlite3.Connection,
    source: sqlite3.Connection,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    on_skip: Callable[[int, Any, str], None] | None = None,
) -> dict[str, int]:
    """Copy the runs of another stats database (``source``, SQLite, this plugin's schema) not
    present yet (by id), rows as its tables hold them; idempotent.

    A transaction per batch, except a move into an empty database on an engine that loads
    faster without its indexes (PostgreSQL): then one transaction, the indexes built and the
    rollups computed once at the end, as a restore does.
    """
    counts = {"read": 0, "imported": 0, "present": 0, "skipped": 0}
    dialect = dialect_of(conn)
    batches = _copied_batches(source, batch_size, counts, on_skip)

    def write(good: Checked) -> None:
        _write_batch(conn, good, counts)

    with dialect.bulk(conn):
        if dialect.loads_empty_as_restore:
            restored = False
            with transaction(conn):
                if _empty_and_held(conn):
                    with dialect.indexes_deferred(conn, ("runs", "actions", "phases")):
                        _each(batches, lambda good: _load(conn, good, counts), True,
                              counts, on_progress)  # fmt: skip
                    rollups.rebuild(conn)
                    dialect.analyze(conn, ("runs", "actions", "phases", *rollups.TABLES))
                    restored = True
            if restored:
                dialect.settle(conn, rollups.TABLES)
                return counts
        _each(batches, write, dialect.writes_off_thread, counts, on_progress)
    return counts


def _empty_and_held(conn: sqlite3.Connection) -> bool:
    """Whether the database holds no run yet; if so its run tables are locked against every
    other writer and reader until the caller's transaction ends (nodes' writes wait in their
    queue), so that nothing lands between the load and the rollups computed after it."""
    if conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None:
        return False
    conn.execute("LOCK TABLE runs, actions, phases IN ACCESS EXCLUSIVE MODE")
    return conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None


def _each(
    batches: Iterator[Checked],
    write: Callable[[Checked], None],
    off_thread: bool,
    counts: dict[str, int],
    on_progress: Callable[[dict[str, int]], None] | None,
) -> None:
    """``write`` each batch; with ``off_thread``, one batch is written while the next is read
    (a server works while this process reads: a third off a 1M-run move)."""
    if not off_thread:
        for good in batches:
            write(good)
            if on_progress:
                on_progress(dict(counts))
        return
    with ThreadPoolExecutor(1, thread_name_prefix="vpo-stats-import") as writer:
        writing: Future[None] | None = None
        for good in batches:
            if writing is not None:
                writing.result()
                if on_progress:
                    on_progress(dict(counts))
            writing = writer.submit(write, good)
        if writing is not None:
            writing.result()
            if on_progress:
                on_progress(dict(counts))


def _load(conn: sqlite3.Connection, good: Checked, counts: dict[str, int]) -> None:
    """The rows of one batch into an empty database's tables (the caller's transaction)."""
    fresh = [rows for _, rows in good.values()]
    counts["imported"] += len(fresh)
    _insert_rows(conn, fresh)


_RUN_INDEX = {name: i for i, name in enumerate(RUN_ROW)}
_ID, _PATH, _STATUS, _START = (_RUN_INDEX[n] for n in ("id", "path", "status", "started_at"))
_POLICY, _NODE = _RUN_INDEX["policy"], _RUN_INDEX["node"]
_REQUIRED = [_RUN_INDEX[n] for n in REQUIRED_TEXTS]
_LAST_ACTIVITY = _RUN_INDEX["last_activity_at"]


def _copied_batches(
    source: sqlite3.Connection,
    batch_size: int,
    counts: dict[str, int],
    on_skip: Callable[[int, Any, str], None] | None,
) -> Iterator[Checked]:
    """The source's runs a batch at a time, with their actions and phases, as stored.

    A store checked every value when it wrote it, so the rows are taken as they are (turning
    them into runs and checking those again took half a 1M-run move); only what would make a
    run unusable is looked at. Liveness is the target's own: no pid, last activity its end.
    """
    columns = ", ".join(f"r.{c}" for c in RUN_ROW[:_LAST_ACTIVITY])
    details = {
        name: ", ".join(f"d.{c}" for c in row)
        for name, row in (("actions", ACTION_ROW), ("phases", PHASE_ROW))
    }
    cursor = source.cursor()
    cursor.row_factory = None  # plain tuples: a third of the time went to sqlite3.Row
    finished = _RUN_INDEX["finished_at"]
    after = 0
    while True:
        runs = cursor.execute(
            f"SELECT r.rowid, {columns} FROM runs r WHERE r.rowid > ? ORDER BY r.rowid LIMIT ?",
            (after, batch_size),
        ).fetchall()
        if not runs:
            return
        last = runs[-1][0]
        found: list[dict[str, list[Any]]] = []
        for selected_table, selected in details.items():
            rows: dict[str, list[Any]] = {}
            for row in cursor.execute(
                f"SELECT {selected} FROM runs r JOIN {selected_table} d ON d.run_id = r.id "
                "WHERE r.rowid > ? AND r.rowid <= ?",
                (after, last),
            ).fetchall():
                rows.setdefault(row[0], []).append(row)
            found.append(rows)
        actions_of, phases_of = found
        after = last
        good: Checked = {}
        for stored in runs:
            counts["read"] += 1
            row = [*stored[1:], None, None, None]
            why = _unusable(row)
            if why is not None:
                counts["skipped"] += 1
                if on_skip:
                    on_skip(counts["read"], {"id": row[_ID]}, why)
                continue
            run_id = row[_ID]
            row[_LAST_ACTIVITY] = row[finished] or row[_START]
            good[run_id] = (
                row[_PATH],
                (row, actions_of.get(run_id, []), phases_of.get(run_id, [])),
            )
        yield good


def _unusable(row: list[Any]) -> str | None:
    """Why a stored run could not be kept (a damaged or hand-edited source), if it could not."""
    for i in _REQUIRED:
        if not row[i] or not isinstance(row[i], str):
            return f"missing or non-text field {RUN_ROW[i]!r}"
    if row[_STATUS] not in STATUSES:
        return f"status {row[_STATUS]!r} is not one of {', '.join(STATUSES)}"
    if not _UUID(row[_ID]):
        return f"id {row[_ID]!r} is not a UUID (like {UUID_EXAMPLE})"
    return None


def import_runs(
    conn: sqlite3.Connection,
    runs: Iterable[Any],
    *,
    batch_size: int = 5000,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    on_skip: Callable[[int, Any, str], None] | None = None,
    from_store: bool = False,
) -> dict[str, int]:
    """Insert runs not present yet (by id), a transaction per batch; idempotent."""
    counts = {"read": 0, "imported": 0, "present": 0, "skipped": 0}
    with dialect_of(conn).bulk(conn):
        for good in _checked_batches(runs, batch_size, counts, on_skip, from_store):
            _write_batch(conn, good, counts)
            if on_progress:
                on_progress(dict(counts))
    return counts


Checked = dict[str, tuple[str, tuple[list, list, list]]]  # run id -> path, rows


def _checked_batches(
    runs: Iterable[Any],
    batch_size: int,
    counts: dict[str, int],
    on_skip: Callable[[int, Any, str], None] | None,
    from_store: bool = False,
) -> Iterator[Checked]:
    """The good runs of each batch with their rows, counting what was read, skipped (each
    reported to ``on_skip``) and repeated within the batch."""
    iterator = iter(runs)
    while batch := list(islice(iterator, batch_size)):
        good: Checked = {}
        for raw in batch:
            counts["read"] += 1
            try:
                rows = run_rows(raw, from_store)
            except (ValueError, RecursionError) as err:
                counts["skipped"] += 1
                if on_skip:
                    why = str(err) if isinstance(err, ValueError) else "a value nests too deeply"
                    on_skip(counts["read"], raw, why)
                continue
            if raw["id"] in good:
                counts["present"] += 1
            else:
                good[raw["id"]] = (raw["path"], rows)
        yield good


def _write_batch(
    conn: sqlite3.Connection,
    good: Checked,
    counts: dict[str, int],
) -> None:
    """Write the runs of one batch not stored yet."""
    with transaction(conn):
        present = stored_ids(conn, list(good))
        fresh = [rows for run_id, (_, rows) in good.items() if run_id not in present]
        counts["present"] += len(present)
        counts["imported"] += len(fresh)
        if not fresh:
            return
        dialect = dialect_of(conn)
        marker = dialect.batch_marker(conn)
        runs = _insert_rows(conn, fresh)
        rollups.add_batch(conn, *dialect.batch_where(conn, marker, [run[0] for run in runs]))
        files: rollups.Files = {}
        for run in runs:
            key = (run[_PATH], run[_POLICY], run[_NODE])
            files[key] = files.get(key, 0) + 1
        rollups.count_files(conn, files)


def _insert_rows(conn: sqlite3.Connection, fresh: list[tuple[list, list, list]]) -> list[list]:
    """Insert runs with their actions and phases; answers the run rows."""
    dialect = dialect_of(conn)
    runs = [run for run, _, _ in fresh]
    for run in runs:
        run[_FILE_ID] = dialect.file_id(run[_FILE_ID])
    dialect.insert_rows(conn, "runs", RUN_ROW, runs)
    dialect.insert_rows(conn, "actions", ACTION_ROW, [a for _, rows, _ in fresh for a in rows])
    dialect.insert_rows(conn, "phases", PHASE_ROW, [p for _, _, rows in fresh for p in rows])
    return runs


def stored_ids(conn: sqlite3.Connection, run_ids: list[str]) -> set[str]:
    """Which of ``run_ids`` are stored already."""
    return dialect_of(conn).stored_ids(conn, run_ids)


def count_import(
    runs: Iterable[Any],
    known: Callable[[list[str]], set[str]],
    *,
    batch_size: int = 5000,
    on_skip: Callable[[int, Any, str], None] | None = None,
) -> dict[str, int]:
    """What ``import_runs`` would do, writing nothing: ``known(ids)`` answers which are stored.

    ``imported`` counts the runs that would be imported.
    """
    counts = {"read": 0, "imported": 0, "present": 0, "skipped": 0}
    for good in _checked_batches(runs, batch_size, counts, on_skip):
        stored = known(list(good))
        counts["present"] += len(stored)
        counts["imported"] += len(good) - len(stored)
    return counts
