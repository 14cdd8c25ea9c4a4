"""Opening a SQLite database the right way, refusing files that are not ours, naming failures.

A file is checked before anything could write to it, through a read-only connection (which
never checkpoints or rolls back anything): that it is SQLite at all, its application id, its
tables and its migrations. Only a file that is ours, or new, is then opened for writing and
switched to WAL. The file is never opened other than through SQLite: closing a descriptor of it
would drop the POSIX locks this process's connections hold, and another process could then
checkpoint and delete the WAL under them.

Recording failures that cannot be written into the database itself (it cannot be opened, is
read-only, the disk is full) are kept in a small fallback tally, ``~/.vpo/stats-recording-
errors.ndjson``, one JSON line per batch of failures, which ``vpo-stats status`` adds in.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import DatabaseUnusable, InputMissing, StatsError

APPLICATION_ID = 0x5650_5354  # "VPST": marks a database as ours
BUSY_TIMEOUT_MS = 5000
FALLBACK_NAME = "stats-recording-errors.ndjson"
FALLBACK_MAX_BYTES = 256 * 1024  # then the tally is compacted

# SQLite primary result codes (https://sqlite.org/rescode.html)
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_UNWRITABLE_CODES = {3, 8, 10, 13, 14, 15}  # PERM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
_VALUE_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)
_UNWRITABLE_WORDS = ("readonly", "disk is full", "disk i/o", "unable to open", "permission")


class DatabaseLocked(StatsError):
    """Another connection holds the lock longer than we wait: try again shortly."""

    http_status = 503  # Service Unavailable: the same request will do in a moment


class DatabaseUnwritable(DatabaseUnusable):
    """The database cannot be opened or written now (permissions, disk full, I/O): may pass."""


class ServerAway(DatabaseUnwritable):
    """The database server cannot be reached or refuses us (down, restarting, a bad password,
    no such database): the hooks keep their runs and try again; a reader stops (exit 65)."""


class NoDatabase(InputMissing):
    """No stats database at the path yet (no file, an empty one, or one with no tables):
    what a reader is told, instead of creating one."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{why}: nothing has been recorded there yet")
        self.path = path
        self.why = why


def _noted(err: StatsError, path: Path) -> StatsError:
    """``err`` with the fallback tally's failures for ``path`` added to its message (for the
    CLI, whose ``status`` cannot open such a database); ``err.reason`` keeps the bare message."""
    err.reason = str(err)  # type: ignore[attr-defined]
    note = fallback_note(path)
    if note:
        err.args = (f"{err.args[0]}{note}",)
    return err


def reason(err: BaseException) -> str:
    """The message of ``err`` without the fallback note."""
    return getattr(err, "reason", None) or str(err)


def unusable(path: Path, why: str) -> DatabaseUnusable:
    """The error for a database we will not touch, with what to do about it."""
    err = DatabaseUnusable(
        f"cannot use {path}: {why}. Nothing was changed. Point --db (or VPO_STATS_DATABASE) "
        "at another file, or restore a backup made with `vpo-stats backup`."
    )
    err.why = why  # type: ignore[attr-defined]
    return _noted(err, path)  # type: ignore[return-value]


def unwritable(path: Path, why: str) -> DatabaseUnwritable:
    """The error for a database that cannot be opened or written at the moment."""
    err = DatabaseUnwritable(
        f"cannot write {path}: {why}. Free some space, fix the permissions, or point --db "
        "(or VPO_STATS_DATABASE) at a writable place."
    )
    return _noted(err, path)  # type: ignore[return-value]


def classify(err: sqlite3.Error, path: Path) -> StatsError:
    """The StatsError for a SQLite error: locked, unwritable, or unusable (corrupt)."""
    if isinstance(err, _VALUE_ERRORS):  # a bad value in this one statement, not the database
        return StatsError(f"{path} could not store a value: {err}")
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(err).lower()
    if primary in _BUSY_CODES or (primary is None and ("locked" in text or "busy" in text)):
        return DatabaseLocked(
            f"the stats database {path} is locked by another process ({err}). "
            "Try again in a moment."
        )
    if primary in _UNWRITABLE_CODES or (
        primary is None and any(word in text for word in _UNWRITABLE_WORDS)
    ):
        return unwritable(path, f"SQLite says: {err}")
    return unusable(path, f"SQLite says: {err}")


