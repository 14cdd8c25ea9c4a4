"""Turns before-file / after-action / after-file into one run, and gets it into the store.

Writes go through a queue: each hook appends its write and flushes the queue at once. When the
database is locked or unwritable the writes stay queued, a background thread retries them, and
an exit handler makes a last, patient attempt, so a run the host reported is never dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import probe
from .config import Settings
from .errors import DatabaseUnusable, StatsError
from .filters import iso, utcnow
from .liveness import this_process
from .models import Action, Job, Result, parse
from .store import Store, open_store

log = logging.getLogger("vpo_stats_plugin")

HOOK_BUSY_MS = 250  # a hook waits this long for a lock before queueing its write
RETRY_INTERVAL_S = 0.5
EXIT_PATIENCE_S = 60.0

Write = Callable[[Store], Any]


@dataclass
class _Live:
    """What the recorder remembers of a run between its hooks."""

    run_id: str
    path: str
    started_at: str
    started_clock: float
    successful_actions: int = 0


@dataclass
class ErrorTally:
    """Recording failures by cause; each cause is logged once."""

    counts: dict[str, int] = field(default_factory=dict)
    unsaved: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, cause: str, message: str) -> bool:
        """Count one failure; True the first time this cause is seen."""
        with self.lock:
            first = cause not in self.counts
            self.counts[cause] = self.counts.get(cause, 0) + 1
            self.unsaved[cause] = (self.unsaved.get(cause, (0, ""))[0] + 1, message)
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


def job_id_of(job_payload: Any) -> str:
    """The host's id of a job payload."""
    return parse(Job, job_payload)[0].id


