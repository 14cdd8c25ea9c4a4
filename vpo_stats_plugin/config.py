"""Plugin config: `[plugins.stats]` of a TOML file (or the host's own section), then `VPO_STATS_*`.

`resolve()` reads the config with the standard library only and never raises: it answers every
key's effective value, where it came from, and the problems found. The CLI's reading commands
use it as it is (no pydantic import on their start-up); the hooks turn it into `Settings`, the
pydantic model the recorder gets, built on first use and applying the same rules.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_keys import KEYS, KEYS_SPEC, READING_KEYS, SPEC, settings_class, why
from .dburl import DatabaseURL
from .errors import StatsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "VPO_STATS_"
CONFIG_ENV = "VPO_STATS_CONFIG"  # names the config file; wins over everything else
VPO_CONFIG_ENV = "VPO_CONFIG_PATH"  # VPO's own: where its config.toml is
DEFAULT_CONFIG = "~/.vpo/config.toml"
SECTION = ("plugins", "stats")


class ConfigError(StatsError):
    """A config file or value the plugin cannot use."""


# --- where the config comes from --------------------------------------------------------------

_host: tuple[Any, Any] | None = None  # (section, path) a host handed over with configure()


def configure(section: Mapping[str, Any] | None = None, path: Any = None) -> None:
    """Hand the plugin the host's config: its parsed `[plugins.stats]` table and/or its file.

    Call it before processing starts. With `section`, values come from that mapping (`path`
    then only names it in messages); with `path` alone, `[plugins.stats]` is read from that TOML
    file. `configure()` with neither forgets them. `VPO_STATS_CONFIG` still wins, and
    `VPO_STATS_<KEY>` variables still override single keys. Never raises: what is wrong is
    reported at the first hook call, once.
    """
    global _host
    _host = None if section is None and path is None else (section, path)
    from . import hooks

    hooks.reset()


def _file_choice() -> tuple[Path, str]:
    for name in (CONFIG_ENV, VPO_CONFIG_ENV):
        if os.environ.get(name):
            return _expand(os.environ[name]), name
    return _expand(DEFAULT_CONFIG), "default"


def _expand(path: Any) -> Path:
    try:
        return Path(path).expanduser()
    except RuntimeError:  # no home directory: keep it as written
        return Path(path)


def read_section(path: Path) -> dict[str, Any]:
    """The `[plugins.stats]` table of a TOML file; {} when the file or table is absent."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the config file {path} ({err})") from None
    table: Any = data
    for part in SECTION:
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"[plugins.stats] in {path} must be a table, not {type(table).__name__}")
    return table


@dataclass
class ConfigFile:
    """Where the file-level values came from."""

    path: Path | None  # None: a section the host gave without naming its file
    named_by: str  # VPO_STATS_CONFIG, host, VPO_CONFIG_PATH, default, or an argument
    exists: bool = False
    readable: bool = True

    @property
    def origin(self) -> str:
        return f"file {self.path}" if self.path is not None else "host section"

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path is not None else None,
            "named_by": self.named_by,
            "exists": self.exists,
            "readable": self.readable,
        }


@dataclass
class Problem:
    """One thing wrong with the config; `key` is None for the file as a whole."""

    key: str | None
    text: str


def _where(origin: str) -> str:
    kind, _, rest = origin.partition(" ")
    if kind == "file":
        return f"in {rest}"
    if kind == "host":
        return "in the [plugins.stats] the host gave"
    if kind in ("env", "option"):
        return f"from {rest}"
    return f"from {origin}"


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), KEYS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def gather(
    section: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
) -> tuple[dict[str, Any], dict[str, str], ConfigFile, list[Problem]]:
    """Raw values and their origins: defaults < file (or section) < environment < overrides.

    The file is the first of: the `section`/`config_path` arguments, `VPO_STATS_CONFIG`, what
    the host gave to `configure()`, `VPO_CONFIG_PATH`, `~/.vpo/config.toml`. `overrides` maps a
    key to (value, origin), such as `("x.db", "option --db")`.
    """
    problems: list[Problem] = []
    if section is not None or config_path is not None:
        given, named_by = (section, config_path), "argument"
    elif os.environ.get(CONFIG_ENV):
        given, named_by = (None, os.environ[CONFIG_ENV]), CONFIG_ENV
    elif _host is not None:
        given, named_by = _host, "host"
    else:
        path, named_by = _file_choice()
        given = (None, path)
    table_given, path_given = given
    info = ConfigFile(None, named_by)
    if path_given is not None:
        try:
            info.path = _expand(path_given)
        except TypeError:
            problems.append(
                Problem(None, f"the config path the host gave is not a path: {path_given!r}")
            )
            info.readable, table_given = False, {} if table_given is None else table_given
    table: Any = {}
    if table_given is not None:
        info.exists = True
        table = table_given
        if not isinstance(table, Mapping):
            info.readable = False
            problems.append(
                Problem(
                    None,
                    f"the [plugins.stats] the host gave is a {type(table).__name__}, not a table",
                )
            )
            table = {}
    elif info.path is not None:
        info.exists = info.path.exists()
        try:
            table = read_section(info.path)
        except ConfigError as err:
            info.readable = False
            problems.append(Problem(None, str(err)))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in table.items():
        values[str(key)] = value
        sources[str(key)] = info.origin
    for key in KEYS:
        env = ENV_PREFIX + key.upper()
        if os.environ.get(env, "") != "":  # set and not empty
            values[key] = os.environ[env]
            sources[key] = f"env {env}"
    for key, (value, origin) in (overrides or {}).items():
        values[key] = value
        sources[key] = origin
    return values, sources, info, problems


