"""The stats store: one interface over SQLite (all SQL lives in this package)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..dburl import DatabaseURL
from ..errors import DatabaseUnusable, StatsError
from ..filters import Filters, iso, utcnow
from ..purging import Token
from . import importing, metrics, migrations, reads, rollups, writes
from .connection import (
    BUSY_TIMEOUT_MS,
    NoDatabase,
    classify,
    connect,
    connect_readonly,
    merge_errors,
    read_fallback,
)
from .dialect import dialect_of
from .engines import connect_server, is_server, server_url
from .names import stored_name

__all__ = [
    "Store",
    "empty_store",
    "open_for_reading",
    "open_readonly",
    "open_source",
    "open_store",
    "stored_run_ids",
]

REAP_BUSY_MS = 200  # how long a read waits for the write lock to mark dead runs interrupted
# SQLite result codes from a backup's source (busy, locked, corrupt, not a database), not its copy
_SOURCE_CODES = {5, 6, 11, 26}


class Store:
    """A stats database opened by one thread; reading methods answer CONTRACT shapes."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, node: str, stale_after: float
    ) -> None:
        self.conn = conn
        self.path = path
        self.node = node
        self.stale_after = stale_after
        self._reaped = False

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def reap_on_next_read(self) -> None:
        """Mark dead runs interrupted before the next read, as a new store's first read does
        (a store kept open between requests)."""
        self._reaped = False

    def set_wait(self, ms: int) -> None:
        """How long a statement waits for another connection's lock, in milliseconds."""
        dialect_of(self.conn).set_wait(self.conn, ms)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        dialect = dialect_of(self.conn)
        try:
            return fn(self.conn, *args, **kwargs)
        except StatsError:
            raise
        except dialect.Error as err:  # locked, unwritable (disk full...), away, or corrupt
            raise dialect.classify(err, self.path) from None

    def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._reaped:
            self._reaped = True
            self._guard(self._reap_briefly)
        # names as the recorder stores them (names.py): undecodable bytes of a path as \xNN
        args = tuple(_storable_arg(a) for a in args)
        return self._guard(fn, *args, **kwargs)

    def _reap_briefly(self, conn: sqlite3.Connection) -> None:
        # a read-only or busy database still answers; reaping waits for next time, and a
        # reader never waits out the whole busy timeout for it
        dialect = dialect_of(conn)
        timeout = dialect.get_wait(conn)
        dialect.set_wait(conn, min(timeout, REAP_BUSY_MS))
        try:
            with contextlib.suppress(StatsError):
                self.reap_interrupted()
        finally:
            dialect.set_wait(conn, timeout)

    # reading
    def summary(self, filters: Filters) -> dict[str, Any]:
        return self._read(reads.summary, filters)

    def policies(self, filters: Filters, sort: str = "runs") -> dict[str, Any]:
        return self._read(reads.policies, filters, sort)

    def nodes(self, filters: Filters, sort: str = "runs") -> dict[str, Any]:
        """One row per node, from the rollups (``vpo-stats nodes``, ``GET /api/nodes``)."""
        return self._read(reads.nodes, filters, sort)

    def policy(self, name: str, filters: Filters) -> dict[str, Any]:
        return self._read(reads.policy, name, filters)

    def recent(self, filters: Filters, limit: int = 20) -> dict[str, Any]:
        return self._read(reads.recent, filters, limit)

    def file_runs(self, path: str, filters: Filters) -> dict[str, Any]:
        return self._read(reads.file_runs, path, filters)

    def run(self, ident: str) -> dict[str, Any]:
        return self._read(reads.run, ident)

    def trend(self, filters: Filters, by: str = "day") -> dict[str, Any]:
        return self._read(reads.trend, filters, by)

    def codecs(self, filters: Filters) -> dict[str, Any]:
        """Video codec transitions of the filtered runs, from rollups (the dashboard's chart)."""
        return self._read(reads.codecs, filters)

    def metrics(self) -> dict[str, Any]:
        """What ``GET /metrics`` exports: all-time sums per policy x node x status (from
        rollups) and the recording errors ``status`` reports."""
        groups = self._read(metrics.groups)
        return {"groups": groups, "recording_errors": self.status()["recording_errors"]}

    def iter_runs(self, filters: Filters) -> Iterator[dict[str, Any]]:
        return self._read(reads.iter_runs, filters)

    def status(self) -> dict[str, Any]:
        """Path, schema, size, run counts and the recording errors counted by the hooks."""
        self._read(lambda conn: None)
        conn = self.conn
        dialect = dialect_of(conn)
        size = dialect.size_bytes(conn, self.path)
        # one aggregate per statement: SQLite answers each from one end of the index
        first = conn.execute("SELECT MIN(started_at) FROM runs").fetchone()[0]
        last = conn.execute("SELECT MAX(started_at) FROM runs").fetchone()[0]
        by_status = reads.run_counts(conn)  # from rollups: no scan of the history
        errors = [
            dict(r)
            for r in conn.execute(
                "SELECT cause, count, first_at, last_at, last_message FROM recording_errors "
                "ORDER BY last_at DESC"
            )
        ]
        # failures the database could not take when they happened (see connection.py)
        errors = merge_errors(errors, read_fallback(self.path))
        applied = migrations.applied(conn)
        return {
            "path": str(self.path),
            "engine": dialect.name,
            "server_version": dialect.server_version(conn),
            "schema_version": len(applied),
            "migrations": applied,
            "pending_migrations": migrations.pending(conn),
            "size_bytes": size,
            "runs": sum(by_status.values()),
            "runs_by_status": by_status,
            "first_run_at": first,
            "last_run_at": last,
            "recording_errors": sum(e["count"] for e in errors),
            "recording_error_causes": errors,
        }

    # writing
    def begin_run(self, run: dict[str, Any]) -> None:
        self._guard(writes.begin_run, run)

    def record_action(
        self,
        run_id: str,
        action: dict[str, Any],
        when: str | None = None,
        seq: int | None = None,
    ) -> bool:
        return self._guard(writes.record_action, run_id, action, when or iso(utcnow()), seq)

    def finish_run(self, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]) -> bool:
        return self._guard(writes.finish_run, run_id, fields, phases)

    def import_runs(
        self,
        runs: Iterable[Any],
        batch_size: int = 5000,
        on_progress: Callable[[dict[str, int]], None] | None = None,
        on_skip: Callable[[int, Any, str], None] | None = None,
        from_store: bool = False,
    ) -> dict[str, int]:
        return self._guard(
            importing.import_runs,
            runs,
            batch_size=batch_size,
            on_progress=on_progress,
            on_skip=on_skip,
            from_store=from_store,
        )

    def import_store(
        self,
        source: Store,
        batch_size: int = 5000,
        on_progress: Callable[[dict[str, int]], None] | None = None,
        on_skip: Callable[[int, Any, str], None] | None = None,
    ) -> dict[str, int]:
        """The runs of ``source`` (a SQLite stats database) this one lacks, copied by id."""
        return self._guard(
            importing.import_store,
            source.conn,
            batch_size=batch_size,
            on_progress=on_progress,
            on_skip=on_skip,
        )

    def purge(
        self,
        filters: Filters,
        all: bool = False,
        dry_run: bool = True,
        *,
        at: datetime | None = None,
        expect: Token | None = None,
    ) -> dict[str, Any]:
        """Count (``dry_run``: with the token of the set counted) or delete the finished runs
        ``filters`` select; with ``expect`` only if they are the set that token counted."""
        return self._read(
            writes.purge, filters, everything=all, dry_run=dry_run, at=at, expect=expect
        )

    def reap_interrupted(self) -> int:
        return self._guard(writes.reap_interrupted, self.node, self.stale_after)

    def touch_runs(self, run_ids: list[str], when: str) -> None:
        self._guard(writes.touch_runs, run_ids, when)

    def record_error(self, cause: str, message: str, count: int = 1) -> None:
        self._guard(writes.record_error, cause, message, count, iso(utcnow()))

    def rebuild_rollups(self, check: bool = False) -> dict[str, Any]:
        """Recompute every rollup from the raw runs in one transaction; answers how many rollup
        rows differed per table. With ``check``, the stored rollups are compared only (the Store
        may then be one ``open_readonly`` made)."""

        def rebuild(conn: sqlite3.Connection) -> dict[str, int]:
            # a check reads one snapshot and writes only temporary tables: no write lock, and
            # a read-only database will do
            conn.execute("BEGIN" if check else "BEGIN IMMEDIATE")
            try:
                rollups.keep_copy(conn)
                if check:
                    rollups.shadow(conn)
                rollups.rebuild(conn)
                differing = rollups.differences(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                if check:
                    rollups.unshadow(conn)
            conn.execute("ROLLBACK" if check else "COMMIT")
            return differing

        started = time.monotonic()
        differing = self._guard(rebuild)
        return {
            "path": str(self.path),
            "runs": sum(reads.run_counts(self.conn).values()),
            "checked_only": check,
            "differing_rows": sum(differing.values()),
            "differing_by_table": {t: n for t, n in differing.items() if n},
            "seconds": round(time.monotonic() - started, 3),
        }

    def backup(self, dest: Path) -> None:
        """A consistent copy of the live history at ``dest``, as a SQLite stats database.

        Raises StatsError naming ``dest`` when it cannot be written."""
        dialect_of(self.conn).backup(self, dest)

    def copy_into(self, dest: Path) -> None:
        """SQLite's backup API: the database as it is, page by page (the SQLite backup)."""
        try:
            target = sqlite3.connect(str(dest))
        except sqlite3.Error as err:
            raise StatsError(f"cannot write {dest}: SQLite says: {err}") from None
        try:
            self.conn.backup(target)
        except sqlite3.Error as err:
            if getattr(err, "sqlite_errorcode", 0) & 0xFF in _SOURCE_CODES:
                raise classify(err, self.path) from None
            raise StatsError(f"cannot write {dest}: SQLite says: {err}") from None
        finally:
            target.close()

    def snapshot_into(self, dest: Path) -> None:
        """Every run with its actions and phases, and the recording errors, read in one
        snapshot and written into a new SQLite stats database at ``dest`` (a server's backup)."""
        conn = self.conn
        self._guard(lambda c: c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        try:
            errors = self._guard(
                lambda c: [
                    dict(r)
                    for r in c.execute(
                        "SELECT cause, count, first_at, last_at, last_message FROM recording_errors"
                    )
                ]
            )
            with open_store(dest, node=self.node, stale_after=self.stale_after) as target:
                target.import_runs(self._guard(reads.iter_runs, Filters()), from_store=True)
                target._guard(writes.copy_errors, errors)
        finally:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")


def _storable_arg(value: Any) -> Any:
    if isinstance(value, str):
        return stored_name(value)
    if isinstance(value, Filters) and (value.policy or value.node):
        policy, node = (stored_name(v) if v else v for v in (value.policy, value.node))
        return dataclasses.replace(value, policy=policy, node=node)
    return value


def open_store(
    path: str | Path,
    *,
    create: bool = True,
    node: str | None = None,
    stale_after: float = 86400.0,
    busy_timeout_ms: int = 5000,
    replay: bool = True,
) -> Store:
    """Open (creating and migrating as needed) the stats database at ``path``.

    ``create=False`` is for readers: where there is no database yet (no file, an empty file,
    a SQLite file without our tables) it raises ``NoDatabase`` and creates nothing. Writes an
    earlier process kept on disk for it are saved first, unless ``replay`` is false (the hooks'
    write queue saves them from its keeper thread instead, not in a hook).
    """
    if is_server(path):  # a URL: never a file of that name
        store = _open_server(path, create, node, stale_after, busy_timeout_ms, upgrade=True)
        return _replayed(store) if replay else store
    path = Path(path).expanduser().absolute()
    conn = connect(path, create=create, busy_timeout_ms=busy_timeout_ms)
    try:
        migrations.migrate(conn, str(path))
    except DatabaseUnusable:
        conn.close()
        raise
    except sqlite3.Error as err:
        conn.close()
        raise classify(err, path) from None
    store = Store(conn, path, node=node or socket.gethostname(), stale_after=stale_after)
    return _replayed(store) if replay else store


def _replayed(store: Store) -> Store:
    """``store``, after the writes an earlier process kept on disk for it are saved (spool.py)."""
    from .. import spool

    if spool.waiting(store.path):
        with contextlib.suppress(StatsError):  # away again: they stay kept for next time
            spool.replay(store.path, store)
    return store


def _open_server(
    database: str | DatabaseURL,
    create: bool,
    node: str | None,
    stale_after: float,
    busy_timeout_ms: int,
    *,
    upgrade: bool,
) -> Store:
    """The store on a PostgreSQL server: its schema made (``create``) or upgraded (``upgrade``)
    as on SQLite; a reader of a database with no stats tables yet gets NoDatabase."""
    url = server_url(database)
    conn = connect_server(url, busy_timeout_ms)
    try:
        made = migrations.applied(conn)
        if not made and not create:
            raise NoDatabase(url, f"the {url.server} has no stats tables yet")  # type: ignore[arg-type]
        behind = [] if upgrade else migrations.pending(conn)
        if behind:
            raise OlderSchema(
                f"the {url.server} has an older schema than this plugin's (not yet applied: "
                f"{', '.join(behind)}): any command that writes, e.g. `vpo-stats rebuild`, "
                "upgrades it first"
            )
        migrations.migrate(conn, f"the {url.server}")  # (also refuses a newer schema)
    except StatsError:
        conn.close()
        raise
    except conn.dialect.Error as err:
        conn.close()
        raise conn.dialect.classify(err, url) from None
    return Store(conn, url, node=node or socket.gethostname(), stale_after=stale_after)  # type: ignore[arg-type]


def open_readonly(
    path: str | Path, *, node: str | None = None, stale_after: float = 86400.0
) -> Store:
    """Open the stats database at ``path`` to read only: never created, upgraded or written.

    Raises NoDatabase when there is none, DatabaseUnusable for a file that is not ours or
    not at this version's schema (``open_store`` upgrades it).
    """
    if is_server(path):  # a URL: never a file of that name
        return _open_server(path, False, node, stale_after, BUSY_TIMEOUT_MS, upgrade=False)
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise NoDatabase(path, f"there is no stats database at {path}")
    if path.stat().st_size == 0:
        raise NoDatabase(path, f"{path} is an empty file (0 bytes), not a stats database yet")
    conn = connect_readonly(path)
    conn.isolation_level = None
    conn.row_factory = sqlite3.Row
    try:
        made = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone()
        behind = migrations.pending(conn) if made else []
    except sqlite3.Error as err:
        conn.close()
        raise classify(err, path) from None
    if not made:
        conn.close()
        raise NoDatabase(path, f"{path} is an empty SQLite database, with no stats yet")
    if behind:
        conn.close()
        raise OlderSchema(
            f"{path} has an older schema than this plugin's (not yet applied: "
            f"{', '.join(behind)}): any command that writes, e.g. `vpo-stats rebuild`, "
            "upgrades it first"
        )
    return Store(conn, path, node=node or socket.gethostname(), stale_after=stale_after)


class OlderSchema(DatabaseUnusable):
    """A stats database of an older version, which only a writing open upgrades."""


@contextlib.contextmanager
def open_source(path: str | Path) -> Iterator[Store]:
    """Another stats database to copy runs from (``import SOURCE``), never written: read in one
    snapshot, or, at an older schema, through an upgraded copy in a temporary directory."""
    path = Path(path).expanduser().absolute()
    try:
        store = open_readonly(path)
    except OlderSchema:
        with tempfile.TemporaryDirectory(prefix="vpo-stats-import-") as tmp:
            copy = Path(tmp) / path.name
            with contextlib.closing(connect_readonly(path)) as source:
                _copy_database(source, path, copy)
            with open_store(copy) as upgraded:
                upgraded._reaped = True
                yield upgraded
        return
    with store:
        # the source's runs as they are stored: the target reaps by its own rules
        store._reaped = True
        store.conn.execute("BEGIN")  # one read transaction: one snapshot for every page
        try:
            yield store
        finally:
            store.conn.execute("ROLLBACK")


def _copy_database(source: sqlite3.Connection, path: Path, dest: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(str(dest))) as target:
            source.backup(target)
    except sqlite3.Error as err:
        raise classify(err, path) from None


def open_for_reading(path: str | Path, **options: Any) -> Store:
    """The store at ``path`` for a server's reader (the API, /metrics): where no database
    exists yet, an empty one in memory, so that the answers are empty and no file is made."""
    try:
        return open_store(path, create=False, **options)
    except NoDatabase:
        return empty_store(path, **options)


def empty_store(
    path: str | Path, *, node: str | None = None, stale_after: float = 86400.0
) -> Store:
    """A store with no runs, in memory, answering for ``path`` while no database exists there:
    a reader's empty answers (zeros, empty lists, not found) without creating a file."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    migrations.migrate(conn, ":memory:")
    where = server_url(path) if is_server(path) else Path(path).expanduser().absolute()
    return Store(conn, where, node=node or socket.gethostname(), stale_after=stale_after)  # type: ignore[arg-type]


def stored_run_ids(path: str | Path, run_ids: list[str]) -> set[str]:
    """Which of ``run_ids`` the database at ``path`` holds, read without writing a byte (none
    when there is no database yet): what a dry-run import compares with."""
    if is_server(path):
        try:
            with _open_server(path, False, None, 86400.0, BUSY_TIMEOUT_MS, upgrade=False) as store:
                return store._guard(importing.stored_ids, run_ids)
        except NoDatabase:
            return set()
    path = Path(path).expanduser().absolute()
    if not path.exists() or path.stat().st_size == 0:
        return set()
    conn = connect_readonly(path)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone() is None:
            return set()
        return importing.stored_ids(conn, run_ids)
    except sqlite3.Error as err:
        raise classify(err, path) from None
    finally:
        conn.close()
