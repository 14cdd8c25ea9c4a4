"""What ``GET /metrics`` exports: all-time sums per policy x node x status, from the rollups.

The same aggregates ``summary``, ``policies`` and ``nodes`` read with no filter (the all-time
rollup levels plus the running runs, read raw), so every figure agrees with theirs and a scrape
costs the same at ten million runs as at a thousand.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..filters import Filters
from . import aggregate, rollups

GROUP = ("policy", "node", "status")


def groups(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One dict per (policy, node, status) with runs: the run sums and the duration buckets.

    ``policy`` is ``""`` for runs without one; ``buckets`` lists the cumulative counts of
    ``rollups.DURATION_BOUNDS`` (the +Inf bucket is ``timed_runs``).
    """
    every = Filters.parse()
    rows = {tuple(row[k] for k in GROUP): row for row in aggregate.totals(conn, every, GROUP)}
    # the durations family has one level (all time): the same plan, another family
    timed = {
        tuple(row[k] for k in GROUP): row
        for row in aggregate._totals(conn, every, GROUP, rollups.DURATIONS)
    }
    out = []
    for key, row in sorted(rows.items()):
        durations = timed.get(key, {})
        out.append(
            {
                **row,
                "timed_runs": row.get("timed_runs") or 0,
                "buckets": [durations.get(f"le_{b}", 0) for b in rollups.DURATION_BOUNDS],
            }
        )
    return out
