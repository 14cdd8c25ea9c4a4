"""Which engine a `database` names: a SQLite file, or a PostgreSQL server by its URL.

A URL is never opened as a file. The PostgreSQL engine (CONTRACT section 7) is not part of this
version yet: a URL gets a clear refusal naming the server (never the password), exit 65.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
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


def open_server(database: str | DatabaseURL | Path, **options: Any) -> NoReturn:
    """The store on a PostgreSQL server: not in this version, so always DatabaseUnusable."""
    url = server_url(database)  # type: ignore[arg-type]
    try:
        import psycopg  # noqa: F401
    except ImportError as err:
        raise DatabaseUnusable(
            f"cannot use the {url.server}: psycopg cannot be imported ({err}). Install the "
            f"plugin's postgresql extra: {INSTALL}"
        ) from None
    raise DatabaseUnusable(
        f"cannot use the {url.server}: this version of vpo-stats-plugin ({__version__}) "
        "cannot keep statistics in PostgreSQL yet. Nothing was written. Point `database` "
        "(--db, VPO_STATS_DATABASE or the config file) at a SQLite file for now."
    )
