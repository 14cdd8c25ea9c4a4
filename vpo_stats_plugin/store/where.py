"""SQL conditions selecting runs (alias ``r``) by filters; they match the indexes on runs."""

from __future__ import annotations

from typing import Any

from ..filters import Filters


def run_where(filters: Filters) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters for the runs that ``filters`` select."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("started_at", ">=", filters.since),
        ("started_at", "<=", filters.until),
        ("policy", "=", filters.policy),
        ("node", "=", filters.node),
        ("status", "=", filters.status),
    ):
        if value is not None:
            clauses.append(f"r.{column} {op} ?")
            params.append(value)
    return (" AND ".join(clauses) or "TRUE"), params
