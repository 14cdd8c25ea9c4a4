"""The `stats` command group: `vpo stats ...` in a host, `vpo-stats ...` standalone.

Only click and the standard library are imported here: a host imports this group on every run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import BadParameter, InputMissing, StatsError
from ..filters import STATUSES, WHEN_HELP

if TYPE_CHECKING:
    from ..config import Resolved
    from ..dburl import DatabaseURL
    from ..filters import Filters
    from ..store import Store


class CliError(click.ClickException):
    """A StatsError on its way out: message on stderr, the error's exit code."""

    def __init__(self, err: StatsError) -> None:
        super().__init__(as_typed_here(str(err)))
        self.exit_code = err.exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def as_typed_here(message: str) -> str:
    """Hints in messages name `vpo-stats ...`; inside a host the user types `vpo stats ...`
    (whatever the host's command is called): say that instead."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None and ctx.command.name != "stats":
        ctx = ctx.parent
    if ctx is None or ctx.parent is None:  # standalone: the group is the program
        return message
    return message.replace("`vpo-stats ", f"`{ctx.command_path} ")


class StatsContext:
    """What the group hands its commands: the database path and, on demand, settings."""

    def __init__(self, db: str | None) -> None:
        self.db_option = db
        self._settings: Resolved | None = None

    @property
    def overrides(self) -> dict[str, tuple[str, str]]:
        """What the group's options set over the config: `--db`."""
        if self.db_option is None:
            return {}
        return {"database": (str(self.db_option), "option --db")}

    @property
    def settings(self) -> Resolved:
        """The config as reading needs it (database, node, stale_after), read once, no pydantic.

        Raises ConfigError when one of those is unusable; other config problems only stop
        recording, and are shown once as a warning on stderr (docs/configuration.md).
        """
        if self._settings is None:
            from ..config import for_reading

            self._settings = for_reading(self.overrides, lambda m: click.echo(m, err=True))
        return self._settings

    @property
    def sources(self) -> dict[str, str]:
        return self.settings.sources

    @property
    def database(self) -> Path | DatabaseURL:
        return self.settings.database

    def open_store(self, *, create: bool = False, readonly: bool = False) -> Store:
        """Open the database the settings name. Only commands that write runs (the imports)
        pass ``create``: a reading command never creates one (exit 66 where there is none).
        ``readonly`` opens it without upgrading or writing a byte (``rebuild --check``)."""
        from ..store import open_readonly, open_store
        from ..store.connection import NoDatabase

        settings = self.settings
        try:
            if readonly:
                return open_readonly(
                    settings.database, node=settings.node, stale_after=settings.stale_after
                )
            return open_store(
                settings.database,
                create=create,
                node=settings.node,
                stale_after=settings.stale_after,
            )
        except NoDatabase as err:
            raise InputMissing(self._no_database(err)) from None

    def _no_database(self, err: Any) -> str:
        """Why there is nothing to read, and how runs get there."""
        source = self.sources.get("database", "default")
        if source == "default":
            return (
                f"nothing has been recorded yet: {err.why}. Runs are recorded there when VPO "
                "(or another host) processes files with this plugin installed; or bring in "
                "VPO's own history with `vpo-stats import-vpo`."
            )
        return (
            f"{err.why} (the path comes from {source}): check it for a typo. Runs get there "
            "when a host with this plugin records into it, or with `vpo-stats import FILE` "
            "or `vpo-stats import-vpo`. Nothing was created."
        )


pass_context = click.make_pass_decorator(StatsContext)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn StatsError into a clean message and its exit code; never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BadParameter as err:
            raise usage_error(err) from None
        except StatsError as err:
            raise CliError(err) from None

    return wrapper


