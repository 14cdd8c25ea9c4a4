"""Which engine a `database` names, a SQLite file or a PostgreSQL server by its URL, and opening
a server's store. A URL is never opened as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..dburl import INSTALL, BadURL, DatabaseURL, is_url, parse
from ..errors import DatabaseUnusable


def is_server(database: Any) -> bool:
    """Whether ``database`` (a path, text or DatabaseURL) names a server rather than a file."""
    return isinstance(database, DatabaseURL) or is_url(database)


def server_url(database: str | DatabaseURL) -> DatabaseURL:
    """The DatabaseURL of ``database``; DatabaseUnusable for a URL that cannot be used."""
    if isinstance(database, DatabaseURL):
        return database
    try:
        return parse(database)
    except BadURL as err:
        raise DatabaseUnusable(
            f"the database URL cannot be used: {err}. Nothing was opened or created."
        ) from None


def connect_server(database: str | DatabaseURL | Path, busy_timeout_ms: int) -> Any:
    """A connection to the server ``database`` names (psycopg, from the postgresql extra)."""
    url = server_url(database)  # type: ignore[arg-type]
    try:
        from .postgresql.connection import connect
    except ImportError as err:
        raise DatabaseUnusable(
            f"cannot use the {url.server}: psycopg cannot be imported ({err}). Install the "
            f"plugin's postgresql extra: {INSTALL}"
        ) from None
    return connect(url, busy_timeout_ms)