def _identity(conn: sqlite3.Connection) -> tuple[int, list[str]]:
    """The application id and the tables, read in one statement: one snapshot, so a database
    that another process is creating is never seen half made (tables, but no id yet)."""
    app_id, names = conn.execute(
        "SELECT (SELECT application_id FROM pragma_application_id()), "
        "(SELECT group_concat(name, char(10)) FROM sqlite_master WHERE type = 'table')"
    ).fetchone()
    return app_id, names.split("\n") if names else []


def _foreign(app_id: int, tables: list[str]) -> bool:
    """Another application's database: its id, or tables of its own and no id."""
    return app_id not in (0, APPLICATION_ID) or (
        app_id == 0 and any(not name.startswith("sqlite_") for name in tables)
    )


def connect_readonly(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open the database at ``path`` to read only (a ``mode=ro`` URI), never writing a byte;
    refuse a file that is not our database, or is a newer one."""
    from .migrations import MIGRATIONS  # migrations imports this module

    uri = f"file:{quote(os.fsencode(path))}?mode=ro"  # the name's own bytes, whatever they are
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000)
    except sqlite3.Error as err:
        raise classify(err, path) from None
    try:
        try:
            app_id, tables = _identity(conn)
        except sqlite3.DatabaseError as err:
            if getattr(err, "sqlite_errorcode", 26) == 26 and "not a database" in str(err):
                raise unusable(
                    path, "it is not a SQLite database (corrupt, or another kind of file)"
                ) from None
            raise
        if _foreign(app_id, tables):
            raise unusable(path, "it is another application's SQLite database, not a stats store")
        if "_migrations" in tables:
            known = {name for name, _ in MIGRATIONS}
            unknown = [
                r[0]
                for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")
                if r[0] not in known
            ]
            if unknown:
                raise DatabaseUnusable(
                    f"{path} was written by a newer vpo-stats-plugin (unknown migrations: "
                    f"{', '.join(unknown)}). Upgrade the plugin (pip install -U "
                    "vpo-stats-plugin); the database was left as it is."
                )
    except sqlite3.Error as err:
        conn.close()
        raise classify(err, path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Put the database in WAL mode. Switching needs the file to itself, and SQLite answers
    "locked" at once, without its busy wait, while other connections open the same new file:
    so try again, within the busy timeout."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            busy = (getattr(err, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def connect(
    path: Path, *, create: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """Open ``path`` with WAL, foreign keys and a busy timeout; never touches a foreign file.

    With ``create=False`` (readers) nothing is created or set up: no file, an empty file, or
    a SQLite file without our tables yet raises NoDatabase, the file left as it is.
    Raises DatabaseUnusable (not ours, corrupt, newer), DatabaseUnwritable (cannot be opened
    or created here), DatabaseLocked, or NoDatabase.
    """
    path = Path(path).expanduser()
    try:
        exists = path.exists()
        if exists and path.is_dir():
            raise unusable(path, "it is a directory")
        if not create and not exists:
            if read_fallback(path):  # the hooks tried to record there, and could not
                raise unwritable(path, "there is no database: the plugin's hooks could not make it")
            raise NoDatabase(path, f"there is no stats database at {path}")
        if exists and path.stat().st_size > 0:
            # never open() the file itself: closing any descriptor of it would drop the POSIX
            # locks this process's SQLite connections hold on it (and with them the WAL)
            checked = connect_readonly(path, busy_timeout_ms)  # refuses what is not ours
            try:
                made = "_migrations" in _identity(checked)[1]
            finally:
                checked.close()
            if not create and not made:
                raise NoDatabase(path, f"{path} is an empty SQLite database, with no stats yet")
        elif not create:
            raise NoDatabase(path, f"{path} is an empty file (0 bytes), not a stats database yet")
    except OSError as err:
        raise unwritable(path, err.strerror or str(err)) from None
    except sqlite3.Error as err:
        raise classify(err, path) from None
    if not exists:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise unwritable(
                path, f"cannot create the directory {path.parent}: {err.strerror or err}"
            ) from None
    try:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=True
        )
    except sqlite3.Error as err:
        raise classify(err, path) from None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if _foreign(*_identity(conn)):
            # made by someone else between the check above and now
            raise unusable(path, "it is another application's SQLite database, not a stats store")
        _wal(conn, busy_timeout_ms)
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as err:
        conn.close()
        raise classify(err, path) from None
    except StatsError:
        conn.close()
        raise
    return conn


# --- values SQLite can take -------------------------------------------------------------------


def storable_text(text: str) -> str:
    """``text`` as SQLite can store it: a path's undecodable bytes become ``\\xNN``."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def storable(value: Any, _seen: tuple[int, ...] = ()) -> Any:
    """``value`` made safe to store and to show as JSON: integers SQLite can hold, finite
    numbers, encodable text, string keys; other objects as their text, cycles cut."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else storable_text(value)
    if value is None or kind is bool:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return storable_text(value)
    if id(value) in _seen or len(_seen) > 32:
        return "..."
    seen = (*_seen, id(value))
    if isinstance(value, Mapping):
        return {storable_text(str(k)): storable(v, seen) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v, seen) for v in value]
    try:
        return storable_text(str(value))
    except Exception:
        return f"<{type(value).__name__}>"


# --- the fallback tally ------------------------------------------------------------------------


def fallback_path() -> Path:
    """Where recording failures go when the database cannot take them."""
    return Path.home() / ".vpo" / FALLBACK_NAME


def _fallback_rows(text: str) -> dict[str, list[dict[str, Any]]]:
    """The fallback tally's lines as recording-error rows, by database."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            row = {
                "cause": str(entry["cause"]),
                "count": int(entry["count"]),
                "first_at": str(entry.get("first_at") or entry["last_at"]),
                "last_at": str(entry["last_at"]),
                "last_message": entry.get("message"),
            }
            rows.setdefault(str(entry["db"]), []).append(row)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn or foreign line
    return rows


