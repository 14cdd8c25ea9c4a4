"""The plugin's config keys: each one's default, rule and accepted values, and `Settings`.

The rules are plain functions (standard library only) shared by `config.resolve()` and by the
pydantic model `Settings`, which is built on first use so that reading the config does not
import pydantic.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import dburl
from .dburl import DatabaseURL
from .filters import parse_duration

MAX_STALE_AFTER_S = 100 * 365 * 86400.0

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
HASH_MODES = ("off", "partial", "full")


def to_bool(value: Any) -> bool:
    """TOML true/false; in text (environment) also 1/0, yes/no, on/off, any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise ValueError(value)


def to_hash(value: Any) -> str:
    """One of off, partial, full (any case)."""
    if isinstance(value, str) and value.strip().lower() in HASH_MODES:
        return value.strip().lower()
    raise ValueError(value)


def to_path(value: Any) -> Path:
    """A non-empty path; `~` is expanded."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
        try:
            return Path(value).expanduser()
        except RuntimeError:  # no home directory to expand `~` into
            raise ValueError(value) from None
    raise ValueError(value)


def to_database(value: Any) -> Path | DatabaseURL:
    """A file path (as `to_path`), or a `postgresql://` URL, which is never taken for a file."""
    if isinstance(value, DatabaseURL):
        return value
    if not dburl.is_url(value):
        return to_path(value)
    try:
        url = dburl.parse(value)
        if not dburl.extra_installed():
            raise Refused(
                "a PostgreSQL URL needs the plugin's postgresql extra: install it with "
                f"{dburl.INSTALL} (or give a file path)"
            )
        dburl.validate(url)
    except dburl.BadURL as err:
        raise Refused(f"this URL cannot be used: {err}") from None
    return url


def to_node(value: Any) -> str:
    """A non-empty name, surrounding spaces dropped."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(value)


def to_seconds(value: Any) -> float:
    """A duration (`30m`, `24h`, `7d`, ...; a bare number is seconds) above zero, at most 100y."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    try:
        seconds = parse_duration(str(value)).total_seconds()
    except (ValueError, OverflowError):
        raise ValueError(value) from None
    if not 0 < seconds <= MAX_STALE_AFTER_S:
        raise ValueError(value)
    return seconds


class Refused(ValueError):
    """A value a rule refuses for a reason of its own, which the message gives."""


def why(spec: Key, err: ValueError) -> str:
    """What to say about a value the rule of ``spec`` refused: the reason, else what it takes."""
    if isinstance(err, Refused):
        return str(err)
    return f"accepted values: {spec.accepted}"


def check(name: str, value: Any) -> Any:
    """`value` for key `name` by its rule; ValueError names the accepted values."""
    spec = SPEC[name]
    try:
        return spec.rule(value)
    except ValueError as err:
        raise ValueError(f"{spec.show(value)!r} is not accepted: {why(spec, err)}") from None


def _hostname() -> str:
    import socket

    return socket.gethostname() or "localhost"


@dataclass(frozen=True)
class Key:
    """One config key: its default (given as a user would write it), rule and accepted values."""

    name: str
    default: Callable[[], Any]
    rule: Callable[[Any], Any]
    accepted: str
    shown_default: str
    show: Callable[[Any], Any] = lambda value: value  # a given value as messages may show it


BOOLEAN = "true or false (also 1/0, yes/no, on/off)"
KEYS_SPEC = (
    Key("enabled", lambda: True, to_bool, BOOLEAN, "true"),
    Key("database", lambda: "~/.vpo/stats.db", to_database,
        "a file path, such as ~/.vpo/stats.db, or a PostgreSQL URL, such as "
        "postgresql://vpo@db.example.lan/vpo_stats", "~/.vpo/stats.db", dburl.mask),
    Key("record_actions", lambda: True, to_bool, BOOLEAN, "true"),
    Key("record_performance", lambda: True, to_bool, BOOLEAN, "true"),
    Key("hash", lambda: "partial", to_hash, "off, partial or full", "partial"),
    Key("probe_tracks", lambda: True, to_bool, BOOLEAN, "true"),
    Key("node", _hostname, to_node, "a non-empty name, such as worker-1",
        "this machine's hostname"),
    Key("stale_after", lambda: "24h", to_seconds,
        "a duration above zero, at most 100y, such as 30m, 24h or 7d (a bare number is seconds)",
        "24h"),
)  # fmt: skip
SPEC = {key.name: key for key in KEYS_SPEC}
KEYS = tuple(SPEC)
READING_KEYS = ("database", "node", "stale_after")  # what reading (CLI, web) needs


# --- the pydantic model, built on first use -----------------------------------------------------

_SETTINGS: Any = None


def settings_class() -> Any:
    """`Settings`: the model the recorder gets; its fields apply the rules above."""
    global _SETTINGS
    if _SETTINGS is not None:
        return _SETTINGS
    from typing import Annotated, Literal

    # a plain model, not pydantic-settings: config.gather() already assembles file, environment
    # and overrides knowing where each came from; pydantic-settings' import only added ~20 ms
    # to the first hook
    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

    def rule(name: str) -> Any:
        return BeforeValidator(lambda value: check(name, value))

    def default(name: str) -> Any:
        return Field(default_factory=SPEC[name].default)

    class Settings(BaseModel):
        """The effective plugin settings (section 6 of the contract)."""

        # a value as given would show a URL's password in pydantic's message: rules name it
        model_config = ConfigDict(
            extra="forbid",
            validate_default=True,
            hide_input_in_errors=True,
            arbitrary_types_allowed=True,
        )

        enabled: Annotated[bool, rule("enabled")] = default("enabled")
        database: Annotated[Path | DatabaseURL, rule("database")] = default("database")
        record_actions: Annotated[bool, rule("record_actions")] = default("record_actions")
        record_performance: Annotated[bool, rule("record_performance")] = default(
            "record_performance"
        )
        hash: Annotated[Literal["off", "partial", "full"], rule("hash")] = default("hash")
        probe_tracks: Annotated[bool, rule("probe_tracks")] = default("probe_tracks")
        node: Annotated[str, rule("node")] = default("node")
        stale_after: Annotated[float, rule("stale_after")] = default("stale_after")

    Settings.__module__ = "vpo_stats_plugin.config"  # where users and pickle find it
    Settings.__qualname__ = "Settings"
    _SETTINGS = Settings
    return Settings
