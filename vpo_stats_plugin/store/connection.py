"""Opening a SQLite database the right way, and refusing files that are not ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import DatabaseUnusable, InputMissing

SQLITE_HEADER = b"SQLite format 3\x00"
APPLICATION_ID = 0x5650_5354  # "VPST": marks a database as ours
BUSY_TIMEOUT_MS = 5000


def _looks_like_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    return header == SQLITE_HEADER


def unusable(path: Path, why: str) -> DatabaseUnusable:
    """The error for a database we will not touch, with what to do about it."""
    return DatabaseUnusable(
        f"cannot use {path}: {why}. Nothing was changed. Point --db (or VPO_STATS_DATABASE) "
        f"at another file, or restore a backup made with `vpo-stats backup`."
    )


def connect(
    path: Path, *, create: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """Open ``path`` with WAL, foreign keys and a busy timeout; never touches a foreign file."""
    path = Path(path).expanduser()
    exists = path.exists()
    if exists and path.is_dir():
        raise unusable(path, "it is a directory")
    if exists and path.stat().st_size > 0 and not _looks_like_sqlite(path):
        raise unusable(path, "it is not a SQLite database (corrupt, or another kind of file)")
    if not exists:
        if not create:
            raise InputMissing(f"no stats database at {path}: nothing has been recorded there yet")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DatabaseUnusable(
                f"cannot create the directory for {path}: {err.strerror or err}. "
                "Point --db (or VPO_STATS_DATABASE) at a writable place."
            ) from None
    try:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=True
        )
    except sqlite3.Error as err:
        raise DatabaseUnusable(
            f"cannot open {path}: {err}. Point --db (or VPO_STATS_DATABASE) at a writable place."
        ) from None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            conn.close()
            raise unusable(path, "it is another application's SQLite database, not a stats store")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as err:
        conn.close()
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err).lower():
            raise
        raise unusable(path, f"SQLite says: {err}") from None
    return conn