def _fallback_line(db: str, row: dict[str, Any]) -> str:
    entry = {"db": db, **row, "message": (row.get("last_message") or "")[:2000]}
    entry.pop("last_message")
    return json.dumps(entry, ensure_ascii=True) + "\n"


def record_fallback(db: Path, counts: dict[str, tuple[int, str]]) -> bool:
    """Append ``{cause: (count, last message)}`` for database ``db``; False if it cannot."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = [
        {"cause": c, "count": n, "first_at": when, "last_at": when, "last_message": m}
        for c, (n, m) in counts.items()
    ]
    target = fallback_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # one O_APPEND write per batch: lines from several processes never interleave
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, "".join(_fallback_line(str(db), r) for r in rows).encode())
            big = os.fstat(fd).st_size > FALLBACK_MAX_BYTES
        finally:
            os.close(fd)
        if big:  # one line per database and cause (a line appended meanwhile may be lost)
            merged = _fallback_rows(target.read_text(encoding="utf-8", errors="replace"))
            temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            temp.write_text(
                "".join(_fallback_line(d, r) for d, rs in merged.items() for r in merge_errors(rs))
            )
            os.replace(temp, target)
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return False
    return True


def read_fallback(db: Path) -> list[dict[str, Any]]:
    """The fallback tally for database ``db``, as rows of the ``recording_errors`` table."""
    try:
        text = fallback_path().read_text(encoding="utf-8", errors="replace")
    except (OSError, RuntimeError):
        return []
    return merge_errors(_fallback_rows(text).get(str(db), []))


def fallback_note(db: Path) -> str:
    """A sentence about failures kept in the fallback tally for ``db``, or ''."""
    rows = read_fallback(db)
    if not rows:
        return ""
    total = sum(r["count"] for r in rows)
    return (
        f" The plugin's hooks also counted {total} recording failure(s) for this database "
        f"({', '.join(r['cause'] for r in rows)}; last at {rows[0]['last_at']}), kept in "
        f"{fallback_path()}."
    )


def merge_errors(*tallies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recording-error rows of several tallies, summed per cause, newest first."""
    merged: dict[str, dict[str, Any]] = {}
    for rows in tallies:
        for row in rows:
            into = merged.setdefault(row["cause"], dict(row, count=0))
            into["count"] += row["count"]
            into["first_at"] = min(into["first_at"], row["first_at"])
            if row["last_at"] >= into["last_at"]:
                into["last_at"], into["last_message"] = row["last_at"], row["last_message"]
    return sorted(merged.values(), key=lambda r: r["last_at"], reverse=True)
