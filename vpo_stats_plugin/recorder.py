"""Turns before-file / after-action / after-file into one run, and gets it into the store.

Every write goes through a queue, in order. Normally a hook writes the queue at once (waiting
at most HOOK_BUSY_MS for a lock), so what it recorded is committed when it returns. When the
database is locked or cannot be written, the writes stay queued and later hooks return at once;
a background "keeper" thread writes them as soon as the database takes them, and at exit the
recorder waits up to EXIT_PATIENCE_S for a lock to clear (a disk that is full or read-only is
tried once more, not waited for). The keeper also touches the runs in flight every so often, so
another node never takes a live run for a dead one. Failures are counted: in the database when
it takes them, else in the fallback tally (store/connection.py). See docs/reliability.md.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import stat
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import probe
from .config import Settings
from .errors import DatabaseUnusable, StatsError
from .filters import iso, utcnow
from .liveness import this_process
from .models import Action, Job, Result, parse
from .store import Store, open_store
from .store.connection import (
    DatabaseLocked,
    DatabaseUnwritable,
    reason,
    record_fallback,
    storable,
)

log = logging.getLogger("vpo_stats_plugin")

HOOK_BUSY_MS = 250  # a hook waits this long for a lock before leaving its write queued
KEEPER_BUSY_MS = 1000  # the keeper's wait for a lock, per attempt
RETRY_INTERVAL_S = 0.1  # pause between the keeper's attempts on a locked database
UNWRITABLE_RETRY_S = 5.0  # ... on a database that cannot be written (disk full, read-only)
EXIT_PATIENCE_S = 60.0  # at exit, how long to wait for a lock to clear
HEARTBEAT_MAX_S = 600.0  # runs in flight are touched at least this often (stale_after / 4)
FALLBACK_EVERY_S = 60.0  # the fallback tally is appended to at most this often (and at exit)
MAX_QUEUED = 100_000  # writes kept while the database cannot take them; then the oldest go

Write = Callable[[Store], Any]

_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()
_inherited: list[Any] = []  # a parent's connections in a forked child: never used nor closed


@dataclass
class _Live:
    """What the recorder remembers of a run between its hooks."""

    run_id: str
    path: str
    started_at: str
    started_clock: float
    successful_actions: int = 0


@dataclass
class _Queued:
    """One write waiting for the database."""

    label: str
    write: Write
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


def _regular(path: str) -> bool:
    """Only a regular file is read (hashed, probed): a FIFO or a device could block the host."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def job_id_of(job_payload: Any) -> str:
    """The host's id of a job payload."""
    return parse(Job, job_payload)[0].id


