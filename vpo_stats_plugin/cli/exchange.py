"""Moving history between databases: export (ndjson, csv) and import.

`export` streams: runs come from the store a chunk at a time and go straight out, so memory
stays flat whatever the history's size. `import` reads the same formats back in batches (one
transaction each), skipping runs already present by id, so export then import moves or merges
histories and can be repeated safely.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from ..errors import BadParameter, DatabaseUnusable, InputMissing, StatsError
from . import filter_options, format_option, handle_errors, make_filters, outfile, pass_context
from .output import flatten, plural, silence_stdout
from .read import RUN_COLUMNS

CSV_COLUMNS = (*RUN_COLUMNS, "actions", "phases")
# CSV columns that are not text, by the type they come back as
_INTS = {
    "size_before_bytes", "size_after_bytes", "saved_bytes", "audio_tracks_transcoded",
    "audio_tracks_preserved", "phases_completed", "phases_total", "total_changes",
    *(f"tracks_{w}_{k}" for w in ("before", "after") for k in ("video", "audio", "subtitle", "attachment")),
}  # fmt: skip
_FLOATS = {"duration_seconds"}
_BOOLS = {"video_transcode_skipped"}
_JSON = {"actions", "phases"}
_SNIFF = 64 * 1024
BATCH_SIZE = 2000
MAX_LISTED = 50  # skipped lines named one by one; the rest are counted


class _Progress:
    """A one-line counter on stderr, only when stderr is a terminal."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.shown = False
        self.live = sys.stderr.isatty()

    def show(self, text: str) -> None:
        if self.live:
            click.echo(f"\r{self.verb} {text}", nl=False, err=True)
            self.shown = True

    def counts(self, counts: dict[str, int]) -> None:
        """An import's running count."""
        self.show(
            f"{counts['imported']} of {counts['read']} runs read "
            f"({counts['present']} already present)"
        )

    def done(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", nl=False, err=True)


@click.command(name="export")
@format_option(
    ("ndjson", "csv"),
    "ndjson: one run a line with its actions and phases (what import reads back exactly); "
    "csv: one run a row, actions and phases as JSON text (a file_id that looks like a whole "
    "number comes back as one).",
    default="ndjson",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help=(
        "Write to FILE instead of standard output: a file is replaced only once the export is "
        "complete (a symlink's target), a FIFO or a device is written straight through."
    ),
)
@filter_options
@pass_context
@handle_errors
def export(ctx: Any, fmt: str, output: Path | None, **filters: Any) -> None:
    """Write every matching run, oldest first, streaming in constant memory.

    Byte counts are integers and times UTC ISO-8601, as in `--format json` elsewhere. Moving or
    merging histories is export here, then `vpo-stats import FILE` there.

    \b
    Examples:
      vpo-stats export -o history.ndjson
      vpo-stats export --format csv --since 2026-01-01 -o 2026.csv
      vpo-stats export | ssh nas vpo-stats import -
    """
    chosen = make_filters(**filters)
    progress = _Progress("exported") if output is not None else None
    count = 0
    try:
        with contextlib.ExitStack() as stack:
            target: IO[str] = sys.stdout
            if output is not None:
                dest = stack.enter_context(outfile.written(output, stream=True))
                output = dest.named
                target = stack.enter_context(
                    open(dest.writing, "w", encoding="utf-8", newline="")  # noqa: SIM115
                )
            store = stack.enter_context(ctx.open_store())
            live = store.path if isinstance(store.path, Path) else None
            if output is not None and live is not None and dest.target == live.resolve():
                raise BadParameter("--output", "that is the stats database itself")
            runs = store.iter_runs(chosen)
            if fmt == "ndjson":
                for run in runs:
                    target.write(json.dumps(run, ensure_ascii=False) + "\n")
                    count += 1
                    if progress and count % 1000 == 0:
                        progress.show(f"{count} runs")
            else:
                writer = csv.DictWriter(target, fieldnames=CSV_COLUMNS, lineterminator="\n")
                writer.writeheader()
                for run in runs:
                    row = flatten(run)
                    writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})
                    count += 1
                    if progress and count % 1000 == 0:
                        progress.show(f"{count} runs")
            target.flush()
    except BrokenPipeError:
        if output is None:
            # the reader went away (`vpo-stats export | head`): stop quietly, as cat does
            silence_stdout()
            return
        raise StatsError(f"cannot write {output}: the reader of it went away") from None
    except OSError as err:
        raise StatsError(
            f"cannot write {output or 'standard output'}: {err.strerror or err}"
        ) from None
    finally:
        if progress:
            progress.done()
    if output is not None:
        click.echo(f"Exported {plural(count, 'run')} to {output}.", err=True)


