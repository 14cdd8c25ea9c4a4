"""Reading and validating request parameters: query strings and the purge body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiMapping

from ..errors import BadParameter
from ..filters import STATUSES, Filters
from ..store.names import name_of

FILTER_PARAMS = ("since", "until", "policy", "node", "status")
BY_CHOICES = ("day", "week", "month")
SORT_CHOICES = ("runs", "saved", "name")
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 1000, 20
PURGE_KEYS = (*FILTER_PARAMS, "all", "dry_run")
_DIGITS = re.compile(r"[0-9]{1,7}")


def single(query: MultiMapping[str], name: str) -> str | None:
    """The one value of query parameter ``name``, or None; given twice is a 400."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, "given more than once; give it once")
    return values[0] if values else None


def parse_filters(values: Mapping[str, str | None]) -> Filters:
    """``Filters.parse``, with a time out of range (``99999y``) a 400 like any bad value."""
    # a policy or node as the answers show it, back as the name the store looks up
    values = {k: name_of(v) if k in ("policy", "node") and v else v for k, v in values.items()}
    try:
        return Filters.parse(**values)
    except (OverflowError, ValueError):
        # the lead's parser lets these through; find which bound it was
        culprit = "since"
        try:
            Filters.parse(since=values.get("since"))
        except (OverflowError, ValueError):
            pass
        else:
            culprit = "until"
        raise BadParameter(culprit, f"{values.get(culprit)!r} is out of range") from None


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


@dataclass(frozen=True)
class PurgeRequest:
    """What ``POST /api/purge`` asks for."""

    filters: Filters
    all: bool
    dry_run: bool


def purge_request(raw: bytes) -> PurgeRequest:
    """Validate the purge body: a JSON object of the purge filters, ``all`` and ``dry_run``."""
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadParameter("body", "is not valid JSON; send a JSON object") from None
    else:
        body = {}
    if not isinstance(body, Mapping):
        raise BadParameter("body", 'must be a JSON object such as {"policy": "x"}')
    unknown = sorted(set(body) - set(PURGE_KEYS))
    if unknown:
        raise BadParameter(unknown[0], f"unknown field; the fields are {', '.join(PURGE_KEYS)}")
    values: dict[str, Any] = {}
    for name in FILTER_PARAMS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadParameter(name, "must be a string or null")
        values[name] = value or None
    if values["status"] is not None and values["status"] not in STATUSES:
        raise BadParameter("status", f"{values['status']!r} is not one of {', '.join(STATUSES)}")
    flags = {}
    for name, default in (("all", False), ("dry_run", True)):
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise BadParameter(name, "must be true or false")
        flags[name] = value
    filters = parse_filters(values)
    if filters.empty and not flags["all"]:
        raise BadParameter(
            "all",
            "no filter given: name since, until, policy, node or status, "
            'or send "all": true to purge every run',
        )
    return PurgeRequest(filters=filters, all=flags["all"], dry_run=flags["dry_run"])
