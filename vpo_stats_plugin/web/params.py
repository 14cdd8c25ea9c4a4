"""Reading and validating request parameters: query strings and the purge body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from multidict import MultiMapping

from ..errors import BadParameter
from ..filters import STATUSES, WHEN_HELP, Filters, iso, parse_when, utcnow
from ..purging import PURGE_FILTERS, Token, check_combination
from ..store.names import name_of

FILTER_PARAMS = ("since", "until", "policy", "node", "status")
BY_CHOICES = ("day", "week", "month")
SORT_CHOICES = ("runs", "saved", "name")
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 1000, 20
PURGE_KEYS = (*PURGE_FILTERS, "all", "dry_run", "token")
_DIGITS = re.compile(r"[0-9]{1,7}")

# WHEN as the API takes it, exactly (the OpenAPI document gives the same pattern): an age of at
# most three digits (with a fraction), a real calendar date, or a datetime to the minute,
# second, millisecond or microsecond with Z or an offset. ASCII digits only, no space around.
_YEAR = "[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000"
_LEAP_YEAR = "[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00"
_MONTH_DAY = (
    "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8])"
)
_DATE = f"(?:(?:{_YEAR})-(?:{_MONTH_DAY})|(?:{_LEAP_YEAR})-02-29)"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{3}|\.[0-9]{6})?)?"
_ZONE = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
_AGE = r"[0-9]{1,3}(?:\.[0-9]{1,6})?(?:[mM][oO]|[sSmMhHdDwWyY])"
WHEN_CORE = f"{_AGE}|{_DATE}|{_DATE}[Tt ]{_TIME}{_ZONE}"
WHEN_PATTERN = f"^(?:{WHEN_CORE})?$"
"""A WHEN of the API, or empty (not given), as a JSON Schema pattern."""
_WHEN = re.compile(f"(?:{WHEN_CORE})")

# a run id or prefix: 8 or more characters, none of them white space (Python's and the
# document's alike, so the store's strip() never shortens it below the 8 it needs)
_SPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
RUN_ID_PATTERN = f"^[^{_SPACE}]{{8,}}$"
_RUN_ID = re.compile(f"[^{_SPACE}]{{8,}}")


def single(query: MultiMapping[str], name: str) -> str | None:
    """The one value of query parameter ``name``, or None; given twice is a 400."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, "given more than once; give it once")
    return values[0] if values else None


def _when(name: str, raw: str | None, now: datetime, *, end_of_day: bool = False) -> str | None:
    """A WHEN value of the API as the stored form of its moment; None when not given."""
    if raw is None or raw == "":
        return None
    if not _WHEN.fullmatch(raw):
        raise BadParameter(
            name,
            f"{raw!r} is not a date, datetime or age: use {WHEN_HELP} "
            "(no spaces around it; the OpenAPI document has the exact pattern)",
        )
    try:
        return iso(parse_when(raw, end_of_day=end_of_day, now=now))
    except ValueError:
        if raw[:4] not in ("0001", "9999"):
            raise BadParameter(name, f"{raw!r} is out of range") from None
    # an offset that takes year 1 or 9999 past its end in UTC: no run lies beyond either end
    return iso(datetime.min if raw.startswith("0001") else datetime.max)


def parse_filters(values: Mapping[str, str | None], now: datetime | None = None) -> Filters:
    """The filters of a query or a purge body; ``since`` after ``until`` selects no run."""
    now = now or utcnow()
    # a policy or node as the answers show it, back as the name the store looks up
    policy, node = (name_of(v) if v else v for v in (values.get("policy"), values.get("node")))
    chosen = Filters.parse(policy=policy, node=node, status=values.get("status"))
    return replace(
        chosen,
        since=_when("since", values.get("since"), now),
        until=_when("until", values.get("until"), now, end_of_day=True),
    )


def filters_from_query(query: MultiMapping[str]) -> Filters:
    """The run filters named in a query string (an empty value counts as not given)."""
    return parse_filters({name: single(query, name) or None for name in FILTER_PARAMS})


def limit_from_query(query: MultiMapping[str], default: int = LIMIT_DEFAULT) -> int:
    """``limit``: a whole number from 1 to 1000."""
    raw = single(query, "limit")
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not LIMIT_MIN <= int(raw) <= LIMIT_MAX:
        raise BadParameter(
            "limit", f"{raw!r} is not a whole number from {LIMIT_MIN} to {LIMIT_MAX}"
        )
    return int(raw)


def choice_from_query(
    query: MultiMapping[str], name: str, choices: tuple[str, ...], default: str
) -> str:
    """A parameter that takes one of ``choices``."""
    raw = single(query, name)
    if raw is None:
        return default
    if raw not in choices:
        raise BadParameter(name, f"{raw!r} is not one of {', '.join(choices)}")
    return raw


def required_from_query(query: MultiMapping[str], name: str) -> str:
    """A parameter that must be given and not be empty."""
    raw = single(query, name)
    if raw is None or raw == "":
        raise BadParameter(name, f"{name} is required")
    return raw


def run_id(raw: str) -> str:
    """A run id or unique prefix from the path: 8 or more characters without white space."""
    if not _RUN_ID.fullmatch(raw):
        raise BadParameter(
            "id", f"{raw!r} is not a run id: give the whole id or 8 or more of its characters"
        )
    return raw


@dataclass(frozen=True)
class PurgeRequest:
    """What ``POST /api/purge`` asks for; ``at`` is when its relative times were resolved."""

    filters: Filters
    all: bool
    dry_run: bool
    at: datetime
    token: Token | None


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (an empty body is an empty object)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadParameter("body", "is nested too deeply: send a flat JSON object") from None
    except (ValueError, UnicodeDecodeError):
        raise BadParameter("body", "is not valid JSON; send a JSON object") from None
    if not isinstance(body, dict):
        raise BadParameter("body", 'must be a JSON object such as {"policy": "x"}')
    return body


def purge_request(raw: bytes) -> PurgeRequest:
    """Validate the purge body: the CLI's purge filters, ``all``, ``dry_run`` and ``token``."""
    body = json_object(raw)
    unknown = sorted(set(body) - set(PURGE_KEYS))
    if unknown:
        raise BadParameter(unknown[0], f"unknown field; the fields are {', '.join(PURGE_KEYS)}")
    texts: dict[str, str | None] = {}
    for name in PURGE_FILTERS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadParameter(name, "must be a string or null")
        texts[name] = value or None
    if texts["status"] is not None and texts["status"] not in STATUSES:
        raise BadParameter("status", f"{texts['status']!r} is not one of {', '.join(STATUSES)}")
    flags = {}
    for name, default in (("all", False), ("dry_run", True)):
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise BadParameter(name, "must be true or false")
        flags[name] = value
    token = None if body.get("token") is None else Token.parse(body["token"])
    at = token.at if token else utcnow()
    given = [name for name in PURGE_FILTERS if texts[name]]
    check_combination(given, flags["all"])
    if not given and not flags["all"]:
        raise BadParameter(
            "all",
            "no filter given: name before, since, until, policy, node or status, "
            'or send "all": true to purge every run',
        )
    before = _when("before", texts.pop("before"), at)
    if before is not None:
        moment = datetime.fromisoformat(before.replace("Z", "+00:00"))
        first = moment.replace(tzinfo=None) == datetime.min  # nothing lies before it
        texts["until"] = before if first else iso(moment - timedelta(microseconds=1))
    filters = parse_filters(texts, now=at)
    return PurgeRequest(filters, flags["all"], flags["dry_run"], at, token)
