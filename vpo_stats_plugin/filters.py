"""Run filters and the WHEN / DURATION parsers shared by the CLI and the API (stdlib only)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .errors import BadParameter

STATUSES = ("running", "succeeded", "failed", "interrupted")

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|mo|y)\s*$", re.IGNORECASE)
_SECONDS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,
    "y": 365 * 86400,
}
WHEN_HELP = "an ISO-8601 date or datetime (UTC unless it has an offset) or an age such as 12h, 7d, 2w, 3mo, 1y"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """The stored form of a moment: UTC, microseconds, ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    m = moment.astimezone(timezone.utc)
    # by hand: strftime is slower, and does not zero-pad years before 1000 on every platform
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T"
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    )


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``5m``, ``24h``, ``7d``, ``2w``, ``3mo``, ``1y``; a bare number is seconds."""
    raw = str(text).strip()
    try:
        seconds = float(raw)
    except ValueError:
        match = _AGE.match(raw)
        if not match:
            raise ValueError(
                f"{text!r} is not a duration: use a number with s, m, h, d, w, mo or y (e.g. 30s, 24h)"
            ) from None
        seconds = float(match.group(1)) * _SECONDS[match.group(2).lower()]
    if math.isnan(seconds):
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 24h, 7d")
    if seconds < 0:
        raise ValueError(f"{text!r} is negative: a duration must be zero or more")
    if seconds > 9000 * 365 * 86400:
        raise ValueError(f"{text!r} is too long: keep it under 9000 years")
    return timedelta(seconds=seconds)


def parse_when(text: str, *, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """Parse WHEN: a relative age (before now) or an ISO-8601 date/datetime, as aware UTC.

    With ``end_of_day`` a bare date means the last microsecond of that day (so ``--until`` with a
    date includes the whole day).
    """
    raw = str(text).strip()
    if _AGE.match(raw):
        try:
            return (now or utcnow()) - parse_duration(raw)
        except OverflowError:
            raise ValueError(f"{text!r} reaches before the year 1") from None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date, datetime or age: use {WHEN_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range: use a year from 1 to 9999") from None


@dataclass(frozen=True)
class Filters:
    """Which runs a question is about; times are stored-form strings, bounds inclusive."""

    since: str | None = None
    until: str | None = None
    policy: str | None = None
    node: str | None = None
    status: str | None = None

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        policy: str | None = None,
        node: str | None = None,
        status: str | None = None,
        now: datetime | None = None,
    ) -> Filters:
        """Validate user input; raises ``BadParameter`` naming the parameter."""
        now = now or utcnow()
        # an empty name is no filter, as an empty time is (and as rollups cannot tell '' from none)
        values: dict[str, str | None] = {"policy": policy or None, "node": node or None}
        for name, raw, end in (("since", since, False), ("until", until, True)):
            if raw is None or str(raw).strip() == "":
                values[name] = None
                continue
            try:
                values[name] = iso(parse_when(raw, end_of_day=end, now=now))
            except ValueError as err:
                raise BadParameter(name, str(err)) from None
        if status is not None and status != "":
            if status not in STATUSES:
                raise BadParameter("status", f"{status!r} is not one of {', '.join(STATUSES)}")
            values["status"] = status
        else:
            values["status"] = None
        if values["since"] and values["until"] and values["since"] > values["until"]:
            raise BadParameter("until", f"until ({until}) is before since ({since})")
        return cls(**values)

    def as_json(self) -> dict[str, str | None]:
        """The ``filters`` field of every answer."""
        return {
            "since": self.since,
            "until": self.until,
            "policy": self.policy,
            "node": self.node,
            "status": self.status,
        }

    @property
    def empty(self) -> bool:
        """True when no filter is set."""
        return not any(self.as_json().values())
