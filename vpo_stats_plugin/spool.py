"""The spool: writes a process could not save before it ended, kept on the node's own disk and
written by the next plugin process on that node (a hook or any command that opens the store).

One file per database, ``~/.vpo/stats-spool/<digest>.ndjson`` (the digest of the database's
path or URL, so no password is in a file name), one JSON line per write: the Store method and
its arguments, in the order they were made. Replaying is idempotent: a run already stored is
not begun again, an action already stored (by run and sequence number) is not added again, and
finishing a run twice leaves it as finishing it once does. A replay first renames the file to
one of its own, so two processes never replay the same writes; whatever the database does not
take is put back for the next one. See docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from .dburl import DatabaseURL
from .store.connection import DatabaseLocked, DatabaseUnwritable

log = logging.getLogger("vpo_stats_plugin")

SPOOL_DIR = "stats-spool"
# what a spooled write may call on the Store: the recorder's writes, nothing else
METHODS = frozenset({"begin_run", "record_action", "finish_run"})


def spool_dir() -> Path:
    return Path.home() / ".vpo" / SPOOL_DIR


def _identity(database: Path | DatabaseURL) -> str:
    if isinstance(database, DatabaseURL):
        return database.conninfo()
    return str(Path(database).expanduser().absolute())


def spool_file(database: Path | DatabaseURL) -> Path:
    """Where the writes kept for ``database`` go."""
    digest = hashlib.sha256(_identity(database).encode("utf-8", "surrogateescape")).hexdigest()
    return spool_dir() / f"{digest[:24]}.ndjson"


def keep(database: Path | DatabaseURL, writes: list[tuple[str, tuple[Any, ...]]]) -> bool:
    """Append ``writes`` ((method, args) in order) for ``database``; False if they cannot be
    kept (no home directory, a full disk)."""
    if not writes:
        return True
    lines = "".join(
        json.dumps({"db": str(database), "method": method, "args": list(args)}) + "\n"
        for method, args in writes
    )
    target = spool_file(database)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # one O_APPEND write: lines of processes ending at once never interleave
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
    except (OSError, RuntimeError, ValueError):  # RuntimeError: no home directory
        return False
    return True


def waiting(database: Path | DatabaseURL) -> bool:
    """Whether writes are kept for ``database`` (a stat: cheap enough for every open)."""
    try:
        return spool_file(database).is_file()
    except (OSError, RuntimeError):
        return False


def replay(database: Path | DatabaseURL, store: Any) -> int:
    """Write what is kept for ``database`` into ``store``, in order; answers how many writes
    went in. What the database does not take now stays kept."""
    source = spool_file(database)
    claimed = source.with_name(f"{source.stem}.{os.getpid()}.replaying")
    try:
        os.rename(source, claimed)  # ours alone from here (another process finds no file)
    except OSError:
        return 0
    try:
        raw = claimed.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return 0
    writes = []
    for line in raw.splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            entry = json.loads(line)
            if entry["method"] in METHODS:
                writes.append((entry["method"], tuple(entry["args"])))
    done = 0
    try:
        for method, args in writes:
            try:
                getattr(store, method)(*args)
            except (DatabaseLocked, DatabaseUnwritable):
                raise  # the database is away again: keep the rest for next time
            except Exception as err:
                log.warning("vpo-stats: a kept write (%s) could not be saved: %s", method, err)
            done += 1
    finally:
        rest = writes[done:]
        if rest and not keep(database, rest):
            log.error("vpo-stats: %d kept writes could not be kept again", len(rest))
        with contextlib.suppress(OSError):
            claimed.unlink()
    if done:
        log.info("vpo-stats: %d writes kept from an earlier process were saved", done)
    return done
