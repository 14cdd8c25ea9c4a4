"""`import-vpo`: bring in the history VPO keeps in its own library.db, once or following it.

Only click and the standard library at import time: the host imports the group on every run.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import BadParameter, DatabaseUnusable, InputMissing, StatsError
from ..filters import WHEN_HELP
from . import format_option, handle_errors, pass_context

if TYPE_CHECKING:
    from ..vpo_import import VpoReader

# import_fn(runs, skip) stores runs and answers {"imported", "present"}; skip(id, why) on refusal
ImportFn = Callable[[Iterable[dict[str, Any]], Callable[[str, str], None]], Mapping[str, int]]
Mark = tuple[int, str | None]  # rowid and stats id of the last row read
OnStart = Callable[["VpoReader", int, bool], None]


@dataclass
class ImportTotals:
    """Counts over one import or a whole follow session."""

    read: int = 0
    imported: int = 0
    present: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: ImportTotals) -> None:
        """Add the counts of one more poll."""
        self.read += other.read
        self.imported += other.imported
        self.present += other.present
        self.skipped += other.skipped

    def line(self, dry_run: bool = False) -> str:
        """The final line: rows read, imported, already present, skipped."""
        if dry_run:
            return (
                f"{self.read} rows read, {self.imported} would be imported, {self.present} "
                f"already present, {len(self.skipped)} skipped (dry run: nothing written)"
            )
        return (
            f"{self.read} rows read, {self.imported} imported, {self.present} already present, "
            f"{len(self.skipped)} skipped"
        )

    def as_json(self) -> dict[str, Any]:
        """The totals for scripts (after a dry run, ``imported`` is what it would import)."""
        return {
            "read": self.read,
            "imported": self.imported,
            "present": self.present,
            "skipped": [{"id": rid, "reason": why} for rid, why in self.skipped],
        }


def import_once(
    path: str | Path,
    import_fn: ImportFn | None,
    *,
    node: str,
    since: datetime | None = None,
    after: Mark = (0, None),
    stop: threading.Event | None = None,
    on_start: OnStart | None = None,
    busy_timeout_ms: int = 5000,
) -> tuple[ImportTotals, Mark]:
    """Read VPO's rows past ``after`` into ``import_fn`` (None: count only); answers the new mark.

    ``on_start(reader, start_rowid, renumbered)`` runs once the database is checked; renumbered
    means VPO rebuilt or vacuumed the table (rowids changed), so it is read again from the start.
    """
    from ..vpo_import import VpoReader, inspect_vpo, open_vpo

    conn = open_vpo(path, busy_timeout_ms=busy_timeout_ms)
    try:
        reader = VpoReader(conn, inspect_vpo(conn, path), node=node, since=since, stop=stop)
        renumbered = not reader.marker_holds(*after)
        start: Mark = (0, None) if renumbered else after
        if on_start is not None:
            on_start(reader, start[0], renumbered)
        totals = ImportTotals()
        refused: list[tuple[str, str]] = []
        if import_fn is None:
            for _ in reader.runs(start[0]):
                pass
        else:
            counts = import_fn(reader.runs(start[0]), lambda rid, why: refused.append((rid, why)))
            totals.imported = int(counts.get("imported", 0))
            totals.present = int(counts.get("present", 0))
        totals.read = reader.read
        totals.skipped = reader.skipped + refused
        return totals, (reader.high_water if reader.high_water[0] else start)
    finally:
        conn.close()


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _trouble(path: str | Path, err: Exception) -> str:
    """What went wrong with one poll, said briefly (the follower retries anyway)."""
    from ..vpo_import import VpoUnavailable

    if isinstance(err, VpoUnavailable):
        return f"VPO's database {path} is busy or locked ({err.cause})"
    if isinstance(err, InputMissing):
        return f"VPO's database {path} is missing"
    return str(err)


def follow(
    path: str | Path,
    import_fn: ImportFn,
    *,
    node: str,
    interval: float,
    stop: threading.Event,
    say: Callable[[str], None],
    since: datetime | None = None,
    on_poll: Callable[[ImportTotals], None] | None = None,
    on_start: OnStart | None = None,
    max_polls: int | None = None,
    busy_timeout_ms: int = 5000,
) -> ImportTotals:
    """Import, then poll every ``interval`` seconds for the rows VPO adds, until ``stop`` is set.

    A lock VPO holds, a missing file or one being replaced is reported once and retried at the
    next poll; a file that is not a VPO database at the first poll is an error.
    """
    totals = ImportTotals()
    after: Mark = (0, None)
    trouble: str | None = None
    polls = 0
    while not stop.is_set():
        try:
            got, after = import_once(
                path,
                import_fn,
                node=node,
                since=since,
                after=after,
                stop=stop,
                on_start=on_start,
                busy_timeout_ms=busy_timeout_ms,
            )
        except (sqlite3.Error, StatsError) as err:
            if polls == 0 and isinstance(err, DatabaseUnusable):
                raise
            text = _trouble(path, err)
            if text != trouble:
                say(f"{_stamp()} {text}; retrying every {interval:g}s")
            trouble = text
        else:
            if trouble is not None:
                say(f"{_stamp()} VPO's database {path} is readable again")
            trouble = None
            totals.add(got)
            if on_poll is not None:
                on_poll(got)
        polls += 1
        if max_polls is not None and polls >= max_polls:
            break
        stop.wait(interval)
    return totals


@contextmanager
def stop_on_signals(stop: threading.Event, say: Callable[[str], None]) -> Iterator[None]:
    """Ctrl-C or SIGTERM sets ``stop`` (a second one stops at once); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        say("Stopping after the current batch (Ctrl-C again to stop at once).")

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _skipped_by_id(skip: Callable[[str, str], None]) -> Callable[[int, Any, str], None]:
    """The store's on_skip (line number, run, why) as VPO's: by the stats row's id."""
    return lambda i, raw, why: skip(str(raw.get("id") if isinstance(raw, dict) else i), why)


