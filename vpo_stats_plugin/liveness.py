"""Is the process that started a run still alive? (pid plus process start time).

Only meaningful on the node (and in the PID namespace) where the run was recorded; other nodes
go by the run's last sign of life (see store/writes.reap_interrupted).
"""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    return stat[stat.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> float | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), or None where unknown."""
    try:
        return float((_stat_fields(pid) or [])[19])
    except (IndexError, ValueError):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """True when ``pid`` runs and, where known, started at ``started`` (not a reused pid)."""
    if pid is None:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except (OverflowError, ValueError, OSError):
        return False
    fields = _stat_fields(int(pid))
    if fields and fields[0] in ("Z", "X"):  # killed, and not yet waited for by its parent
        return False
    if started is None:
        return True
    current = process_start_ticks(int(pid))
    return current is None or current == started


def this_process() -> tuple[int, float | None]:
    """This process's pid and start time, as stored on each run."""
    pid = os.getpid()
    return pid, process_start_ticks(pid)
