"""The stores the web app reads with.

On a database server a few stay open between requests: opening one there costs a connection,
a password exchange and the schema check, several round trips each time. A SQLite file is
opened for each request as before: that is cheap, and never reads a file that a restore has
replaced since.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..store import Store, open_for_reading
from ..store.connection import ServerAway
from ..store.dialect import SQLITE, dialect_of

T = TypeVar("T")

IDLE_MAX = 4  # stores kept open while no request needs them
MAX_AGE_S = 300.0  # a store older than this is closed on its return (a new session then)
REAP_EVERY_S = 5.0  # a kept store marks dead runs interrupted at most this often


class Readers:
    """Stores for the app's requests (and scrapes) on ``database``, kept where that pays."""

    def __init__(self, database: Path | str, options: dict[str, Any]) -> None:
        self.database = database
        self.options = options
        self._idle: list[tuple[float, Store]] = []  # (opened at, store), newest last
        self._lock = threading.Lock()
        self._last_reap = -float("inf")

    def ask(self, question: Callable[[Store], T]) -> T:
        """``question``'s answer from a store (kept, or opened for it). A kept store whose
        server went away meanwhile (restarted, the session cut) is dropped and the question
        asked once more of a new one, so a request never fails for a session that is gone."""
        while True:
            opened, store, kept = self._take()
            try:
                answer = question(store)
            except ServerAway:
                store.close()
                if kept:
                    continue
                raise
            except BaseException:  # it may have left its session in any state
                store.close()
                raise
            if not self._keep(opened, store):
                store.close()
            return answer

    def _take(self) -> tuple[float, Store, bool]:
        now = time.monotonic()
        with self._lock:
            taken = self._idle.pop() if self._idle else None
            reap = now - self._last_reap >= REAP_EVERY_S
            if taken is not None and reap:
                self._last_reap = now
        if taken is None:  # a new store reaps on its first read anyway
            return now, open_for_reading(self.database, **self.options), False
        if reap:
            taken[1].reap_on_next_read()
        return taken[0], taken[1], True

    def _keep(self, opened: float, store: Store) -> bool:
        if dialect_of(store.conn) is SQLITE or store.conn.in_transaction:
            return False
        if time.monotonic() - opened > MAX_AGE_S:
            return False
        with self._lock:
            if len(self._idle) >= IDLE_MAX:
                return False
            self._idle.append((opened, store))
        return True

    def close(self) -> None:
        """Close the stores kept open (the app is shutting down)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, store in idle:
            with contextlib.suppress(Exception):
                store.close()
