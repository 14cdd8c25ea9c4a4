"""Commands about the database itself: status, path, backup, purge, rebuild."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..errors import BadParameter, StatsError
from ..filters import STATUSES, WHEN_HELP, Filters
from . import (
    as_typed_here,
    format_option,
    handle_errors,
    outfile,
    output_options,
    pass_context,
)
from .output import (
    clean,
    emit,
    human_bytes,
    human_time,
    last_line,
    pairs,
    plural,
    table,
    write_raw,
)


def _engine(body: dict[str, Any]) -> str:
    engine, version = body.get("engine", "sqlite"), body.get("server_version")
    return f"{engine} {version}" if version else engine


def render_status(body: dict[str, Any]) -> str:
    """The status block."""
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(body["runs_by_status"].items())) or "none"
    last_migration = body["migrations"][-1] if body["migrations"] else "-"
    items = [
        ("database", clean(body["path"])),
        ("engine", _engine(body)),
        ("schema", f"version {body['schema_version']} ({last_migration})"),
        ("size", human_bytes(body["size_bytes"])),
        ("runs", f"{body['runs']} ({by_status})"),
        ("first run", human_time(body["first_run_at"]) + (" UTC" if body["first_run_at"] else "")),
        ("last run", human_time(body["last_run_at"]) + (" UTC" if body["last_run_at"] else "")),
        (
            "recording errors",
            click.style(str(body["recording_errors"]), fg="red", bold=True)
            if body["recording_errors"]
            else 0,
        ),
    ]
    if body.get("pending_migrations"):
        items.insert(2, ("pending", ", ".join(body["pending_migrations"])))
    text = pairs(items)
    if body["recording_error_causes"]:
        text += "\n\n" + table(
            ["cause", "count", "last (UTC)", "last message"],
            [
                [
                    clean(e["cause"]),
                    e["count"],
                    human_time(e["last_at"]),
                    last_line(e["last_message"]),
                ]
                for e in body["recording_error_causes"]
            ],
            right=(1,),
        )
    return text


@click.command()
@output_options
@pass_context
@handle_errors
def status(ctx: Any, fmt: str) -> None:
    """Where the database is, its schema version and size, runs, and recording errors.

    Recording errors are the failures the hooks counted instead of stopping the host (a locked
    or full disk, a bad value from the host): a number that grows means runs are missing.

    \b
    Examples:
      vpo-stats status
      vpo-stats --db /srv/vpo/stats.db status --format json
    """
    with ctx.open_store() as store:
        body = store.status()
    emit(body, fmt, render_status)


@click.command()
@pass_context
@handle_errors
def path(ctx: Any) -> None:
    """Print the database path only (it need not exist yet); a URL without its password.

    \b
    Examples:
      vpo-stats path
      sqlite3 "$(vpo-stats path)" .tables
    """
    database = ctx.database
    if not isinstance(database, Path):  # a URL: shown with its password masked
        click.echo(str(database))
        return
    # the bytes of the path as the file system has them, so scripts can use it even if not UTF-8
    sys.stdout.flush()
    sys.stdout.buffer.write(os.fsencode(database) + b"\n")
    sys.stdout.buffer.flush()


@click.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
@pass_context
@handle_errors
def backup(ctx: Any, dest: Path, force: bool) -> None:
    """Write a consistent copy of the live database to DEST, safe while hosts record.

    DEST is always a SQLite stats database: from a SQLite file, a copy made with SQLite's
    backup API; from PostgreSQL, every run with its actions and phases, read in one snapshot.
    It is written to a new temporary file beside DEST and renamed into place when complete,
    so DEST is never a half-written file (a symlink's target is the file written). An
    existing DEST is kept unless --force.

    \b
    Examples:
      vpo-stats backup ~/backups/stats-2026-11-25.db
      vpo-stats backup --force /mnt/nas/stats.db
    """
    dest = dest.expanduser()
    if dest.is_file() and not force:  # what is not a file is refused below, --force or not
        raise StatsError(f"{dest} exists: pass --force to overwrite it, or choose another name")
    with ctx.open_store() as store:
        live = store.path if isinstance(store.path, Path) else None
        if live is not None and dest.exists() and dest.resolve() == live.resolve():
            raise BadParameter("DEST", "DEST is the live database itself: choose another file")
        runs = store.status()["runs"]
        try:
            with outfile.written(dest, stream=False, what="a backup") as where:
                store.backup(where.writing)
        except OSError as err:
            raise StatsError(f"cannot write {dest}: {err.strerror or err}") from None
    size = human_bytes(dest.stat().st_size)
    click.echo(f"Backed up {plural(runs, 'run')} to {clean(dest)} ({size}).")


LARGE_PURGE = 100_000  # runs: from here a purge says it will take a while


def _match(count: int) -> str:
    return f"{count} run matches" if count == 1 else f"{count} runs match"


def _purge_filters(
    before: str | None, everything: bool, filters: dict[str, Any], now: datetime
) -> Any:
    """The filters a purge deletes by, relative times taken at ``now``; usage errors for
    contradictory or missing ones (the API's purge body follows the same rules)."""
    from ..purging import check_combination, until_before

    given = [name for name, value in (("before", before), *filters.items()) if value]
    check_combination(given, everything, spell=lambda name: f"--{name}")
    if before is not None:
        try:
            filters["until"] = until_before(before, now)
        except ValueError as err:
            raise BadParameter("--before", str(err)) from None
    chosen = Filters.parse(**filters, now=now)
    if not everything and chosen.empty:
        raise click.UsageError(
            "say which runs to delete: --before WHEN, --since/--until WHEN, --policy NAME, "
            "--node NAME, --status S, or --all for every run"
        )
    return chosen


@click.command()
@click.option("--before", metavar="WHEN", help=f"Runs started before WHEN: {WHEN_HELP}.")
@click.option("--since", metavar="WHEN", help="Runs started at or after WHEN.")
@click.option(
    "--until", metavar="WHEN", help="Runs started at or before WHEN (a bare date: that whole day)."
)
@click.option("--policy", metavar="NAME", help="Runs of this policy.")
@click.option("--node", metavar="NAME", help="Runs recorded on this node.")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    help="Runs with this status (running runs are never deleted).",
)
@click.option("--all", "everything", is_flag=True, help="Every finished run.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@format_option(
    ("table", "json"), 'json: {"matched": n, "deleted": n, "token": ...}, as the API answers.'
)
@pass_context
@handle_errors
def purge(
    ctx: Any,
    before: str | None,
    everything: bool,
    dry_run: bool,
    yes: bool,
    fmt: str,
    **filters: Any,
) -> None:
    """Delete finished runs (with their actions and phases) for good, in one transaction.

    Says first exactly how many runs match; --dry-run stops there. Otherwise it asks before
    deleting, unless --yes; with no terminal to ask on and no --yes it refuses (exit 1).
    It deletes exactly the runs it counted: if runs were recorded, finished or deleted
    meanwhile, it deletes nothing and says so (exit 1).
    Runs still running are never deleted. Totals stay right: the rollups of the deleted runs
    are recomputed in the same transaction.

    \b
    Examples:
      vpo-stats purge --before 1y --dry-run
      vpo-stats purge --policy old-test --yes
      vpo-stats purge --status failed --until 2026-01-31
      vpo-stats purge --all
    """
    from ..filters import utcnow
    from ..purging import SetChanged, Token

    now = utcnow()
    chosen = _purge_filters(before, everything, filters, now)
    what = (
        "every finished run"
        if everything
        else ", ".join(f"{k} {clean(v)}" for k, v in chosen.as_json().items() if v)
    )
    with ctx.open_store() as store:
        counted = store.purge(chosen, all=everything, dry_run=True, at=now)
        matched = counted["matched"]
        if dry_run or matched == 0:
            if fmt == "json":
                write_raw(json.dumps(counted) + "\n")
            elif dry_run:
                click.echo(f"{_match(matched)} ({what}); --dry-run: nothing deleted.")
            else:
                click.echo(f"No runs match ({what}): nothing deleted.")
            return
        if fmt != "json":
            click.echo(f"{_match(matched)} ({what}).")
        if not yes:
            if not sys.stdin.isatty():
                raise StatsError(
                    f"{_match(matched)}; refusing to delete without a terminal to confirm "
                    "on. Pass --yes to delete them, or --dry-run to count only."
                )
            click.confirm(
                f"Delete {'it' if matched == 1 else f'these {matched} runs'} for good?",
                abort=True,
                err=True,
            )
        if matched >= LARGE_PURGE:  # minutes of silence otherwise (1M runs: ~2.5 min here)
            click.echo(
                f"Deleting {plural(matched, 'run')} in one transaction: a purge this large "
                "takes minutes; stopped before the end, it deletes nothing ...",
                err=True,
            )
        try:
            done = store.purge(
                chosen, all=everything, dry_run=False, expect=Token.parse(counted["token"])
            )
        except SetChanged:
            now_matching = store.purge(chosen, all=everything, dry_run=True, at=now)["matched"]
            raise StatsError(
                f"nothing deleted: the runs matching changed after they were counted "
                f"({matched} then, {now_matching} now; runs were recorded, finished or "
                "deleted meanwhile). Run the purge again to see what it would delete."
            ) from None
    if fmt == "json":
        write_raw(json.dumps(done) + "\n")
    else:
        click.echo(f"Deleted {plural(done['deleted'], 'run')}.")


def render_rebuild(body: dict[str, Any]) -> str:
    """What a rebuild (or a check) found, in one line."""
    runs, took = plural(body["runs"], "run"), f"{body['seconds']:.1f} s"
    differing = body["differing_rows"]
    where = ", ".join(f"{t} {n}" for t, n in body["differing_by_table"].items())
    if body["checked_only"]:
        if not differing:
            return f"The rollups match the {runs} (checked in {took}; nothing changed)."
        return (
            f"{plural(differing, 'rollup row')} {'differs' if differing == 1 else 'differ'} "
            f"from the {runs} ({where}); nothing was "
            "changed: `vpo-stats rebuild` recomputes them."
        )
    if not differing:
        return f"Rebuilt the rollups from {runs} in {took}: they already matched."
    return f"Rebuilt the rollups from {runs} in {took}: {plural(differing, 'row')} corrected ({where})."


@click.command()
@click.option(
    "--check",
    is_flag=True,
    help="Recompute and compare only; change nothing (exit 1 if they differ).",
)
@format_option(("table", "json"), "table for people; json for scripts.")
@pass_context
@handle_errors
def rebuild(ctx: Any, check: bool, fmt: str) -> None:
    """Recompute the aggregates (the rollups) from the stored runs, and say what differed.

    summary, policies, policy, trend and the dashboard read rollup tables that every write keeps
    up to date; this recomputes them from the runs themselves, in one transaction (about 12 s a
    million runs here). Hosts go on recording meanwhile: their writes wait for it, queued.
    With --check the result is compared and thrown away: a way to verify the numbers.

    \b
    Examples:
      vpo-stats rebuild --check
      vpo-stats rebuild
    """
    if fmt == "table":
        click.echo("Recomputing the rollups from the runs ...", err=True)
    # --check compares only: a read-only database will do, and nothing is upgraded
    with ctx.open_store(readonly=check) as store:
        body = store.rebuild_rollups(check=check)
    emit(body, fmt, lambda b: as_typed_here(render_rebuild(b)))
    if check and body["differing_rows"]:
        sys.exit(1)


COMMANDS = (status, path, backup, purge, rebuild)
