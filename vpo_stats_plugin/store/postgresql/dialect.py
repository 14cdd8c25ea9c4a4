"""PostgreSQL's spelling of what the neutral store modules ask (see ``store/dialect.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ..dialect import Column, SQLiteDialect

# pg_advisory_xact_lock key of migrations: nodes starting together create the schema once
MIGRATION_LOCK = 0x5650_5354


class PostgreSQLDialect(SQLiteDialect):
    name = "postgresql"
    temp = "pg_temp."
    Error = psycopg.Error
    writes_off_thread = True
    loads_empty_as_restore = True

    def classify(self, err: Exception, where: Any) -> Exception:
        from .connection import classify

        return classify(err, where)  # type: ignore[arg-type]

    def server_version(self, conn: Any) -> str | None:
        return conn.execute("SHOW server_version").fetchone()[0]

    def size_bytes(self, conn: Any, where: Any) -> int:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    MIGRATIONS_TABLE = (
        'CREATE TABLE IF NOT EXISTS _migrations (seq BIGSERIAL, name TEXT COLLATE "C" '
        "PRIMARY KEY, applied_at TEXT NOT NULL)"
    )

    def pair(self, agg: str, a: str, b: str) -> str:
        # LEAST/GREATEST skip a NULL where SQLite's MIN/MAX answer it: a counted rollup row
        # always has both times
        return f"{'LEAST' if agg == 'MIN' else 'GREATEST'}({a}, {b})"

    def greatest(self, *values: str) -> str:
        return f"GREATEST({', '.join(values)})"

    def distinct(self, a: str, b: str) -> str:
        return f"{a} IS DISTINCT FROM {b}"

    def index_hint(self, index: str) -> str:
        return ""

    def table_exists(self, conn: Any, table: str) -> bool:
        # pg_class read with this statement's snapshot, not to_regclass: that one takes no
        # lock, so after waiting for the migration lock it can still answer from the session's
        # catalog cache of before, missing the tables another node has just made
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relname = ? AND n.nspname = current_schema())",
            (table,),
        ).fetchone()[0]

    def begin_migration(self, conn: Any) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def migration(self, name: str, body: Any) -> Any:
        from .schema import BODIES

        return BODIES[name]

    def applied_order(self) -> str:
        return "seq"

    def stored_ids(self, conn: Any, ids: list[str]) -> set[str]:
        return {row[0] for row in conn.execute("SELECT id FROM runs WHERE id = ANY(?)", (ids,))}

    def batch_marker(self, conn: Any) -> Any:
        return None

    def batch_where(self, conn: Any, marker: Any, ids: list[str]) -> tuple[str, list[Any]]:
        # the ids sent once, not with each of the rollups' statements (an array of 10,000
        # texts took a tenth of a move to write out, each time)
        from .connection import copy_rows

        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS batch_ids (id TEXT NOT NULL) ON COMMIT DELETE ROWS"
        )
        copy_rows(conn, "pg_temp.batch_ids", ("id",), [[run_id] for run_id in ids])
        return "r.id = ANY(ARRAY(SELECT id FROM pg_temp.batch_ids))", []

    def file_id(self, value: Any) -> Any:
        # a JSONB column keeps a number a number and a text a text
        return None if value is None else json.dumps(value)

    def insert_rows(
        self, conn: Any, table: str, columns: tuple[str, ...], rows: list[list[Any]]
    ) -> None:
        # COPY: one stream for the whole batch, parsed by the server without a plan per row
        # (a 1M-run move took 287 s through executemany, even pipelined)
        from .connection import copy_rows

        copy_rows(conn, table, columns, rows)

    def get_wait(self, conn: Any) -> int:
        text = conn.execute("SHOW lock_timeout").fetchone()[0]
        return _milliseconds(text)

    def set_wait(self, conn: Any, ms: int) -> None:
        conn.execute(f"SET lock_timeout = {int(ms)}")

    def columns(self, conn: Any, table: str) -> list[Column]:
        keys = {
            row[0]
            for row in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(?) AND i.indisprimary",
                (table,),
            )
        }
        return [
            Column(row[0], row[1] == "double precision", row[0] in keys)
            for row in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
                (table,),
            )
        ]

    def copy_table(self, conn: Any, table: str, name: str, rows: bool) -> None:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        source = f'"{schema}".{table}'
        conn.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        conn.execute(f"CREATE TEMP TABLE {name} (LIKE {source} INCLUDING ALL)")
        if rows:
            conn.execute(f"INSERT INTO pg_temp.{name} SELECT * FROM {source}")

    def backup(self, store: Any, dest: Any) -> None:
        store.snapshot_into(dest)

    @contextmanager
    def bulk(self, conn: Any) -> Iterator[None]:
        yield

    def begin_run_at_once(self, conn: Any, row: dict[str, Any]) -> bool | None:
        from . import hook_writes

        return hook_writes.begin_run(conn, row)

    def append_action_at_once(
        self, conn: Any, run_id: str, seq: int | None, columns: dict[str, Any], when: str
    ) -> bool | None:
        from . import hook_writes

        return hook_writes.append_action(conn, run_id, seq, columns, when)

    def finish_run_at_once(
        self, conn: Any, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]
    ) -> bool | None:
        from . import hook_writes

        return hook_writes.finish_run(conn, run_id, fields, phases)

    @contextmanager
    def pipelined_transaction(self, conn: Any) -> Iterator[None]:
        # psycopg's pipeline mode: statements queued, sent when an answer is read or at the
        # end; its transaction block rolls back correctly also after an error in the pipeline
        with conn.raw.pipeline(), conn.raw.transaction():
            yield

    def analyze(self, conn: Any, tables: tuple[str, ...]) -> None:
        # a database filled in one transaction has no statistics until autovacuum comes by:
        # the plans of filtered reads (a range of days, one path) were ten times slower
        conn.execute(f"ANALYZE {', '.join(tables)}")

    def settle(self, conn: Any, tables: tuple[str, ...]) -> None:
        # the visibility map of the rollups, which their counts read without the table rows
        # (filtered file counts: 50 -> 25 ms at 1M runs); autovacuum would come by later
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")

    @contextmanager
    def indexes_deferred(self, conn: Any, tables: tuple[str, ...]) -> Iterator[None]:
        """The tables' indexes, keys and foreign keys set aside while rows are loaded, made
        again after (in the caller's transaction): one sort per index and one join per foreign
        key instead of an index insert and a key lookup for every row (most of a 1M-run move
        went there). Foreign keys go first and come back last."""
        keys = conn.execute(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c WHERE c.contype IN ('f', 'p', 'u') AND c.conrelid = ANY("
            "SELECT to_regclass(t)::oid FROM unnest(?::text[]) t) "
            "ORDER BY c.contype = 'f' DESC, c.conname",
            (list(tables),),
        ).fetchall()
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = ANY(?) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
            "AND c.connamespace = to_regnamespace(i.schemaname)) ORDER BY i.indexname",
            (list(tables),),
        ).fetchall()
        for table, name, _ in keys:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        yield
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            conn.execute(definition)
        for table, name, definition in reversed(keys):
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _milliseconds(text: str) -> int:
    """A duration setting as PostgreSQL shows it (``250ms``, ``5s``, ``0``) in milliseconds."""
    units = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    return int(float(digits) * units.get(text[len(digits) :], 1))


POSTGRESQL = PostgreSQLDialect()
