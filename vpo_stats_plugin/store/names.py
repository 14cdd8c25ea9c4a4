"""Names (paths, policies, nodes, ids) as stored: valid text kept, undecodable bytes escaped,
two different names never stored alike (docs/data-model.md, "Names that are not UTF-8")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# the run fields that name something: readers look them up, rollups group by them
NAME_FIELDS = frozenset({"job_id", "file_id", "path", "output_path", "policy", "node"})

# a literal backslash whose next characters would read as an escape: stored as \x5c
_LOOKALIKE = re.compile(r"\\(?=x(?:5c|[89a-f][0-9a-f])|ud[89a-f][0-9a-f]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(?:x(5c|[89a-f][0-9a-f])|u(d[89a-f][0-9a-f]{2}))")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as Python's surrogateescape gives it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"  # any other lone surrogate (no POSIX file name has one)


def stored_name(name: str) -> str:
    """``name`` as stored: itself when it is valid text without a backslash that would read as
    an escape; else undecodable bytes as ``\\xNN``, other lone surrogates as ``\\udNNN`` and
    such backslashes as ``\\x5c``. One-to-one: `name_of` gives ``name`` back."""
    if "\\" not in name:
        if name.isascii():
            return name
        try:
            name.encode("utf-8")
            return name
        except UnicodeEncodeError:
            pass
    return _SURROGATE.sub(_escape, _LOOKALIKE.sub(r"\\x5c", name))


def _unescape(match: re.Match[str]) -> str:
    byte, other = match.groups()
    if other is not None:
        return chr(int(other, 16))
    return "\\" if byte == "5c" else chr(0xDC00 + int(byte, 16))


def name_of(stored: str) -> str:
    """The name a stored text stands for (what the API's JSON shows, back as a name)."""
    return _ESCAPE.sub(_unescape, stored) if "\\" in stored else stored


def stored_names(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with each name field's text as stored."""
    return {
        k: stored_name(v) if k in NAME_FIELDS and isinstance(v, str) else v
        for k, v in fields.items()
    }