# --- the answer ---------------------------------------------------------------------------------


@dataclass
class Resolved:
    """Every key's effective value (None for a key whose value is bad), with origins."""

    values: dict[str, Any]
    given: dict[str, Any]  # as written, for keys not left at their default
    sources: dict[str, str]
    file: ConfigFile
    problems: list[Problem] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def bad_keys(self) -> set[str]:
        return {p.key for p in self.problems if p.key is not None}

    def message(self) -> str:
        """The one message that names each problem, where it is and the accepted values."""
        texts = "; ".join(p.text for p in self.problems)
        return f"bad plugin config: {texts}. Fix it, then check with `vpo-stats config`."

    def settings(self) -> Any:
        """The pydantic model of these values (raises ConfigError if there are problems)."""
        if self.problems:
            raise ConfigError(self.message())
        return settings_class()(**self.values)

    def rows(self) -> list[dict[str, Any]]:
        """Every key: value (as given when it is bad), default, where it came from, its problem."""
        problems = {p.key: p.text for p in self.problems if p.key is not None}
        rows = []
        for key in (*KEYS, *(k for k in self.given if k not in SPEC)):
            spec = SPEC.get(key)
            value = self.given.get(key) if key in problems else self.values.get(key)
            if spec is not None and key in problems:
                value = spec.show(value)
            rows.append(
                {
                    "key": key,
                    "value": str(value) if isinstance(value, (Path, DatabaseURL)) else value,
                    "default": spec.shown_default if spec else None,
                    "source": self.sources.get(key, "default"),
                    "problem": problems.get(key),
                }
            )
        return rows

    def as_json(self) -> dict[str, Any]:
        """The body of `vpo-stats config --format json`."""
        return {
            "file": self.file.as_json(),
            "config": self.rows(),
            "problems": [p.text for p in self.problems],
        }


def resolve(
    overrides: Mapping[str, tuple[Any, str]] | None = None,
    *,
    section: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
) -> Resolved:
    """Read and check the config (standard library only); never raises for a bad config."""
    raw, sources, info, problems = gather(section, config_path, overrides)
    values: dict[str, Any] = {}
    for spec in KEYS_SPEC:
        given = raw.get(spec.name)
        origin = sources.get(spec.name, "default")
        try:
            value = spec.rule(spec.default() if spec.name not in raw else given)
        except ValueError as err:
            shown = (
                f"{spec.show(given)!r} {_where(origin)}" if spec.name in raw else "(the default)"
            )
            problems.append(Problem(spec.name, f"{spec.name} = {shown}: {why(spec, err)}"))
            values[spec.name] = None
            continue
        if (
            isinstance(value, Path)
            and not value.is_absolute()
            and origin == info.origin
            and info.path is not None
        ):
            value = info.path.parent / value  # a relative path in a file: beside that file
        values[spec.name] = value
    for key in raw:
        if key not in SPEC:
            where = _where(sources[key])
            problems.append(
                Problem(
                    key,
                    f"unknown key {key!r} {where}{_suggest(key)}; known keys: {', '.join(KEYS)}",
                )
            )
    return Resolved(values, raw, sources, info, problems)


def for_reading(
    overrides: Mapping[str, tuple[Any, str]] | None = None,
    warn: Callable[[str], Any] | None = None,
) -> Resolved:
    """What the CLI's reading commands and the web app use: `database`, `node`, `stale_after`.

    Raises ConfigError when one of those is bad, or the file cannot be read and the database is
    not given by `--db` or `VPO_STATS_DATABASE`. Any other problem (another key, an unknown key)
    stops only recording: `warn` gets one line about it and reading goes on.
    """
    resolved = resolve(overrides)
    database_elsewhere = not resolved.sources.get("database", "default").startswith(
        ("default", "file ", "host ")
    )
    fatal = [
        p
        for p in resolved.problems
        if p.key in READING_KEYS or (p.key is None and not database_elsewhere)
    ]
    if fatal:
        raise ConfigError(resolved.message())
    if resolved.problems and warn is not None:
        warn(f"warning: recording is off: {resolved.message()}")
    return resolved


def load_settings(
    section: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
) -> Any:
    """The full `Settings`; raises ConfigError naming the file, each bad key and its accepted values."""
    return resolve(overrides, section=section, config_path=config_path).settings()


def __getattr__(name: str) -> Any:
    if name == "Settings":
        return settings_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
