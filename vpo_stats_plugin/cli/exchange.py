"""Moving history between databases: export (ndjson, csv) and import."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from ..errors import InputMissing, StatsError
from . import filter_options, handle_errors, make_filters, pass_context
from .output import flatten

# CSV columns that are not text, by the type they come back as
_INTS = {
    "size_before_bytes", "size_after_bytes", "saved_bytes", "audio_tracks_transcoded",
    "audio_tracks_preserved", "phases_completed", "phases_total", "total_changes",
    *(f"tracks_{w}_{k}" for w in ("before", "after") for k in ("video", "audio", "subtitle", "attachment")),
}  # fmt: skip
_FLOATS = {"duration_seconds"}
_BOOLS = {"video_transcode_skipped"}
_JSON = {"actions", "phases"}


@click.command(name="export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("ndjson", "csv")),
    default="ndjson",
    show_default=True,
    help="ndjson: one run a line with its actions and phases; csv: one run a row.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@filter_options
@pass_context
@handle_errors
def export(ctx: Any, fmt: str, output: Path | None, **filters: Any) -> None:
    """Write every matching run, oldest first, streaming in constant memory.

    \b
    Examples:
      vpo-stats export -o history.ndjson
      vpo-stats export --format csv --since 2026-01-01 -o 2026.csv
      vpo-stats export | ssh nas vpo-stats import -
    """
    chosen = make_filters(**filters)
    target: IO[str]
    tmp = None
    if output is None:
        target = sys.stdout
    else:
        tmp = output.with_name(output.name + ".partial")
        try:
            target = tmp.open("w", encoding="utf-8", newline="")
        except OSError as err:
            raise StatsError(f"cannot write {output}: {err.strerror or err}") from None
    count = 0
    try:
        with ctx.open_store() as store:
            runs = store.iter_runs(chosen)
            if fmt == "ndjson":
                for run in runs:
                    target.write(json.dumps(run, ensure_ascii=False, sort_keys=False) + "\n")
                    count += 1
            else:
                writer: csv.DictWriter | None = None
                for run in runs:
                    row = flatten(run)
                    if writer is None:
                        writer = csv.DictWriter(target, fieldnames=list(row), lineterminator="\n")
                        writer.writeheader()
                    writer.writerow({k: "" if v is None else v for k, v in row.items()})
                    count += 1
        if tmp is not None:
            target.close()
            tmp.replace(output)  # type: ignore[arg-type]
    except BaseException:
        if tmp is not None:
            target.close()
            tmp.unlink(missing_ok=True)
        raise
    if output is not None:
        click.echo(f"Exported {count} runs to {output}.", err=True)


def _typed(name: str, text: str) -> Any:
    if text == "":
        return None
    if name in _INTS:
        return int(text)
    if name in _FLOATS:
        return float(text)
    if name in _BOOLS:
        return text.lower() in ("true", "1", "yes")
    if name in _JSON:
        return json.loads(text)
    return text


def _unflatten(row: dict[str, str]) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for name, text in row.items():
        value = _typed(name, text)
        for nest in ("tracks_before_", "tracks_after_", "filters_"):
            if name.startswith(nest):
                run.setdefault(nest[:-1], {})[name[len(nest) :]] = value
                break
        else:
            run[name] = value
    return run


def _read_runs(handle: IO[str], fmt: str, bad: list[str]) -> Iterator[Any]:
    """Runs from an export; a line that cannot be read is noted in ``bad`` and skipped."""
    if fmt == "csv":
        for number, row in enumerate(csv.DictReader(handle), 2):
            try:
                yield _unflatten(row)
            except (ValueError, TypeError) as err:
                bad.append(f"line {number}: {err}")
        return
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as err:
            bad.append(f"line {number}: not JSON ({err.msg})")


@click.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("auto", "ndjson", "csv")),
    default="auto",
    show_default=True,
    help="auto: csv for a .csv file, else ndjson.",
)
@pass_context
@handle_errors
def import_command(ctx: Any, file: Path, fmt: str) -> None:
    """Load runs from an export; a run already present (same id) is skipped, so it is safe to repeat.

    \b
    Examples:
      vpo-stats import history.ndjson
      vpo-stats --db merged.db import nas-1.ndjson
      vpo-stats import 2026.csv
    """
    if fmt == "auto":
        fmt = "csv" if file.suffix.lower() == ".csv" else "ndjson"
    if str(file) != "-" and not file.exists():
        raise InputMissing(
            f"{file} does not exist: give the path of a file made by `vpo-stats export`"
        )
    bad: list[str] = []
    progress = sys.stderr.isatty()

    def on_skip(number: int, run: Any, why: str) -> None:
        ident = run.get("id") if isinstance(run, dict) else None
        bad.append(f"run #{number}{f' ({ident})' if ident else ''}: {why}")

    def on_progress(counts: dict[str, int]) -> None:
        if progress:
            click.echo(
                f"\r{counts['read']} runs read, {counts['imported']} imported", nl=False, err=True
            )

    try:
        handle = sys.stdin if str(file) == "-" else file.open(encoding="utf-8", newline="")
    except OSError as err:
        raise StatsError(f"cannot read {file}: {err.strerror or err}") from None
    try:
        with ctx.open_store() as store:
            counts = store.import_runs(
                _read_runs(handle, fmt, bad), on_progress=on_progress, on_skip=on_skip
            )
    except UnicodeDecodeError:
        raise StatsError(f"{file} is not a text export (not UTF-8)") from None
    finally:
        if handle is not sys.stdin:
            handle.close()
    if progress:
        click.echo("", err=True)
    for line in bad:
        click.echo(f"skipped {line}", err=True)
    skipped = len(bad)
    click.echo(
        f"{counts['read'] + skipped - counts['skipped']} read, {counts['imported']} imported, "
        f"{counts['present']} already present, {skipped} skipped."
    )


COMMANDS = (export, import_command)