def usage_error(err: BadParameter) -> click.UsageError:
    """A BadParameter as click's own usage error (exit 2), naming the option as typed."""
    ctx = click.get_current_context(silent=True)
    detail = str(err)
    prefix = f"invalid value for {err.param}: "
    if detail.startswith(prefix):
        detail = detail[len(prefix) :]
    name = err.param.lstrip("-").replace("-", "_").lower()
    param = None
    if ctx is not None:
        param = next((p for p in ctx.command.params if p.name == name), None)
    if param is not None:
        return click.BadParameter(detail, ctx=ctx, param=param)
    if err.param.startswith("-") or err.param.isupper():
        return click.BadParameter(detail, ctx=ctx, param_hint=f"'{err.param}'")
    return click.UsageError(str(err), ctx=ctx)


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--since, --until, --policy, --node, --status."""
    for option in reversed(
        [
            click.option(
                "--since", metavar="WHEN", help=f"Runs started at or after WHEN: {WHEN_HELP}."
            ),
            click.option(
                "--until",
                metavar="WHEN",
                help="Runs started at or before WHEN (a bare date includes that day).",
            ),
            click.option("--policy", metavar="NAME", help="Only runs of this policy."),
            click.option("--node", metavar="NAME", help="Only runs recorded on this node."),
            click.option(
                "--status", type=click.Choice(STATUSES), help="Only runs with this status."
            ),
        ]
    ):
        fn = option(fn)
    return fn


def format_option(
    choices: tuple[str, ...], help: str, default: str = "table"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--format, one of ``choices``, handed to the command as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help=help,
    )


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--format table|json|csv."""
    return format_option(
        ("table", "json", "csv"), "table for people; json (the API's body) and csv for scripts."
    )(fn)


def make_filters(**values: Any) -> Filters:
    """Filters from the filter options (raises BadParameter)."""
    from ..filters import Filters

    return Filters.parse(
        **{k: values.get(k) for k in ("since", "until", "policy", "node", "status")}
    )


@click.group(name="stats")
@click.option(
    "--db",
    # text, not a Path: a postgresql:// URL must keep its `//`
    type=click.Path(dir_okay=False),
    metavar="FILE|URL",
    help="The stats database: a SQLite file or a postgresql:// URL. Default: "
    "VPO_STATS_DATABASE, else the `database` config key (~/.vpo/stats.db).",
)
@click.version_option(package_name="vpo-stats-plugin", prog_name="vpo-stats")
@click.pass_context
def stats(ctx: click.Context, db: str | None) -> None:
    """Statistics of the files VPO processed: space saved, tracks removed, failures, timing.

    \b
    Examples:
      vpo-stats summary --since 7d
      vpo-stats recent --status failed
      vpo-stats policies --sort saved
      vpo-stats detail 3f2a9c1b
    """
    ctx.obj = StatsContext(db)


def _register() -> None:
    from . import exchange, manage, read, settings

    for module in (read, manage, exchange, settings):
        for command in module.COMMANDS:
            stats.add_command(command)
    try:
        from .vpo import import_vpo

        stats.add_command(import_vpo)
    except ImportError:  # pragma: no cover - while the importer is being written
        pass


_register()


class LazyCommand(click.Command):
    """A command whose module is imported only when it runs or shows its help."""

    def __init__(self, name: str, module: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help)
        self._module = module

    def _real(self) -> click.Command:
        module = __import__(f"vpo_stats_plugin.cli.{self._module}", fromlist=[self.name or ""])
        return getattr(module, self.name or "")

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        return self._real().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        return self._real().invoke(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self._real().get_params(ctx)


def standalone_group() -> click.Group:
    """`vpo-stats`: the host's group plus the commands only a standalone tool has."""
    group = click.Group(
        name="stats",
        commands=dict(stats.commands),
        callback=stats.callback,
        params=list(stats.params),
        help=stats.help,
    )
    group.add_command(LazyCommand("serve", "serve", "Serve the dashboard and the JSON API."))
    group.add_command(
        LazyCommand("demo", "demo", "Process sample media and show what was recorded.")
    )
    return group


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `vpo-stats` script."""
    return standalone_group().main(args=argv, prog_name="vpo-stats")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
