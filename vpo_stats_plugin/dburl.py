"""PostgreSQL URLs as a `database` value: parsed as libpq parses them, shown with no password.

A `database` that starts with `postgresql://` or `postgres://` is a URL, never a file name
(libpq's URI syntax: `postgresql://[user[:password]@][host][:port][,...][/dbname][?key=value&...]`,
percent-encoding in every part). `DatabaseURL` keeps the parts; its text (`str`, `repr`, and so
every message, log line and JSON body made from it) has the password replaced by `***`.
Only `conninfo()` gives the URL with its password, for the driver. Standard library only.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMES = ("postgresql", "postgres")
INSTALL = "pip install 'vpo-stats-plugin[postgresql]'"
MASK = "***"
SECRET_KEYS = frozenset({"password", "sslpassword"})  # query options that hold a secret

_URL = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)://")
# `postgresql:/...` (one slash, as a Path makes of a URL) is a mistyped URL, never a file name
_PG_SCHEME = re.compile(r"\s*postgres(?:ql)?:", re.IGNORECASE)
_USER_END, _HOST_END, _PORT_END = (re.compile(p) for p in (r"[@/]", r"[:/?,]|\Z", r"[/?,]|\Z"))


class BadURL(ValueError):
    """A URL the plugin cannot use; the message says why and never holds the password."""


def is_url(value: Any) -> bool:
    """Whether ``value`` is text of the form ``scheme://...`` or ``postgresql:...`` (so never
    a file name)."""
    return isinstance(value, str) and (
        _URL.match(value) is not None or _PG_SCHEME.match(value) is not None
    )


def extra_installed() -> bool:
    """Whether psycopg (the `postgresql` extra) can be found, without importing it."""
    try:
        return importlib.util.find_spec("psycopg") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["psycopg"] is None
        return False


@dataclass(frozen=True)
class DatabaseURL:
    """A PostgreSQL URL as libpq reads it; shown (str, repr) with the password masked."""

    text: str = field(repr=False)  # as given, with the password: only conninfo() hands it out
    masked: str  # as given, with the password (and any secret option) replaced by ***
    params: dict[str, str] = field(repr=False, compare=False, hash=False)  # libpq's keywords

    engine = "postgresql"

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"DatabaseURL({self.masked!r})"

    def __hash__(self) -> int:
        return hash(self.text)

    def conninfo(self) -> str:
        """The URL with its password, for psycopg; the scheme in lower case, as libpq wants."""
        scheme, _, rest = self.text.strip().partition("://")
        return f"{scheme.lower()}://{rest}"

    @property
    def server(self) -> str:
        """Which server and database, for messages: ``database stats on db.lan:5432 as vpo``."""
        host = self.params.get("host") or self.params.get("hostaddr") or "localhost"
        port = self.params.get("port") or "5432"
        if host.startswith("/") and "," not in host:
            where = f"the socket in {host}"
        else:
            ports = port.split(",")
            where = ", ".join(
                _host_port(h, (ports[i] if i < len(ports) else ports[-1]))
                for i, h in enumerate(host.split(","))
            )
        user = self.params.get("user")
        name = self.params.get("dbname") or user or "(the user's own)"
        return f"PostgreSQL database {name} on {where}" + (f" as {user}" if user else "")

    def scrub(self, text: str) -> str:
        """``text`` (a driver's message, say) with this URL's secrets replaced by ***."""
        for secret in sorted(self._secrets(), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def _secrets(self) -> set[str]:
        found = {self.text, self.text.strip()}
        for key in SECRET_KEYS:
            if self.params.get(key):
                found.add(self.params[key])
        found |= set(_raw_secrets(self.text))
        return {s for s in found if s}


def _host_port(host: str, port: str) -> str:
    host = host or "localhost"
    return f"{f'[{host}]' if ':' in host else host}:{port or '5432'}"


def validate(url: DatabaseURL) -> None:
    """Have libpq itself (through psycopg, when installed) parse ``url``; BadURL if it will not."""
    try:
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return
    try:
        conninfo_to_dict(url.conninfo())
    except Error as err:
        raise BadURL(url.scrub(str(err).strip())) from None


def mask(value: Any) -> Any:
    """``value`` fit to show: a URL without its password (as far as it can be told), else as is."""
    if isinstance(value, DatabaseURL):
        return value.masked
    if not is_url(value):
        return value
    try:
        return parse(value).masked
    except BadURL:
        return _mask_unparsed(value)


def _mask_unparsed(text: str) -> str:
    """A URL that does not parse, shown without anything that could be a secret (its scheme
    and slashes as written)."""
    scheme, _, rest = text.strip().partition(":")
    slashes = rest[: len(rest) - len(rest.lstrip("/"))]
    rest = rest[len(slashes) :]
    if "@" in rest:
        rest = f"{MASK}@{rest.rpartition('@')[2]}"
    if "?" in rest:
        rest = rest.partition("?")[0] + "?..."
    return f"{scheme}:{slashes}{rest}"


def _raw_secrets(text: str) -> list[str]:
    """The secrets of ``text`` as written (still percent-encoded), for scrub()."""
    try:
        _, spans = _parse(text.strip())
    except BadURL:
        return []
    return [text.strip()[a:b] for a, b in spans]


def parse(text: str) -> DatabaseURL:
    """A `postgresql://` or `postgres://` URL (any case), read as libpq reads it.

    Raises BadURL for another scheme and for what libpq refuses to parse, and also where a
    password would otherwise show: an unencoded `@` or `/` in a user name or password.
    """
    if not is_url(text):
        raise BadURL("not a URL")
    if _URL.match(text) is None:
        raise BadURL(
            "a PostgreSQL URL starts with postgresql:// (two slashes), for example "
            "postgresql://vpo_stats@db.example:5432/vpo_stats"
        )
    stripped = text.strip()
    scheme = stripped.partition("://")[0]
    if scheme.lower() not in SCHEMES:
        raise BadURL(
            f"{scheme}:// is not a database URL this plugin knows: give a file path, or a "
            "postgresql:// URL"
        )
    params, spans = _parse(stripped)
    masked, last = [], 0
    for start, end in spans:
        masked += [stripped[last:start], MASK]
        last = end
    masked.append(stripped[last:])
    return DatabaseURL(text=stripped, masked="".join(masked), params=params)


def _decode(raw: str) -> str:
    """libpq's percent-decoding: `%XX` only (a bare `%` is an error, `%00` forbidden), no `+`;
    spaces around a part are dropped and spaces inside it refused (libpq 17 and later)."""
    raw = raw.strip(" ")
    if " " in raw:
        raise BadURL("a space inside a part of it: percent-encode spaces as %20")
    out = bytearray()
    i = 0
    data = raw.encode("utf-8", "surrogateescape")
    while i < len(data):
        if data[i] == 0x25:  # %
            pair = data[i + 1 : i + 3]
            if len(pair) < 2 or not all(c in b"0123456789abcdefABCDEF" for c in pair):
                raise BadURL("a % in it is not followed by two hex digits (percent-encoding)")
            if pair == b"00":
                raise BadURL("%00 is not allowed in it")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(data[i])
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise BadURL("a part of it is not UTF-8 once percent-decoded") from None


def _parse(text: str) -> tuple[dict[str, str], list[tuple[int, int]]]:
    """libpq's keywords from a URL, and the spans of ``text`` that hold secrets (follows
    conninfo_uri_parse_options in libpq's fe-connect.c)."""
    start = text.index("://") + 3
    params: dict[str, str] = {}
    secrets: list[tuple[int, int]] = []
    pos = start
    designator = _USER_END.search(text, start)
    if designator is not None and designator.group() == "@":
        user, colon, password = text[start : designator.start()].partition(":")
        if user:
            params["user"] = _decode(user)
        if colon and password:
            params["password"] = _decode(password)
            secrets.append((start + len(user) + 1, designator.start()))
        pos = designator.end()
    hosts, ports = [], []
    while True:
        if text.startswith("[", pos):
            end = text.find("]", pos)
            if end == -1:
                raise BadURL("an IPv6 host address has no closing ]")
            if end == pos + 1:
                raise BadURL("an IPv6 host address is empty ([])")
            host, pos = text[pos + 1 : end], end + 1
            if pos < len(text) and text[pos] not in ":/?,":
                raise BadURL(f"{text[pos]!r} after an IPv6 host address (expected : or /)")
        else:
            end = _HOST_END.search(text, pos).start()  # type: ignore[union-attr]
            host, pos = text[pos:end], end
        term = text[pos] if pos < len(text) else ""
        port = ""
        if term == ":":
            end = _PORT_END.search(text, pos + 1).start()  # type: ignore[union-attr]
            port, pos = text[pos + 1 : end], end
            term = text[pos] if pos < len(text) else ""
        if "@" in host:
            raise BadURL("percent-encode an @ in the user name or password as %40")
        hosts.append(host)
        ports.append(port)
        if term != ",":
            break
        pos += 1
    for key, parts in (("host", hosts), ("port", ports)):
        if ",".join(parts):  # as libpq does: "h1," keeps its comma, and so does "," for ports
            params[key] = _decode(",".join(parts))
    if term == "/":
        end = text.find("?", pos + 1)
        end = len(text) if end == -1 else end
        dbname, pos = text[pos + 1 : end], end
        if "@" in dbname:
            raise BadURL("percent-encode a / in the user name or password as %2F")
        if dbname:
            params["dbname"] = _decode(dbname)
        term = "?" if pos < len(text) else ""
    if term == "?":
        pos += 1
        while pos < len(text):
            end = text.find("&", pos)
            end = len(text) if end == -1 else end
            key, eq, value = text[pos:end].partition("=")
            if not eq:
                raise BadURL(f"the query option {key!r} has no = (use key=value)")
            if "=" in value:
                raise BadURL(f"the query option {_decode(key)!r} has a second = in it")
            key, value_start = _decode(key), pos + len(key) + 1
            decoded = _decode(value)
            if key == "ssl" and decoded == "true":  # libpq's JDBC-style spelling
                key, decoded = "sslmode", "require"
            params[key] = decoded
            if key in SECRET_KEYS and value:
                secrets.append((value_start, end))
            pos = end + 1
    return params, secrets


def as_database(value: Any) -> Path | DatabaseURL | str:
    """A `database` value as the store takes it: a DatabaseURL for a URL, else a Path.

    Never raises for a URL: one that does not parse stays text, which `open_store` refuses
    with a message saying why (it is never taken for a file name).
    """
    if isinstance(value, DatabaseURL):
        return value
    if is_url(value):
        try:
            return parse(value)
        except BadURL:
            return str(value)
    return Path(value).expanduser()