class Recorder:
    """One per process: records runs for the settings it was made with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Path(settings.database).expanduser().absolute()
        self._live: dict[str, _Live] = {}
        self._unusable: str | None = None  # why the database will not be touched again
        self._start_process()
        _recorders.add(self)

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
        self._last_heartbeat = time.monotonic()
        self._last_fallback = -math.inf
        self._pid, self._process_started = this_process()
        self._exit_pid: int | None = None  # the process whose exit will call close()

    def _register_exit(self) -> None:
        """Have this process's exit call close(), multiprocessing workers included."""
        self._exit_pid = os.getpid()
        atexit.register(self.close)
        if "multiprocessing" in sys.modules:
            import multiprocessing.util

            if multiprocessing.parent_process() is not None:  # its workers end with os._exit
                multiprocessing.util.Finalize(self, self.close, exitpriority=0)

    def _forked(self) -> None:
        """In a forked child: the parent's queue, runs and connections stay the parent's."""
        _inherited.append(self._local)
        self._live.clear()
        self._start_process()

    # --- the three hooks -------------------------------------------------------------------

    def before_file(self, job_payload: Any) -> None:
        job, dropped = parse(Job, job_payload)
        self._note_dropped("job", dropped)
        now = utcnow()
        live = _Live(str(uuid.uuid4()), job.path, iso(now), time.monotonic())
        earlier = self._live.pop(job.id, None)
        if earlier is not None:  # the host started this job again without finishing it
            self._interrupt(earlier, "vpo_before_file came again before vpo_after_file")
        self._live[job.id] = live
        tracks = [t.model_dump() for t in job.tracks] if job.tracks is not None else None
        if tracks is None:
            tracks = self._probe_tracks(job.path)
        run = {
            "id": live.run_id,
            "job_id": job.id,
            "file_id": job.file_id,
            "path": job.path,
            "policy": job.policy,
            "node": job.node or self.settings.node,
            "status": "running",
            "started_at": live.started_at,
            "size_before_bytes": probe.file_size(job.path),
            "tracks_before": probe.count_tracks(tracks),
            "phases_total": job.phases_total,
            "hash_before": self._hash(job.path),
            "source": "hooks",
            "pid": self._pid,
            "process_started": self._process_started,
        }
        run = storable(run)
        self._submit(f"begin {live.run_id}", lambda store: store.begin_run(run))
        self._ensure_keeper()  # for the heartbeat

    def after_action(self, job_payload: Any, action_payload: Any) -> None:
        live = self._live_for(job_payload)
        action, dropped = parse(Action, action_payload)
        self._note_dropped("action", dropped)
        if action.success:
            live.successful_actions += 1
        if not self.settings.record_actions:
            return
        data = storable(action.model_dump())
        when = iso(utcnow())
        self._submit(
            f"action {live.run_id}", lambda store: store.record_action(live.run_id, data, when)
        )

    def after_file(self, job_payload: Any, result_payload: Any) -> None:
        live = self._live_for(job_payload)
        self._live.pop(job_id_of(job_payload), None)
        try:
            result, dropped = parse(Result, result_payload)
        except Exception as err:  # the file is done, how it ended is unknown
            self._interrupt(live, f"the host's result could not be read: {err}")
            raise
        self._note_dropped("result", dropped)
        output = result.output_path or live.path
        size_after = probe.file_size(output)
        if size_after is None and not result.success:
            output, size_after = live.path, probe.file_size(live.path)
        tracks = [t.model_dump() for t in result.tracks] if result.tracks is not None else None
        if tracks is None and size_after is not None:
            tracks = self._probe_tracks(output)
        counts = probe.count_tracks(tracks)
        fields: dict[str, Any] = {
            "status": "succeeded" if result.success else "failed",
            "finished_at": iso(utcnow()),
            "last_activity_at": iso(utcnow()),
            "duration_seconds": round(time.monotonic() - live.started_clock, 6),
            "output_path": output,
            "size_after_bytes": size_after,
            **{f"tracks_after_{kind}": n for kind, n in counts.items()},
            "hash_after": self._hash(output) if size_after is not None else None,
            "error": result.error
            or (None if result.success else "failed (no error message given)"),
            "total_changes": result.total_changes
            if result.total_changes is not None
            else live.successful_actions,
        }
        for name in (
            "phases_completed",
            "video_source_codec",
            "video_target_codec",
            "video_transcode_skipped",
            "video_skip_reason",
            "audio_tracks_transcoded",
            "audio_tracks_preserved",
            "encoder_type",
        ):
            value = getattr(result, name)
            fields[name] = int(value) if isinstance(value, bool) else value
        phases = (
            [p.model_dump() for p in result.phases or []]
            if self.settings.record_performance
            else []
        )
        fields, phases = storable(fields), storable(phases)
        self._submit(
            f"finish {live.run_id}", lambda store: store.finish_run(live.run_id, fields, phases)
        )

    # --- helpers ---------------------------------------------------------------------------

    def _interrupt(self, live: _Live, why: str) -> None:
        """End a run whose end the host did not report usably: interrupted, with why."""
        when = iso(utcnow())
        fields = storable({"status": "interrupted", "last_activity_at": when, "error": why})
        self._submit(
            f"interrupt {live.run_id}", lambda store: store.finish_run(live.run_id, fields, [])
        )

    def _live_for(self, job_payload: Any) -> _Live:
        job, _ = parse(Job, job_payload)
        live = self._live.get(job.id)
        if live is None:  # before-file never reached us: start the run now, from what we have
            self.errors.add("missing-before-file", f"no vpo_before_file for job {job.id!r}")
            self.before_file(job_payload)
            live = self._live[job.id]
        return live

    def _hash(self, path: str) -> str | None:
        return probe.file_hash(path, self.settings.hash) if _regular(path) else None

    def _probe_tracks(self, path: str) -> list[dict[str, Any]] | None:
        return probe.probe_tracks(path) if self.settings.probe_tracks and _regular(path) else None

    def _note_dropped(self, what: str, dropped: list[str]) -> None:
        if dropped:
            self.errors.add(
                f"bad-{what}-fields",
                f"ignored bad {what} fields from the host: {', '.join(dropped)}",
            )

    def _store(self, busy_ms: int) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = open_store(
                self.database,
                node=self.settings.node,
                stale_after=self.settings.stale_after,
                busy_timeout_ms=busy_ms,
            )
            self._local.store = store
        store.conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        return store

    def _drop_store(self) -> None:
        store = getattr(self._local, "store", None)
        self._local.store = None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    # --- the write queue -------------------------------------------------------------------

    def _submit(self, label: str, write: Write) -> None:
        """Queue a write and, unless the database is known to be stalled, write it now."""
        if self._unusable is not None:
            self.errors.add("database-unusable", f"not recorded: {self._unusable}")
            self._save_error_counts(0)
            return
        if self._exit_pid != os.getpid():
            self._register_exit()
        item = _Queued(label, write)
        with self._queue_lock:
            self._queue.append(item)
            overflow = self._queue.popleft() if len(self._queue) > MAX_QUEUED else None
        if overflow is not None:
            overflow.done.set()
            self.errors.add("writes-lost", f"{MAX_QUEUED} writes waiting: the oldest was dropped")
        stalled = self._stalled
        if stalled is not None:  # the keeper is on it: do not make the host wait too
            self._defer([item], stalled)
            self._ensure_keeper()
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
            self._ensure_keeper()

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
                item.write(self._store(busy_ms))
            except (DatabaseLocked, DatabaseUnwritable) as err:
                self._drop_store()
                self._stalled = err
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
        self._stalled = None
        self._save_error_counts(busy_ms)
        return True

    @property
    def pending(self) -> int:
        """Writes waiting for the database."""
        return len(self._queue)

    # --- the keeper thread: retries and heartbeats -----------------------------------------

    def _ensure_keeper(self) -> None:
        with self._queue_lock:
            if self._stop.is_set() or (self._keeper is not None and self._keeper.is_alive()):
                return
            self._keeper = threading.Thread(target=self._keep, name="vpo-stats-keeper", daemon=True)
            self._keeper.start()

    @property
    def heartbeat_s(self) -> float:
        """How often runs in flight are touched."""
        return min(HEARTBEAT_MAX_S, max(0.05, self.settings.stale_after / 4))

    def _keep(self) -> None:
        try:
            while not self._stop.is_set():
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
                    if not self._live and not self._queue:
                        self._keeper = None
                        return
                due = self._last_heartbeat + self.heartbeat_s - time.monotonic()
                if due <= 0:
                    self._heartbeat()
                else:
                    self._stop.wait(min(due, 1.0))
        finally:
            self._drop_store()

    def _heartbeat(self) -> None:
        """Tell other nodes the runs in flight are alive (their ``last_activity_at``)."""
        self._last_heartbeat = time.monotonic()
        ids = [live.run_id for live in list(self._live.values())]
        if not ids or self._unusable is not None:
            return
        try:
            self._store(KEEPER_BUSY_MS).touch_runs(ids, iso(utcnow()))
        except Exception:  # the next write will say what is wrong
            self._drop_store()

    # --- the end ---------------------------------------------------------------------------

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
            log.error("vpo-stats: %d writes could not be saved before exit", len(lost))
            self.errors.add(
                "writes-lost",
                f"{len(lost)} writes could not be saved before the process ended: "
                + reason(self._stalled or RuntimeError("closed")),
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


def _after_fork_in_child() -> None:
    for recorder in list(_recorders):
        recorder._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
