"""What the engine-neutral store modules ask of an engine: the few spellings and operations that
differ between SQLite and PostgreSQL (docs/multi-node.md). The neutral SQL is written once, with
``?`` placeholders; a connection answers its dialect through ``dialect_of``.

This module is the SQLite dialect; ``postgresql/dialect.py`` overrides what PostgreSQL does
otherwise.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple


class Column(NamedTuple):
    """A column of a stored table, as ``rollups.differences`` compares them."""

    name: str
    is_real: bool  # a floating-point sum: compared within a tolerance
    in_key: bool


class SQLiteDialect:
    """SQLite's spelling (the default for a plain ``sqlite3.Connection``)."""

    name = "sqlite"
    temp = "temp."  # the schema of temporary tables
    Error: type[Exception] = sqlite3.Error  # what the driver raises
    # whether a connection may write from another thread than the one that opened it (an
    # import then reads its source while the last batch is written)
    writes_off_thread = False
    # whether a move into an empty database goes in one transaction, indexes built after it
    loads_empty_as_restore = False

    def classify(self, err: Exception, where: Any) -> Exception:
        """The StatsError for a driver error: locked, unwritable, away, or unusable."""
        from .connection import classify

        return classify(err, where)  # type: ignore[arg-type]

    def server_version(self, conn: Any) -> str | None:
        """The database server's version (an embedded engine has none)."""
        return None

    def size_bytes(self, conn: Any, where: Any) -> int:
        """How much room the database takes: the file and its WAL."""
        from pathlib import Path

        if not isinstance(where, Path):  # in memory, for a server database with no tables yet
            return 0
        return sum(p.stat().st_size for p in (where, Path(f"{where}-wal")) if p.exists())

    def pair(self, agg: str, a: str, b: str) -> str:
        """The smaller (``MIN``) or larger (``MAX``) of two values."""
        return f"{agg}({a}, {b})"

    def greatest(self, *values: str) -> str:
        return f"max({', '.join(values)})"

    def distinct(self, a: str, b: str) -> str:
        """``a`` differs from ``b``, NULL being a value like any other."""
        return f"{a} IS NOT {b}"

    def index_hint(self, index: str) -> str:
        """A hint to read a table through ``index`` (nothing where the engine plans alone)."""
        return f"INDEXED BY {index} "

    def table_exists(self, conn: Any, table: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    MIGRATIONS_TABLE = (
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )

    def begin_migration(self, conn: Any) -> None:
        """The transaction of one migration, which no other process runs at the same time."""
        conn.execute("BEGIN IMMEDIATE")

    def migration(self, name: str, body: Any) -> Any:
        """The body of migration ``name`` on this engine (``body`` is SQLite's)."""
        return body

    def applied_order(self) -> str:
        """How ``_migrations`` lists the migrations in the order they ran."""
        return "rowid"

    def stored_ids(self, conn: Any, ids: list[str]) -> set[str]:
        found = conn.execute(
            "SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
        )
        return {row[0] for row in found}

    def batch_marker(self, conn: Any) -> Any:
        """Something that tells the runs about to be inserted from those already there."""
        return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM runs").fetchone()[0]

    def batch_where(self, conn: Any, marker: Any, ids: list[str]) -> tuple[str, list[Any]]:
        """The runs inserted since ``marker`` (they are ``ids``), over alias ``r``: one range
        scan past the rowid taken before them, in the same transaction."""
        return "r.rowid > ?", [marker]

    def file_id(self, value: Any) -> Any:
        """A file id (a number or a text, kept as it came) as the engine stores it."""
        return value

    def insert_rows(
        self, conn: Any, table: str, columns: tuple[str, ...], rows: list[list[Any]]
    ) -> None:
        """Many new rows of ``table`` (values in the order of ``columns``), in bulk."""
        from .writes import _insert

        conn.executemany(_insert(table, columns), rows)

    def get_wait(self, conn: Any) -> int:
        """How many milliseconds a statement waits for a lock."""
        return int(conn.execute("PRAGMA busy_timeout").fetchone()[0])

    def set_wait(self, conn: Any, ms: int) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(ms)}")

    def columns(self, conn: Any, table: str) -> list[Column]:
        return [
            Column(r[1], r[2].upper() == "REAL", bool(r[5]))
            for r in conn.execute(f"PRAGMA table_info({table})")
        ]

    def copy_table(self, conn: Any, table: str, name: str, rows: bool) -> None:
        """A temporary table ``name`` shaped as ``table`` (keys included), with its rows or
        without; unqualified, ``name`` then means the copy."""
        create = conn.execute(
            "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
        conn.execute(create.replace(f"CREATE TABLE {table}", f"CREATE TEMP TABLE {name}", 1))
        if rows:
            conn.execute(f"INSERT INTO temp.{name} SELECT * FROM main.{table}")

    def backup(self, store: Any, dest: Any) -> None:
        """A consistent copy of ``store`` at ``dest`` as a SQLite stats database."""
        store.copy_into(dest)

    def begin_run_at_once(self, conn: Any, row: dict[str, Any]) -> bool | None:
        """A new running run (``row``: its columns, ``file_id`` as given) and its file counted,
        in one statement that is its own transaction, where that saves a server's round trips:
        True when stored, False when begun already; None when not done this way (SQLite's
        transaction costs no round trip)."""
        return None

    def append_action_at_once(
        self, conn: Any, run_id: str, seq: int | None, columns: dict[str, Any], when: str
    ) -> bool | None:
        """An action added to a running run in one statement, as ``begin_run_at_once``: True
        when stored (now or before), False when the run is unknown, None when not done this
        way (here, or on a server for a run that has ended)."""
        return None

    def finish_run_at_once(
        self, conn: Any, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]
    ) -> bool | None:
        """A running run ended, its phases stored and its rollups added in one statement, as
        ``begin_run_at_once``: True when done, None when not done this way (here, or on a
        server for a run unknown, ended already or holding phases)."""
        return None

    @contextmanager
    def pipelined_transaction(self, conn: Any) -> Iterator[None]:
        """A transaction whose statements may go to the database together (a server's round
        trips saved); SQLite runs in the process: a plain transaction."""
        from .writes import transaction

        with transaction(conn):
            yield

    def analyze(self, conn: Any, tables: tuple[str, ...]) -> None:
        """Give the planner fresh statistics of ``tables`` after a bulk load (SQLite's plans
        here need none)."""

    def settle(self, conn: Any, tables: tuple[str, ...]) -> None:
        """After a bulk load's commit: what lets the first reads be as fast as later ones."""

    @contextmanager
    def indexes_deferred(self, conn: Any, tables: tuple[str, ...]) -> Iterator[None]:
        """The tables' secondary indexes set aside while rows are loaded, built after (an
        engine that gains by it; SQLite keeps them: its import is fast with them)."""
        yield

    @contextmanager
    def bulk(self, conn: Any) -> Iterator[None]:
        """Settings for a long import (see importing.py), restored after it."""
        from .importing import sqlite_bulk

        with sqlite_bulk(conn):
            yield


SQLITE = SQLiteDialect()


def dialect_of(conn: Any) -> SQLiteDialect:
    """The dialect of a connection: its own (a PostgreSQL connection's), else SQLite's."""
    return getattr(conn, "dialect", SQLITE)
