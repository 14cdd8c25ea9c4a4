"""A PostgreSQL connection (psycopg 3) that the engine-neutral store modules use as they use a
``sqlite3.Connection``: ``execute`` and ``executemany`` take the neutral SQL (``?``
placeholders) and answer cursors whose rows read by index and by name.

The connection is in autocommit mode: the store says BEGIN, COMMIT and ROLLBACK itself, as it
does on SQLite. Parameters are bound by the server (psycopg's default), and statements a
connection runs often are prepared by psycopg on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ...dburl import DatabaseURL
from ...errors import DatabaseUnusable, StatsError
from ..connection import DatabaseLocked, ServerAway

APPLICATION = "vpo-stats-plugin"


class Row:
    """One result row, read as ``row[0]`` or ``row["name"]`` (as ``sqlite3.Row`` is)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: tuple[Any, ...]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values))!r})"


def _plain(value: Any) -> Any:
    # SUM over BIGINT is NUMERIC in PostgreSQL: the answers hold integers, as on SQLite
    if type(value) is Decimal:
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return None
    names = {column.name: i for i, column in enumerate(description)}

    def make(values: Sequence[Any]) -> Row:
        return Row(names, tuple(_plain(v) for v in values))

    return make


_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """The neutral SQL for psycopg: ``%`` doubled, ``?`` as ``%s``; SQLite's BEGIN IMMEDIATE is
    a plain BEGIN (rows, not the database, are locked here)."""
    if sql.lstrip().upper().startswith("BEGIN IMMEDIATE"):
        return "BEGIN"
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


def param_value(value: Any) -> Any:
    return int(value) if type(value) is bool else value  # flags are integers, as on SQLite


def _params(params: Iterable[Any] | None) -> list[Any]:
    return [param_value(v) for v in params] if params else []


def copy_rows(
    conn: PgConnection, table: str, columns: tuple[str, ...], rows: list[list[Any]]
) -> None:
    """Rows into ``table`` through ``COPY ... FROM STDIN``. No value may be a bool: COPY
    would write it as ``t``, which an integer column refuses (an import's rows hold flags as
    integers already; a check per value cost a sixth of a move)."""
    if not rows:
        return
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.raw.cursor().copy(statement) as copy:  # type: ignore[arg-type]
        for row in rows:
            copy.write_row(row)


class PgConnection:
    """The store's connection to a PostgreSQL server."""

    def __init__(self, raw: psycopg.Connection, url: DatabaseURL) -> None:
        from .dialect import POSTGRESQL

        self.raw = raw
        self.url = url
        self.dialect = POSTGRESQL

    def execute(self, sql: str, params: Iterable[Any] | None = ()) -> Any:
        cursor = self.raw.cursor()
        cursor.execute(translate(sql), _params(params))  # type: ignore[arg-type]
        return cursor

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> Any:
        cursor = self.raw.cursor()
        rows = [_params(p) for p in seq]
        if rows:
            cursor.executemany(translate(sql), rows)  # type: ignore[arg-type]
        return cursor

    def close(self) -> None:
        self.raw.close()

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def connect(url: DatabaseURL, busy_timeout_ms: int) -> PgConnection:
    """A session on the server ``url`` names: autocommit, waiting at most ``busy_timeout_ms``
    for a row another node has locked. Raises ServerAway naming the server, never the
    password."""
    seconds = max(2, round(busy_timeout_ms / 1000))  # libpq's smallest useful timeout is 2 s
    try:
        raw = psycopg.connect(
            url.conninfo(),
            autocommit=True,
            row_factory=_row_factory,
            connect_timeout=seconds,
            application_name=APPLICATION,
        )
    except psycopg.Error as err:
        raise classify(err, url) from None
    conn = PgConnection(raw, url)
    try:
        conn.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")
        conn.execute("SET TIME ZONE 'UTC'")
    except psycopg.Error as err:
        conn.close()
        raise classify(err, url) from None
    return conn


_LOCKED = (
    pg_errors.LockNotAvailable,
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)
_VALUES = (pg_errors.IntegrityError, pg_errors.DataError)


def classify(err: psycopg.Error, url: DatabaseURL) -> StatsError:
    """The StatsError for a psycopg error: away, locked, a bad value, or unusable."""
    said = url.scrub(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    if isinstance(err, _LOCKED):
        return DatabaseLocked(
            f"the {url.server} is busy: another session holds a lock this needs (a node "
            f"writing, an import or a purge) ({said}). Try again in a moment."
        )
    if isinstance(err, _VALUES):
        return StatsError(f"the {url.server} could not store a value: {said}")
    # (down, restarting, refused, a bad password, no such database, the connection lost)
    if isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError)):
        return ServerAway(
            f"cannot use the {url.server}: {said}. Check that the server runs and that the "
            "URL (user, password, database) is right; the hooks keep what they record and "
            "write it once the server answers."
        )
    if isinstance(err, pg_errors.InsufficientPrivilege):
        return DatabaseUnusable(
            f"cannot use the {url.server}: {said}. The role needs to own its database (see "
            "docs/multi-node.md)."
        )
    return DatabaseUnusable(f"cannot use the {url.server}: PostgreSQL says: {said}")