class Recorder:
    """One per process: records runs for the settings it was made with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.errors = ErrorTally()
        self._live: dict[str, _Live] = {}
        self._queue: deque[tuple[str, Write]] = deque()
        self._queue_lock = threading.RLock()
        self._local = threading.local()
        self._retry_thread: threading.Thread | None = None
        self._unusable = False
        self._pid, self._process_started = this_process()
        atexit.register(self.close)

    # --- the three hooks -------------------------------------------------------------------

    def before_file(self, job_payload: Any) -> None:
        job, dropped = parse(Job, job_payload)
        self._note_dropped("job", dropped)
        now = utcnow()
        live = _Live(str(uuid.uuid4()), job.path, iso(now), time.monotonic())
        self._live[job.id] = live
        tracks = [t.model_dump() for t in job.tracks] if job.tracks is not None else None
        if tracks is None and self.settings.probe_tracks:
            tracks = probe.probe_tracks(job.path)
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
            "hash_before": probe.file_hash(job.path, self.settings.hash),
            "source": "hooks",
            "pid": self._pid,
            "process_started": self._process_started,
        }
        self._submit(f"begin {live.run_id}", lambda store: store.begin_run(run))

    def after_action(self, job_payload: Any, action_payload: Any) -> None:
        live = self._live_for(job_payload)
        action, dropped = parse(Action, action_payload)
        self._note_dropped("action", dropped)
        if action.success:
            live.successful_actions += 1
        if not self.settings.record_actions:
            return
        data = action.model_dump()
        when = iso(utcnow())
        self._submit(
            f"action {live.run_id}", lambda store: store.record_action(live.run_id, data, when)
        )

    def after_file(self, job_payload: Any, result_payload: Any) -> None:
        live = self._live_for(job_payload)
        result, dropped = parse(Result, result_payload)
        self._note_dropped("result", dropped)
        self._live.pop(job_id_of(job_payload), None)
        output = result.output_path or live.path
        size_after = probe.file_size(output)
        if size_after is None and not result.success:
            output, size_after = live.path, probe.file_size(live.path)
        tracks = [t.model_dump() for t in result.tracks] if result.tracks is not None else None
        if tracks is None and self.settings.probe_tracks and size_after is not None:
            tracks = probe.probe_tracks(output)
        counts = probe.count_tracks(tracks)
        fields: dict[str, Any] = {
            "status": "succeeded" if result.success else "failed",
            "finished_at": iso(utcnow()),
            "last_activity_at": iso(utcnow()),
            "duration_seconds": round(time.monotonic() - live.started_clock, 6),
            "output_path": output,
            "size_after_bytes": size_after,
            **{f"tracks_after_{kind}": n for kind, n in counts.items()},
            "hash_after": probe.file_hash(output, self.settings.hash)
            if size_after is not None
            else None,
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
        self._submit(
            f"finish {live.run_id}", lambda store: store.finish_run(live.run_id, fields, phases)
        )

    # --- helpers ---------------------------------------------------------------------------

    def _live_for(self, job_payload: Any) -> _Live:
        job, _ = parse(Job, job_payload)
        live = self._live.get(job.id)
        if live is None:  # before-file never reached us: start the run now, from what we have
            self.errors.add("missing-before-file", f"no vpo_before_file for job {job.id!r}")
            self.before_file(job_payload)
            live = self._live[job.id]
        return live

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
                self.settings.database,
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

    def _submit(self, label: str, write: Write) -> None:
        with self._queue_lock:
            self._queue.append((label, write))
        if not self.flush(HOOK_BUSY_MS):
            self._start_retry()

    def flush(self, busy_ms: int) -> bool:
        """Write what is queued, in order; False when the database could not take it yet."""
        with self._queue_lock:
            if self._unusable:
                self._queue.clear()
                return True
            while self._queue:
                label, write = self._queue[0]
                try:
                    write(self._store(busy_ms))
                except DatabaseUnusable as err:
                    # not our database, or corrupt: never touch it, record nothing more
                    self._unusable = True
                    self._queue.clear()
                    self._drop_store()
                    self.errors.add("database-unusable", str(err))
                    return True
                except StatsError as err:  # locked, unwritable, disk full: keep it queued
                    self._drop_store()
                    self.errors.add("database-unavailable", f"{err} (writes kept queued)")
                    return False
                except Exception as err:  # a write that can never succeed: drop just it
                    self._queue.popleft()
                    self.errors.add("write-failed", f"{label} failed: {err!r}")
                    continue
                self._queue.popleft()
            self._save_error_counts()
            return True

    def _start_retry(self) -> None:
        with self._queue_lock:
            if self._retry_thread is not None and self._retry_thread.is_alive():
                return
            self._retry_thread = threading.Thread(
                target=self._retry_loop, name="vpo-stats-retry", daemon=True
            )
            self._retry_thread.start()

    def _retry_loop(self) -> None:
        while True:
            time.sleep(RETRY_INTERVAL_S)
            if self.flush(HOOK_BUSY_MS * 4):
                self._drop_store()
                return

    @property
    def pending(self) -> int:
        """Writes waiting for the database."""
        return len(self._queue)

    def close(self) -> None:
        """Last chance at exit: wait for the database to take what is queued."""
        deadline = time.monotonic() + EXIT_PATIENCE_S
        while self._queue and time.monotonic() < deadline:
            if self.flush(2000):
                break
            time.sleep(RETRY_INTERVAL_S)
        if self._queue:
            log.error("vpo-stats: %d writes could not be saved before exit", len(self._queue))
        with self._queue_lock:
            if not self._queue:
                self._save_error_counts()
        self._drop_store()

    def _save_error_counts(self) -> None:
        unsaved = self.errors.take_unsaved()
        if not unsaved or self._unusable:
            return
        try:
            store = self._store(HOOK_BUSY_MS)
            for cause, (count, message) in unsaved.items():
                store.record_error(cause, message, count)
        except Exception:
            with self.errors.lock:  # try again with the next successful write
                for cause, (count, message) in unsaved.items():
                    old = self.errors.unsaved.get(cause, (0, message))[0]
                    self.errors.unsaved[cause] = (old + count, message)
