"""Errors that carry the exit code the CLI answers with and the HTTP status the API answers with."""

from __future__ import annotations


class StatsError(Exception):
    """Base error: its message names the cause and what to do."""

    exit_code = 1
    http_status = 500


class BadParameter(StatsError):
    """A bad value given by the user for a named parameter."""

    exit_code = 2
    http_status = 400

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"invalid value for {param}: {message}")
        self.param = param


class NotFound(StatsError):
    """The named file, run or policy has no stats; the hint says where to look, as a command
    for the CLI (``str(err)``) and as an API route for the web (``err.web_message``)."""

    exit_code = 64
    http_status = 404

    def __init__(self, message: str, *, cli_hint: str = "", web_hint: str = "") -> None:
        super().__init__(f"{message}: {cli_hint}" if cli_hint else message)
        self.web_message = f"{message}: {web_hint}" if web_hint else message


class DatabaseUnusable(StatsError):
    """A database that cannot be used: corrupt, not ours, or from a newer version."""

    exit_code = 65
    http_status = 500


class InputMissing(StatsError):
    """An input file named on the command line does not exist."""

    exit_code = 66
    http_status = 404
