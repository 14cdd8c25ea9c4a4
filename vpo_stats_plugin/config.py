"""Plugin config: `[plugins.stats]` of the host's config file, overridden by `VPO_STATS_*`."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .errors import StatsError
from .filters import parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "VPO_STATS_"
SECTION = ("plugins", "stats")


class ConfigError(StatsError):
    """A config file or value the plugin cannot use."""


def default_config_path() -> Path:
    """`VPO_STATS_CONFIG`, else VPO's own `VPO_CONFIG_PATH`, else `~/.vpo/config.toml`."""
    for name in ("VPO_STATS_CONFIG", "VPO_CONFIG_PATH"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    return Path("~/.vpo/config.toml").expanduser()


class Settings(BaseSettings):
    """The effective plugin settings."""

    model_config = ConfigDict(extra="forbid", validate_default=True)  # type: ignore[assignment]

    enabled: bool = True
    database: Path = Field(default_factory=lambda: Path("~/.vpo/stats.db"))
    record_actions: bool = True
    record_performance: bool = True
    hash: Literal["off", "partial", "full"] = "partial"
    probe_tracks: bool = True
    node: str = Field(default_factory=socket.gethostname, min_length=1)
    stale_after: float = 86400.0

    @field_validator("database", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("stale_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return parse_duration(str(value)).total_seconds()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **_: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Sources are assembled by load_settings(), which also records where each value came from.
        return (init_settings,)


KEYS = tuple(Settings.model_fields)


def read_section(path: Path) -> dict[str, Any]:
    """The `[plugins.stats]` table of a TOML file; {} when the file or table is absent."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the config file {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}. Fix the file or unset it.") from None
    table: Any = data
    for part in SECTION:
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [plugins.stats] must be a table")
    return table


def gather(
    section: dict[str, Any] | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Raw values and their sources: defaults < file (or given section) < environment < overrides."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if section is None:
        path = config_path or default_config_path()
        section = read_section(path)
        origin = f"file {path}"
    else:
        origin = "host config"
    for key, value in section.items():
        values[key] = value
        sources[key] = origin
    for key in KEYS:
        env = ENV_PREFIX + key.upper()
        if env in os.environ:
            values[key] = os.environ[env]
            sources[key] = f"env {env}"
    for key, (value, origin) in (overrides or {}).items():
        values[key] = value
        sources[key] = origin
    return values, sources


def _explain(err: ValidationError, sources: dict[str, str]) -> str:
    problems = []
    for item in err.errors():
        key = str(item["loc"][0]) if item["loc"] else "?"
        where = sources.get(key, "default")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r} (from {where}); known keys: {', '.join(KEYS)}")
        else:
            problems.append(f"{key} = {item.get('input')!r} (from {where}): {item['msg']}")
    return "bad plugin config: " + "; ".join(problems)


def load_settings(
    section: dict[str, Any] | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the settings; raises ConfigError naming the file, key and accepted values."""
    values, sources = gather(section, config_path, overrides)
    try:
        return Settings(**values)
    except ValidationError as err:
        raise ConfigError(_explain(err, sources)) from None


def describe(settings: Settings, sources: dict[str, str]) -> list[dict[str, Any]]:
    """Every key with its effective value and where it came from."""
    rows = []
    for key in KEYS:
        value = getattr(settings, key)
        rows.append(
            {
                "key": key,
                "value": str(value) if isinstance(value, Path) else value,
                "source": sources.get(key, "default"),
            }
        )
    return rows
