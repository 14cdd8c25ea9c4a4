"""Commands about the database itself: status, path, backup, purge, config."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from ..errors import BadParameter, StatsError
from ..filters import STATUSES, WHEN_HELP
from . import handle_errors, make_filters, output_options, pass_context
from .output import emit, human_bytes, human_time, pairs, table


def render_status(body: dict[str, Any]) -> str:
    """The status block."""
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(body["runs_by_status"].items())) or "none"
    items = [
        ("database", body["path"]),
        (
            "schema",
            f"version {body['schema_version']} ({body['migrations'][-1] if body['migrations'] else '-'})",
        ),
        ("size", human_bytes(body["size_bytes"])),
        ("runs", f"{body['runs']} ({by_status})"),
        ("first run", human_time(body["first_run_at"])),
        ("last run", human_time(body["last_run_at"])),
        ("recording errors", body["recording_errors"]),
    ]
    text = pairs(items)
    if body["recording_error_causes"]:
        text += "\n\n" + table(
            ["cause", "count", "last", "last message"],
            [
                [e["cause"], e["count"], human_time(e["last_at"]), e["last_message"] or ""]
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
    """Print the database path only (for scripts: `sqlite3 "$(vpo-stats path)"`)."""
    click.echo(str(ctx.database))


@click.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
@pass_context
@handle_errors
def backup(ctx: Any, dest: Path, force: bool) -> None:
    """Write a consistent copy of the live database to DEST (safe while hosts record).

    \b
    Examples:
      vpo-stats backup ~/backups/stats-2026-11-25.db
    """
    dest = dest.expanduser()
    if dest.exists() and not force:
        raise BadParameter(
            "DEST", f"{dest} exists: pass --force to overwrite it, or pick another name"
        )
    if not dest.parent.is_dir():
        raise BadParameter("DEST", f"the directory {dest.parent} does not exist")
    with ctx.open_store() as store:
        if dest.resolve() == store.path.resolve():
            raise BadParameter("DEST", "DEST is the live database itself")
        tmp = dest.with_name(dest.name + ".partial")
        tmp.unlink(missing_ok=True)
        try:
            store.backup(tmp)
            tmp.replace(dest)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise StatsError(f"cannot write {dest}: {err.strerror or err}") from None
        runs = store.status()["runs"]
    click.echo(f"Backed up {runs} runs to {dest} ({human_bytes(dest.stat().st_size)}).")


@click.command()
@click.option("--before", metavar="WHEN", help=f"Runs started before WHEN: {WHEN_HELP}.")
@click.option("--since", metavar="WHEN", help="Runs started at or after WHEN.")
@click.option("--until", metavar="WHEN", help="Runs started at or before WHEN.")
@click.option("--policy", metavar="NAME", help="Runs of this policy.")
@click.option("--node", metavar="NAME", help="Runs recorded on this node.")
@click.option("--status", type=click.Choice(STATUSES), help="Runs with this status.")
@click.option("--all", "everything", is_flag=True, help="Every run.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_context
@handle_errors
def purge(
    ctx: Any,
    before: str | None,
    everything: bool,
    dry_run: bool,
    yes: bool,
    **filters: Any,
) -> None:
    """Delete runs (with their actions and phases) for good. Runs still running are kept.

    Counts first; asks before deleting unless --yes; with no terminal and no --yes it refuses.

    \b
    Examples:
      vpo-stats purge --before 1y --dry-run
      vpo-stats purge --policy old-test --yes
      vpo-stats purge --all
    """
    if before is not None:
        if filters.get("until"):
            raise BadParameter("--before", "give --before or --until, not both")
        from ..filters import iso, parse_when

        try:
            filters["until"] = iso(parse_when(before) - timedelta(microseconds=1))
        except ValueError as err:
            raise BadParameter("--before", str(err)) from None
    chosen = make_filters(**filters)
    if everything and not chosen.empty:
        raise BadParameter("--all", "--all deletes every run: give it alone, without filters")
    with ctx.open_store() as store:
        matched = store.purge(chosen, all=everything, dry_run=True)["matched"]
        what = (
            "every run"
            if everything
            else "runs matching " + ", ".join(f"{k}={v}" for k, v in chosen.as_json().items() if v)
        )
        if dry_run or matched == 0:
            click.echo(
                f"{matched} runs would be deleted ({what})." if dry_run else "No runs match."
            )
            return
        if not yes:
            if not sys.stdin.isatty():
                raise StatsError(
                    f"{matched} runs match; refusing to delete without a terminal to confirm. "
                    "Pass --yes to delete, or --dry-run to count only."
                )
            click.confirm(f"Delete {matched} runs ({what}) for good?", abort=True)
        deleted = store.purge(chosen, all=everything, dry_run=False)["deleted"]
    click.echo(f"Deleted {deleted} runs.")


COMMANDS = (status, path, backup, purge)