def _typed(name: str, text: str) -> Any:
    if text == "":
        return None
    if name in _INTS:
        return int(text)
    if name in _FLOATS:
        return float(text)
    if name in _BOOLS:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} is {text!r}, not true or false")
        return text.lower() in ("true", "1")
    if name in _JSON:
        try:
            return json.loads(text)
        except RecursionError:
            raise ValueError("nested too deeply") from None
    if name == "file_id" and text.isascii() and text.isdigit() and (text == "0" or text[0] != "0"):
        return int(text)  # csv cannot tell 42 from "42": VPO's library ids are numbers
    return text


def _unflatten(row: dict[str, str | None]) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for name, text in row.items():
        if name is None or text is None:  # a row longer or shorter than the header
            raise ValueError("the row does not have as many fields as the header")
        try:
            value = _typed(name, text)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        for nest in ("tracks_before_", "tracks_after_"):
            if name.startswith(nest):
                run.setdefault(nest[:-1], {})[name[len(nest) :]] = value
                break
        else:
            run[name] = value
    return run


class _Reader:
    """Runs from an export, remembering where each came from for the error messages.

    A line that is not a run (not JSON, not UTF-8, a CSV row of the wrong shape) is noted in
    ``bad`` with its line number and never reaches the store. ``line_of(n)`` gives the line of
    the n-th run handed out (for the store's own complaints), for the last few batches.
    """

    def __init__(self, handle: IO[bytes], fmt: str, batch_size: int) -> None:
        self.handle = handle
        self.fmt = fmt
        self.bad: list[tuple[int, str]] = []
        self.handed = 0
        self._lines: deque[int] = deque(maxlen=4 * batch_size)

    def line_of(self, number: int) -> int | None:
        first = self.handed - len(self._lines) + 1
        return self._lines[number - first] if first <= number <= self.handed else None

    def _hand(self, line: int, run: Any) -> Any:
        self.handed += 1
        self._lines.append(line)
        return run

    def __iter__(self) -> Iterator[Any]:
        return self._csv() if self.fmt == "csv" else self._ndjson()

    def _ndjson(self) -> Iterator[Any]:
        for number, raw in enumerate(self.handle, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad.append((number, "not UTF-8 text"))
                continue
            if not line.strip():
                continue
            try:
                run = json.loads(line)
            except ValueError as err:
                self.bad.append((number, f"not JSON ({getattr(err, 'msg', err)})"))
                continue
            except RecursionError:
                self.bad.append((number, "nested too deeply to be a run"))
                continue
            yield self._hand(number, run)

    def _csv(self) -> Iterator[Any]:
        text = io.TextIOWrapper(self.handle, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        fields = reader.fieldnames or []
        if fields and "id" not in fields:
            raise DatabaseUnusable(
                "this CSV has no id column: it is not a runs export from `vpo-stats export "
                "--format csv`"
            )
        start = reader.line_num + 1
        for row in reader:
            try:
                run = _unflatten(row)
            except ValueError as err:
                self.bad.append((start, str(err)))
            else:
                yield self._hand(start, run)
            start = reader.line_num + 1


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_source(file: Path, head: bytes) -> None:
    """Refuse at once what is plainly not an export: a binary file."""
    if b"\x00" in head:
        raise DatabaseUnusable(
            f"{file} is a binary file, neither an export (ndjson or csv) nor a stats database"
        )


@click.command(name="import")
@click.argument(
    "file", metavar="SOURCE", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path)
)
@format_option(
    ("auto", "ndjson", "csv"),
    "Of an export: auto is csv for a .csv file, else ndjson (a stats database is recognised "
    "whatever this says).",
    default="auto",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=BATCH_SIZE,
    show_default=True,
    help="Runs written per transaction.",
)
@pass_context
@handle_errors
def import_command(ctx: Any, file: Path, fmt: str, batch_size: int) -> None:
    """Load runs from an export or another stats database; a run already present (same id) is
    skipped, so it is safe to repeat.

    SOURCE is what `vpo-stats export` wrote (ndjson or csv), - for standard input, or
    another stats database: a SQLite file this plugin made (a node's stats.db, a `backup`),
    read in one snapshot and never written, its runs with their actions and phases. This is
    how histories from several machines are merged, or a history moved to another database.
    Runs go in batches, each in one transaction, with a running count on a terminal. Into an
    empty PostgreSQL database, a stats database goes in one transaction instead (indexes
    built and totals computed once at the end, about 90 s for a million runs): meanwhile
    nodes keep their writes queued and readers find the database busy, and a move that fails
    leaves the database empty. A line
    that is not a valid run is reported with its line number and skipped whole; the others
    are imported, and the exit status is then 1. Exit status 65 when SOURCE is neither an
    export nor a stats database, 66 when it does not exist.

    \b
    Examples:
      vpo-stats import history.ndjson
      vpo-stats --db merged.db import nas-1.ndjson
      vpo-stats --db merged.db import /mnt/nas-1/.vpo/stats.db
      vpo-stats import 2026.csv
      ssh nas vpo-stats export | vpo-stats import -
    """
    is_stdin = str(file) == "-"
    if fmt == "auto":
        fmt = "csv" if file.suffix.lower() == ".csv" else "ndjson"
    if not is_stdin:
        file = file.expanduser()
        if not file.exists():
            raise InputMissing(
                f"{file} does not exist: give the path of a file made by `vpo-stats export`, "
                "or of another stats database"
            )
    try:
        raw: Any = sys.stdin.buffer if is_stdin else file.open("rb", buffering=_SNIFF)
    except OSError as err:
        raise StatsError(f"cannot read {file}: {err.strerror or err}") from None
    try:
        handle = io.BufferedReader(raw, buffer_size=_SNIFF) if is_stdin else raw
        head = handle.peek(_SNIFF)[:_SNIFF]
        if head.startswith(SQLITE_HEADER):
            if is_stdin:
                raise DatabaseUnusable(
                    "standard input is a SQLite database: give a stats database by its path"
                )
            raw.close()
            _import_database(ctx, file, batch_size)
            return
        _check_source(file, head)
        reader = _Reader(handle, fmt, batch_size)
        progress = _Progress("imported")
        skipped: list[tuple[int | None, str]] = []

        def on_skip(number: int, run: Any, why: str) -> None:
            skipped.append((reader.line_of(number), why))

        try:
            with ctx.open_store(create=True) as store:
                counts = store.import_runs(
                    reader, batch_size=batch_size, on_progress=progress.counts, on_skip=on_skip
                )
        finally:
            progress.done()
    finally:
        if not is_stdin:
            raw.close()
    problems = sorted([(line, why) for line, why in reader.bad] + skipped, key=lambda p: p[0] or 0)
    _say_skipped(
        [f"line {line}: {why}" if line is not None else f"a run: {why}" for line, why in problems],
        "lines",
    )
    considered = counts["read"] + len(reader.bad)
    click.echo(
        f"{plural(considered, 'run')} read from {file if not is_stdin else 'standard input'}: "
        f"{counts['imported']} imported, {counts['present']} already present, "
        f"{len(problems)} skipped."
    )
    if problems and considered == len(problems):
        raise DatabaseUnusable(
            f"{file} is not an export: none of its {considered} lines is a run "
            "(make one with `vpo-stats export`)"
        )
    if problems:
        raise StatsError(
            f"{plural(len(problems), 'line was', 'lines were')} not valid runs and skipped (listed above); "
            "the other runs were imported"
        )


def _say_skipped(items: list[str], noun: str) -> None:
    """What an import skipped, on stderr: the first MAX_LISTED one by one, the rest counted."""
    for item in items[:MAX_LISTED]:
        click.echo(f"skipped {item}", err=True)
    if len(items) > MAX_LISTED:
        click.echo(f"... and {len(items) - MAX_LISTED} more {noun} skipped", err=True)


@contextlib.contextmanager
def _opened_source(source: Path) -> Iterator[Any]:
    """The stats database SOURCE, or an error that speaks of it as what is imported."""
    from ..store import open_source
    from ..store.connection import NoDatabase

    try:
        with open_source(source) as origin:
            yield origin
    except NoDatabase as err:
        raise DatabaseUnusable(f"nothing to import: {err.why}. It was left as it is.") from None
    except DatabaseUnusable as err:
        why = getattr(err, "why", None)
        if why is None:
            raise
        hint = (
            " (VPO's own database is read with `vpo-stats import-vpo`)"
            if "another application" in why
            else ""
        )
        raise DatabaseUnusable(
            f"cannot import {source}: {why}{hint}. It was left as it is."
        ) from None


def _import_database(ctx: Any, source: Path, batch_size: int) -> None:
    """``import SOURCE`` for a stats database: its runs, with actions and phases, by id."""
    target = ctx.database
    if isinstance(target, Path) and target.expanduser().absolute().resolve() == source.resolve():
        raise BadParameter("SOURCE", f"{source} is the stats database itself")
    progress = _Progress("imported")
    skipped: list[tuple[str, str]] = []

    def on_skip(number: int, run: Any, why: str) -> None:
        skipped.append((run.get("id", "?") if isinstance(run, dict) else "?", why))

    try:
        with contextlib.ExitStack() as stack:
            origin = stack.enter_context(_opened_source(source))
            store = stack.enter_context(ctx.open_store(create=True))
            counts = store.import_store(
                origin, batch_size=batch_size, on_progress=progress.counts, on_skip=on_skip
            )
    finally:
        progress.done()
    _say_skipped([f"run {run_id}: {why}" for run_id, why in skipped], "runs")
    click.echo(
        f"{plural(counts['read'], 'run')} read from the stats database {source}: "
        f"{counts['imported']} imported, {counts['present']} already present, "
        f"{len(skipped)} skipped."
    )
    if skipped:
        raise StatsError(
            f"{plural(len(skipped), 'run was', 'runs were')} not valid and skipped (listed "
            "above); the other runs were imported"
        )


COMMANDS = (export, import_command)
