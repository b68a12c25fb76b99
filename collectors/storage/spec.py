"""Where the store lives: the ``--store`` / ``EVENTSCOPE_STORE`` value, checked, and the store it opens.

A plain path or ``duckdb:PATH`` is a DuckDB file (the default); ``chdb:PATH`` is ClickHouse in this process
with its data in the directory PATH; ``clickhouse://[user[:password]@]HOST:PORT/DB`` is a ClickHouse server
through its HTTP port. A ClickHouse spec ending in ``?tables=exporter`` is read mode: eventscope reads the tables an
OpenTelemetry Collector's clickhouseexporter writes in DB (for chdb, in its database ``otel``, the exporter's
default) through views of its own (collectors/storage/clickhouse/exporter.py) and stores only what its bus tap and
broker poller see. A value that is none of these is refused with the reason before anything opens.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from collectors.storage.clickhouse import exporter

DUCKDB = "duckdb"
CHDB = "chdb"
CLICKHOUSE = "clickhouse"
ENGINES = (DUCKDB, CHDB, CLICKHOUSE)
FORMS = "a path, duckdb:PATH, chdb:PATH or clickhouse://[user[:password]@]HOST:PORT/DB"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^[A-Za-z0-9._:-]+$")  # a name, an IPv4 or an IPv6 address (urlsplit drops the brackets)
_DEFAULT_USER = "default"
CHDB_PIPELINE_DATABASE = "otel"
"""The database a ``chdb:PATH?tables=exporter`` store reads: the exporter's default ``database``."""


class StoreSpecError(ValueError):
    """The store value names no usable store; the message says why."""


@dataclasses.dataclass(frozen=True)
class StoreSpec:
    """One store: its engine and where it is (a path, or a server's address and database)."""

    engine: str
    path: str = ""
    host: str = ""
    port: int = 0
    database: str = ""
    username: str = _DEFAULT_USER
    password: str = dataclasses.field(default="", repr=False)
    read_mode: bool = False
    """Read an exporter's tables (``?tables=exporter``) instead of writing eventscope's own."""

    def describe(self) -> str:
        """The spec as it can be shown (never the password)."""
        mode = f"?{exporter.READ_MODE_OPTION}={exporter.READ_MODE_VALUE}" if self.read_mode else ""
        if self.engine == CLICKHOUSE:
            return f"clickhouse://{self.username}@{self.host}:{self.port}/{self.database}{mode}"
        return f"{self.engine}:{self.path}{mode}"


def _path(engine: str, path: str) -> StoreSpec:
    if not path.strip() or "\0" in path:
        raise StoreSpecError(f"{engine}: expects a path after '{engine}:', got {path!r}")
    return StoreSpec(engine, path=path)


def _shown(value: str) -> str:
    """``value`` with any password in it masked, for a message."""
    return re.sub(r"^(clickhouse://[^:@/]*:)[^@/]*@", r"\1***@", value, flags=re.IGNORECASE)


def _server(given: str) -> StoreSpec:
    value = _shown(given)
    try:
        url = urllib.parse.urlsplit(given)
        port = url.port
    except ValueError as exc:
        raise StoreSpecError(f"cannot read {value!r} as clickhouse://HOST:PORT/DB ({exc})") from None
    host = url.hostname or ""
    if not _HOST.match(host):
        raise StoreSpecError(f"{value!r} names no host: expected clickhouse://HOST:PORT/DB")
    if port is None or port == 0:
        raise StoreSpecError(f"{value!r} names no port: expected clickhouse://HOST:PORT/DB (the HTTP port, 8123)")
    database = url.path.removeprefix("/")
    if not _DATABASE.match(database):
        raise StoreSpecError(f"{value!r}: expected a database name (letters, digits, _) after the port: {database!r}")
    if url.fragment:
        raise StoreSpecError(f"{value!r}: a store URL takes no fragment")
    read_mode = _read_mode(value, url.query)
    username = urllib.parse.unquote(url.username) if url.username else _DEFAULT_USER
    password = urllib.parse.unquote(url.password) if url.password else ""
    return StoreSpec(
        CLICKHOUSE,
        host=host,
        port=port,
        database=database,
        username=username,
        password=password,
        read_mode=read_mode,
    )


def _read_mode(shown: str, query: str) -> bool:
    """Whether the spec's query (``tables=exporter`` or ``tables=eventscope``) asks for read mode."""
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {exporter.READ_MODE_OPTION})
    if unknown:
        raise StoreSpecError(f"{shown!r}: unknown store option {unknown[0]!r} (only {exporter.READ_MODE_OPTION}=)")
    try:
        return exporter.read_mode(f"clickhouse://x/?{query}")
    except exporter.ReadModeError as exc:
        raise StoreSpecError(f"{shown!r}: {exc}") from None


def parse(value: str) -> StoreSpec:
    """The store a ``--store`` value names; StoreSpecError says what is wrong with a bad one."""
    if not value or not value.strip():
        raise StoreSpecError(f"expected {FORMS}, got an empty value")
    if "\0" in value:
        raise StoreSpecError("a store value cannot hold a NUL character")
    scheme = _SCHEME.match(value)
    if scheme is None or (len(scheme.group(1)) == 1 and not value.startswith(f"{scheme.group(1)}://")):
        return StoreSpec(DUCKDB, path=value)  # a plain path (a drive letter is not an engine)
    name = scheme.group(1).lower()
    rest = value[scheme.end() :]
    if name == CLICKHOUSE:
        if not rest.startswith("//"):
            raise StoreSpecError(f"{_shown(value)!r}: expected clickhouse://HOST:PORT/DB")
        return _server(value)  # its messages mask the password
    if name in (DUCKDB, CHDB):
        if rest.startswith("//"):
            raise StoreSpecError(f"{value!r}: {name} takes a path ({name}:PATH), not a URL")
        if name == CHDB and "?" in rest:
            path, query = rest.split("?", 1)
            return dataclasses.replace(_path(name, path), read_mode=_read_mode(value, query))
        return _path(name, rest)
    raise StoreSpecError(f"unknown store engine {name!r} in {value!r}: expected {FORMS}")


def open_store(spec: StoreSpec, queue_limit: int, memory_limit: str | None = None):
    """The Store the spec names, open and with its tables created; ClickHouseError if a server cannot be reached."""
    from collectors.storage.store import Store

    if spec.engine == DUCKDB:
        return Store(spec.path, queue_limit, memory_limit)
    from collectors.storage.clickhouse import client
    from collectors.storage.clickhouse.engine import ClickHouseEngine

    if spec.engine == CHDB:
        database = exporter.own_database(CHDB_PIPELINE_DATABASE) if spec.read_mode else None
        local = client.ChdbClient(spec.path, database)
        if spec.read_mode:
            exporter.create(local, CHDB_PIPELINE_DATABASE)
        engine = ClickHouseEngine(local, CHDB, lambda: client.SharedClient(local), read_mode=spec.read_mode)
        return Store(spec.describe(), queue_limit, engine=engine)
    database = exporter.own_database(spec.database) if spec.read_mode else spec.database

    def connect(settings: dict | None = None) -> client.ServerClient:
        return client.ServerClient(spec.host, spec.port, database, spec.username, spec.password, settings)

    writer = connect()
    if spec.read_mode:
        exporter.create(writer, spec.database)
    engine = ClickHouseEngine(writer, CLICKHOUSE, lambda: connect(client.READ_SETTINGS), read_mode=spec.read_mode)
    return Store(spec.describe(), queue_limit, engine=engine)