def _report(totals: ImportTotals, fmt: str, extra: dict[str, Any], dry_run: bool) -> None:
    if fmt == "json":
        from .output import to_json

        click.echo(to_json({**extra, "dry_run": dry_run, **totals.as_json()}))
        return
    click.echo(totals.line(dry_run))
    for rid, why in totals.skipped:
        click.echo(f"  skipped {rid}: {why}")


@click.command("import-vpo")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--since", metavar="WHEN", help=f"Only runs started at or after WHEN: {WHEN_HELP}.")
@click.option(
    "--node",
    metavar="NAME",
    help="Node stored on each run. Default: the `node` config key (this machine's hostname).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the rows it would import and those already there; write nothing anywhere.",
)
@click.option("--follow", "following", is_flag=True, help="Keep polling for new rows until Ctrl-C.")
@click.option(
    "--interval",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="How often --follow polls: 1s, 30s, 5m, ...",
)
@format_option(("table", "json"), "The final totals as a line for people or as json for scripts.")
@pass_context
@handle_errors
def import_vpo(
    ctx: Any,
    path: Path | None,
    since: str | None,
    node: str | None,
    dry_run: bool,
    following: bool,
    interval: str,
    fmt: str,
) -> None:
    """Bring in the history VPO keeps in its own database (processing_stats in library.db).

    PATH defaults to VPO_DATABASE_PATH, else ~/.vpo/library.db. VPO's database is opened
    read-only and never written to, even while VPO runs. Each VPO row becomes one run with the
    same id, so importing again adds only what is new.

    \b
    Examples:
      vpo-stats import-vpo
      vpo-stats import-vpo ~/.vpo/library.db --since 30d --dry-run
      vpo-stats import-vpo --follow --interval 1m
    """
    from ..filters import parse_duration, parse_when
    from ..vpo_import import default_vpo_path

    source = (path or default_vpo_path()).expanduser().absolute()
    when = None
    if since:
        try:
            when = parse_when(since)
        except ValueError as err:
            raise BadParameter("--since", str(err)) from None
    try:
        every = parse_duration(interval).total_seconds()
    except ValueError as err:
        raise BadParameter("--interval", str(err)) from None
    if every <= 0:
        raise BadParameter("--interval", f"{interval!r} is zero: give at least 1s")
    if dry_run and following:
        raise BadParameter("--dry-run", "a dry run counts once: give it without --follow")
    node = node or ctx.settings.node
    tty = sys.stderr.isatty()

    def say(text: str) -> None:
        click.echo(text, err=True)

    shown: dict[str, Any] = {}

    def on_start(reader: VpoReader, start: int, renumbered: bool) -> None:
        shown["schema_version"] = reader.schema.version
        if renumbered:
            say(f"VPO rebuilt or vacuumed its table: reading {source} again from the start.")
        text = reader.schema.describe()
        if shown.get("described") != text:
            shown["described"] = text
            say(f"Reading {source} ({text}).")
        shown["total"] = reader.remaining(start) if tty and not following else None

    def progress(counts: dict[str, int]) -> None:
        if tty and not shown.get("polled"):
            total = f"/{shown['total']}" if shown.get("total") is not None else ""
            text = f"  {counts['read']}{total} rows: {counts['imported']} imported, "
            click.echo(f"\r{text}{counts['present']} already present", err=True, nl=False)
            shown["progress"] = True

    stores: list[Any] = []

    def import_fn(runs: Iterable[dict[str, Any]], skip: Callable[[str, str], None]) -> Any:
        if not stores:  # opened once VPO's database is known good, so a bad one writes nothing
            stores.append(ctx.open_store(create=True))
        return stores[0].import_runs(
            runs,
            on_progress=progress,
            on_skip=_skipped_by_id(skip),
        )

    def count_fn(runs: Iterable[dict[str, Any]], skip: Callable[[str, str], None]) -> Any:
        from ..store import stored_run_ids
        from ..store.importing import count_import

        database = ctx.settings.database
        return count_import(
            runs,
            lambda ids: stored_run_ids(database, ids),
            on_skip=_skipped_by_id(skip),
        )

    def on_poll(got: ImportTotals) -> None:
        shown["polled"] = True
        if shown.pop("progress", None):
            click.echo("", err=True)
        if got.read:
            say(f"{_stamp()} {got.line()}")
            for rid, why in got.skipped:
                say(f"  skipped {rid}: {why}")

    extra = {"source": str(source)}
    try:
        if following:
            stop = threading.Event()
            say(f"Following {source} every {every:g}s; Ctrl-C stops.")
            with stop_on_signals(stop, say):
                totals = follow(
                    source,
                    import_fn,
                    node=node,
                    interval=every,
                    stop=stop,
                    say=say,
                    since=when,
                    on_poll=on_poll,
                    on_start=on_start,
                )
        else:
            totals, _ = import_once(
                source, count_fn if dry_run else import_fn, node=node, since=when, on_start=on_start
            )
    finally:
        for store in stores:
            store.close()
        if shown.get("progress"):
            click.echo("", err=True)
    extra["schema_version"] = shown.get("schema_version")
    _report(totals, fmt, extra, dry_run)
