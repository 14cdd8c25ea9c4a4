"""The hookimpls: thin and guarded. Importing this module opens nothing."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pluggy

log = logging.getLogger("vpo_stats_plugin")
hookimpl = pluggy.HookimplMarker("vpo")

_lock = threading.Lock()
_recorder: Any = None  # the process's Recorder, made on first use
_disabled_reason: str | None = None
failures: dict[str, int] = {}  # hook failures by cause, for this process


def get_recorder() -> Any:
    """The process's Recorder, or None when the plugin is off or its config is bad.

    The config is read once per process, at the first hook call (or the first call after
    `reset()` / `config.configure()`); every later call costs one check. A bad config is
    logged once, as an error of logger `vpo_stats_plugin`, and nothing is recorded.
    """
    global _recorder, _disabled_reason
    if _recorder is not None or _disabled_reason is not None:
        return _recorder
    with _lock:
        if _recorder is None and _disabled_reason is None:
            from . import config

            try:
                resolved = config.resolve()  # standard library only
                if not resolved.problems and resolved.enabled is False:
                    _disabled_reason = "enabled = false"
                    return None
                settings = resolved.settings()  # raises ConfigError naming every problem
            except Exception as err:  # bad config: say so once, record nothing
                _disabled_reason = str(err)
                log.error("vpo-stats: recording is off: %s", err)
                return None
            from .recorder import Recorder

            _recorder = Recorder(settings)
    return _recorder


def reset() -> None:
    """Forget the recorder and the config read (tests; a host reloading its config).

    The next hook call reads the config again; what a host gave `config.configure()` is kept.
    """
    global _recorder, _disabled_reason
    with _lock:
        if _recorder is not None:
            _recorder.close()
        _recorder, _disabled_reason = None, None


def _guarded(name: str, call: Any) -> None:
    try:
        recorder = get_recorder()
        if recorder is not None:
            call(recorder)
    except Exception as err:  # never raise into the host
        cause = f"{name}: {type(err).__name__}"
        try:
            if _recorder is not None:
                _recorder.errors.add(cause, f"{name} failed and was skipped: {err}")
                return
        except Exception:
            pass
        if cause not in failures:
            log.warning("vpo-stats: %s failed and was skipped: %s", name, err)
        failures[cause] = failures.get(cause, 0) + 1


@hookimpl
def vpo_before_file(job: Any) -> None:
    _guarded("vpo_before_file", lambda r: r.before_file(job))


@hookimpl
def vpo_after_action(job: Any, action: Any) -> None:
    _guarded("vpo_after_action", lambda r: r.after_action(job, action))


@hookimpl
def vpo_after_file(job: Any, result: Any) -> None:
    _guarded("vpo_after_file", lambda r: r.after_file(job, result))
