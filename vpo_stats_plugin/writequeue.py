"""The write queue: a recorder's writes reach the store in order, whatever the database is doing.

Normally a hook writes the queue at once (waiting at most HOOK_BUSY_MS for a lock), so what it
recorded is committed when it returns. When the database is locked or cannot be written, the
writes stay queued and later hooks return at once; a background "keeper" thread writes them as
soon as the database takes them, and at exit the queue waits up to EXIT_PATIENCE_S for a lock to
clear (a disk that is full or read-only is tried once more, not waited for). The keeper also
touches the runs in flight every so often, so another node never takes a live run for a dead one.
Failures are counted: in the database when it takes them, else in the fallback tally
(store/connection.py). A lock met while opening the database (another process creating and
migrating it, or checkpointing it as it closes) is normal work: it is waited for the same way,
but counted and logged only once it has lasted OPEN_PATIENCE_S. See docs/reliability.md.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import spool
from .errors import DatabaseUnusable, StatsError
from .filters import iso, utcnow
from .store import Store, open_store
from .store.connection import DatabaseLocked, DatabaseUnwritable, reason, record_fallback

log = logging.getLogger("vpo_stats_plugin")

HOOK_BUSY_MS = 250  # a hook waits this long for a lock before leaving its write queued
KEEPER_BUSY_MS = 1000  # the keeper's wait for a lock, per attempt
RETRY_INTERVAL_S = 0.1  # pause between the keeper's attempts on a locked database
UNWRITABLE_RETRY_S = 5.0  # ... on a database that cannot be written (disk full, read-only)
EXIT_PATIENCE_S = 60.0  # at exit, how long to wait for a lock to clear
OPEN_PATIENCE_S = 10.0  # a lock met while opening counts as a fault once it lasts this long
HEARTBEAT_MAX_S = 600.0  # runs in flight are touched at least this often (stale_after / 4)
FALLBACK_EVERY_S = 60.0  # the fallback tally is appended to at most this often (and at exit)
MAX_QUEUED = 100_000  # writes kept while the database cannot take them; then the oldest go

_inherited: list[Any] = []  # a parent's connections in a forked child: never used nor closed


@dataclass
class _Queued:
    """One write waiting for the database."""

    label: str
    method: str  # a Store method (spool.METHODS), called with args: kept on disk if need be
    args: tuple[Any, ...]
    done: threading.Event = field(default_factory=threading.Event)
    deferred: bool = False  # already counted as delayed


@dataclass
class ErrorTally:
    """Recording failures by cause; each cause is logged once."""

    counts: dict[str, int] = field(default_factory=dict)
    unsaved: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, cause: str, message: str, count: int = 1) -> bool:
        """Count ``count`` failures; True the first time this cause is seen."""
        with self.lock:
            first = cause not in self.counts
            self.counts[cause] = self.counts.get(cause, 0) + count
            self.unsaved[cause] = (self.unsaved.get(cause, (0, ""))[0] + count, message)
        if first:
            log.warning("vpo-stats: %s (further ones are counted, not logged)", message)
        return first

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def take_unsaved(self) -> dict[str, tuple[int, str]]:
        """The counts not yet written to the database, forgetting them."""
        with self.lock:
            taken, self.unsaved = self.unsaved, {}
        return taken

    def put_back(self, counts: dict[str, tuple[int, str]]) -> None:
        """Counts taken that could not be saved after all."""
        with self.lock:
            for cause, (count, message) in counts.items():
                old = self.unsaved.get(cause, (0, message))[0]
                self.unsaved[cause] = (old + count, message)


class WriteQueue:
    """One per recorder: its writes in order, retried by the keeper, flushed at exit."""

    def __init__(
        self,
        database: Path,
        *,
        node: str,
        stale_after: float,
        runs_in_flight: Callable[[], list[str]],
    ) -> None:
        self.database = database
        self.node = node
        self.stale_after = stale_after
        self._runs_in_flight = runs_in_flight  # run ids the keeper's heartbeat touches
        self._unusable: str | None = None  # why the database will not be touched again
        self._start_process()

    def _start_process(self) -> None:
        """State that belongs to one process: set at start, and again in a forked child."""
        self.errors = ErrorTally()
        self._queue: deque[_Queued] = deque()
        self._queue_lock = threading.Lock()  # held only to touch the queue
        self._flush_lock = threading.Lock()  # held by whoever writes the queue
        self._local = threading.local()  # one store (connection) per thread
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._stalled: StatsError | None = None  # why the queue waits (locked, unwritable)
        self._opening_since: float | None = None  # when a lock met opening the database began
        self._quiet = False  # the stall is such a lock, not yet OPEN_PATIENCE_S old: not counted
        self._last_heartbeat = time.monotonic()
        self._last_fallback = -math.inf
        self._exit_pid: int | None = None  # the process whose exit will call close()
        self._kept_waiting = False  # writes an earlier process kept on disk, to be saved

    def _register_exit(self) -> None:
        """Have this process's exit call close(), multiprocessing workers included."""
        self._exit_pid = os.getpid()
        atexit.register(self.close)
        if "multiprocessing" in sys.modules:
            import multiprocessing.util

            if multiprocessing.parent_process() is not None:  # its workers end with os._exit
                multiprocessing.util.Finalize(self, self.close, exitpriority=0)

    def forked(self) -> None:
        """In a forked child: the parent's queue and connections stay the parent's."""
        _inherited.append(self._local)
        self._start_process()

    # --- one store (connection) per thread ---------------------------------------------------

    def _store(self, busy_ms: int) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            try:
                store = open_store(
                    self.database,
                    node=self.node,
                    stale_after=self.stale_after,
                    busy_timeout_ms=busy_ms,
                    replay=False,  # the keeper saves what an earlier process kept, not a hook
                )
            except DatabaseLocked as err:
                err.while_opening = True  # type: ignore[attr-defined]
                raise
            self._local.store = store
            self._local.busy_ms = None
        # a few ms either way do not matter; a statement before every write does
        if self._local.busy_ms is None or abs(self._local.busy_ms - busy_ms) > 10:
            store.set_wait(int(busy_ms))
            self._local.busy_ms = busy_ms
        return store

    def _drop_store(self) -> None:
        store = getattr(self._local, "store", None)
        self._local.store = None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    # --- the queue ---------------------------------------------------------------------------

    def submit(self, label: str, method: str, *args: Any) -> None:
        """Queue ``store.method(*args)`` and, unless the database is known to be stalled,
        write it now."""
        if self._unusable is not None:
            self.errors.add("database-unusable", f"not recorded: {self._unusable}")
            self._save_error_counts(0)
            return
        if self._exit_pid != os.getpid():
            self._register_exit()
            self._kept_waiting = spool.waiting(self.database)
            if self._kept_waiting:
                self.ensure_keeper()
        item = _Queued(label, method, args)
        with self._queue_lock:
            self._queue.append(item)
            overflow = self._queue.popleft() if len(self._queue) > MAX_QUEUED else None
        if overflow is not None:
            overflow.done.set()
            self.errors.add("writes-lost", f"{MAX_QUEUED} writes waiting: the oldest was dropped")
        stalled = self._stalled
        if stalled is not None:  # the keeper is on it: do not make the host wait too
            if not self._quiet:
                self._defer([item], stalled)
            self.ensure_keeper()
            return
        deadline = time.monotonic() + HOOK_BUSY_MS / 1000
        if self._flush_lock.acquire(timeout=HOOK_BUSY_MS / 1000):
            try:
                self._flush(max(1, int((deadline - time.monotonic()) * 1000)))
            finally:
                self._flush_lock.release()
        else:  # another thread is writing the queue, this write included
            item.done.wait(max(0.0, deadline - time.monotonic()))
        if not item.done.is_set():
            self.ensure_keeper()

    def _defer(self, items: list[_Queued], why: StatsError) -> None:
        """Count the writes that have to wait, once each."""
        with self._queue_lock:  # a hook and the keeper may both get here
            fresh = [item for item in items if not item.deferred]
            for item in fresh:
                item.deferred = True
        if not fresh:
            return
        if isinstance(why, DatabaseLocked):
            cause, what = "database-locked", "writes wait for the lock, then are saved"
        else:
            cause, what = "database-unwritable", "writes are kept and retried"
        self.errors.add(cause, f"{reason(why)} ({what})", len(fresh))

    def _flush(self, busy_ms: int) -> bool:
        """Write what is queued, in order (the caller holds the flush lock); False when the
        database could not take it yet."""
        while True:
            with self._queue_lock:
                if not self._queue:
                    break
                item = self._queue[0]
            try:
                getattr(self._store(busy_ms), item.method)(*item.args)
            except (DatabaseLocked, DatabaseUnwritable) as err:
                self._drop_store()
                self._stalled = err
                self._quiet = self._normal_wait(err)
                if not self._quiet:
                    with self._queue_lock:
                        waiting = list(self._queue)
                    self._defer(waiting, err)
                return False
            except DatabaseUnusable as err:  # corrupt, not ours, newer: never touch it again
                self._drop_store()
                self._unusable = reason(err)
                with self._queue_lock:
                    dropped, self._queue = list(self._queue), deque()
                for queued in dropped:
                    queued.done.set()
                self.errors.add("database-unusable", f"not recorded: {reason(err)}", len(dropped))
                self._save_error_counts(0)
                return True
            except Exception as err:  # this one write can never succeed: skip just it
                self.errors.add("write-failed", f"{item.label} failed and was skipped: {err!r}")
            with self._queue_lock:
                if self._queue and self._queue[0] is item:
                    self._queue.popleft()
            item.done.set()
        self._stalled, self._opening_since, self._quiet = None, None, False
        self._save_error_counts(busy_ms)
        return True

    def _normal_wait(self, err: StatsError) -> bool:
        """Whether ``err`` is a lock met while opening the database that has lasted less than
        OPEN_PATIENCE_S: another process creating and migrating it, or checkpointing it."""
        if not getattr(err, "while_opening", False):
            self._opening_since = None
            return False
        now = time.monotonic()
        if self._opening_since is None:
            self._opening_since = now
        return now - self._opening_since < OPEN_PATIENCE_S

    @property
    def pending(self) -> int:
        """Writes waiting for the database."""
        return len(self._queue)

    # --- the keeper thread: retries and heartbeats -------------------------------------------

    def ensure_keeper(self) -> None:
        """Start the keeper unless it runs: it retries the queue and keeps runs in flight alive."""
        with self._queue_lock:
            if self._stop.is_set() or (self._keeper is not None and self._keeper.is_alive()):
                return
            self._keeper = threading.Thread(target=self._keep, name="vpo-stats-keeper", daemon=True)
            self._keeper.start()

    @property
    def heartbeat_s(self) -> float:
        """How often runs in flight are touched."""
        return min(HEARTBEAT_MAX_S, max(0.05, self.stale_after / 4))

    def _keep(self) -> None:
        try:
            while not self._stop.is_set():
                if self._kept_waiting and self._stalled is None:
                    self._save_kept()
                if self._queue:
                    with self._flush_lock:
                        written = self._flush(KEEPER_BUSY_MS)
                    if not written:
                        unwritable = isinstance(self._stalled, DatabaseUnwritable)
                        if unwritable:  # it may never take them: the fallback, now and then
                            self._save_error_counts(0)
                        self._stop.wait(UNWRITABLE_RETRY_S if unwritable else RETRY_INTERVAL_S)
                    continue
                with self._queue_lock:
                    if not self._runs_in_flight() and not self._queue and not self._kept_waiting:
                        self._keeper = None
                        return
                due = self._last_heartbeat + self.heartbeat_s - time.monotonic()
                if due <= 0:
                    self._heartbeat()
                else:
                    self._stop.wait(min(due, 1.0))
        finally:
            self._drop_store()

    def _save_kept(self) -> None:
        """Save the writes an earlier process on this node kept on disk (spool.py)."""
        with self._flush_lock:
            try:
                spool.replay(self.database, self._store(KEEPER_BUSY_MS))
                self._kept_waiting = False
            except StatsError:  # the database is away: tried again in a while
                self._drop_store()
                self._stop.wait(UNWRITABLE_RETRY_S)

    def _heartbeat(self) -> None:
        """Tell other nodes the runs in flight are alive (their ``last_activity_at``)."""
        self._last_heartbeat = time.monotonic()
        ids = self._runs_in_flight()
        if not ids or self._unusable is not None:
            return
        try:
            self._store(KEEPER_BUSY_MS).touch_runs(ids, iso(utcnow()))
        except Exception:  # the next write will say what is wrong
            self._drop_store()

    # --- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Last chance at exit: wait for a lock to clear, then count what could not be saved."""
        atexit.unregister(self.close)
        self._stop.set()
        deadline = time.monotonic() + EXIT_PATIENCE_S
        keeper = self._keeper
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(KEEPER_BUSY_MS / 1000 + 1)  # else exit could cut it off mid-write
        while self._queue and self._unusable is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._flush_lock.acquire(timeout=remaining):
                break
            try:
                written = self._flush(int(min(2.0, max(0.001, remaining)) * 1000))
            finally:
                self._flush_lock.release()
            if written or isinstance(self._stalled, DatabaseUnwritable):
                break  # done, or waiting would not help
            time.sleep(min(RETRY_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        with self._queue_lock:
            lost, self._queue = list(self._queue), deque()
        for item in lost:
            item.done.set()
        if lost:
            if self._stalled is not None:  # also the cause that delayed them, if not yet counted
                self._defer(lost, self._stalled)
            why = reason(self._stalled or RuntimeError("closed"))
            if spool.keep(self.database, [(item.method, item.args) for item in lost]):
                log.warning(
                    "vpo-stats: %d writes kept in %s, for the next process to save (%s)",
                    len(lost),
                    spool.spool_file(self.database),
                    why,
                )
                self.errors.add(
                    "writes-kept",
                    f"{len(lost)} writes could not be saved before the process ended ({why}): "
                    "kept on this machine's disk, the next plugin process saves them",
                    len(lost),
                )
            else:
                log.error("vpo-stats: %d writes could not be saved before exit", len(lost))
                self.errors.add(
                    "writes-lost",
                    f"{len(lost)} writes could not be saved before the process ended, nor "
                    f"kept on disk: {why}",
                    len(lost),
                )
        self._save_error_counts(HOOK_BUSY_MS, final=True)
        self._drop_store()

    def _save_error_counts(self, busy_ms: int, final: bool = False) -> None:
        """Counts to the database when it takes them, else (now and then) to the fallback."""
        unsaved = self.errors.take_unsaved()
        if not unsaved:
            return
        if self._unusable is None and self._stalled is None:
            try:
                store = self._store(busy_ms)
                for cause in list(unsaved):
                    count, message = unsaved[cause]
                    store.record_error(cause, message, count)
                    del unsaved[cause]
            except Exception:
                self._drop_store()
        now = time.monotonic()
        if unsaved and (final or now - self._last_fallback >= FALLBACK_EVERY_S):
            self._last_fallback = now
            if record_fallback(self.database, unsaved):
                return
        if unsaved:
            self.errors.put_back(unsaved)
