"""The settings table: every setting of `[settings]` and `AE_*`, with its type,
default, help and bounds, and the rules a whole set of values must keep.

`config` reads the values (environment over file over default) and hands them
here to be checked; `ae config show` and the starter events.toml read the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .config_input import control_character
from .errors import ConfigError
from .redaction import redact_url

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
QUEUE_BACKENDS = ("db", "amqp")
LOG_FORMATS = ("text", "json")
MAX_CONCURRENCY = 10_000  # deliveries in flight in one consumer: beyond this, run more consumers


def _setting(default: Any, help: str, bounds: tuple[float, float] | None = None) -> Any:
    """One field of `Settings`: its default, the help `ae config show` prints, and for
    a number its inclusive bounds (finite, and small enough that every back-off stays
    representable in AMQP TTLs and timestamps)."""
    return field(default=default, metadata={"help": help, "bounds": bounds})


@dataclass(frozen=True)
class Settings:
    """Every setting, typed, read once by `load_config`. To add a setting, add a field
    here (type, default, help): `[settings]` in events.toml, `AE_<NAME>`, type checks,
    bounds and `ae config show` all follow from it."""

    database: str = _setting(
        ".ae/ae.db", "SQLite file (relative to the config file's folder) or postgresql://user:password@host:port/dbname"
    )
    queue: str = _setting("db", "queue backend: db (SQLite table) or amqp (RabbitMQ)")
    amqp_url: str = _setting(DEFAULT_AMQP_URL, "RabbitMQ URL when queue = amqp")
    max_deaths: int = _setting(5, "retries after the first attempt before dead-lettering", (0, 1000))
    backoff_exponent: float = _setting(2.0, "back-off is min(max, n ** exponent) units", (0, 10))
    backoff_max_seconds: float = _setting(60.0, "cap on one back-off, in units", (0, 1_000_000))
    backoff_unit_seconds: float = _setting(1.0, "length of one back-off unit in seconds", (0, 3600))
    indexing: bool = _setting(True, "keep a search index of the delivery log")
    index_path: str = _setting(
        "",
        "search index folder (relative to the config file's folder); default: <database>.index beside a"
        " SQLite file, .ae/ae.index beside the config file for PostgreSQL",
    )
    log_retention_days: int = _setting(30, "`ae logs prune` default age", (0, 36500))
    deny_private_targets: bool = _setting(
        False, "refuse recipients on loopback, private and other non-global addresses"
    )
    concurrency: int = _setting(64, "deliveries in flight at once in one consumer", (1, MAX_CONCURRENCY))
    subscription_concurrency: int = _setting(
        32, "deliveries in flight at once to one subscription", (1, MAX_CONCURRENCY)
    )
    eventbridge_source: str = _setting("ae", "Source of the events the eventbridge notifier puts")
    cloudevents_source: str = _setting(
        "/ae", "CloudEvents `source` of deliveries in the cloudevents format (a URI-reference)"
    )
    metrics_port: int = _setting(
        0, "`ae consume` serves /metrics, /healthz and /readyz on this port (0: not served)", (0, 65535)
    )
    metrics_host: str = _setting("127.0.0.1", "address the consumer's metrics endpoint listens on")
    metrics_public: bool = _setting(False, "`ae serve` answers /metrics without signing in")
    log_format: str = _setting("text", "`ae consume` and `ae serve` log as text or json (one object per line)")
    retry_after_max_seconds: float = _setting(
        3600.0, "longest wait a receiver's Retry-After may ask for; a longer one is cut to this", (0, 30 * 24 * 3600)
    )
    service_timeout_seconds: float = _setting(
        30.0, "longest an event's service may take to build a payload before the message is parked", (0.001, 86400)
    )
    serve_max_body_bytes: int = _setting(
        2 * 1024 * 1024, "`ae serve`: the largest request body, in bytes (a 1 MiB payload fits)", (1024, 2**30)
    )
    serve_read_timeout_seconds: float = _setting(
        15.0, "`ae serve`: time a client has to send a request's head, and then its body", (0.1, 3600)
    )
    serve_search_seconds: float = _setting(
        10.0, "`ae serve`: time budget of one search from the pages; then 503", (0.1, 3600)
    )
    circuit_failure_threshold: int = _setting(
        10,
        "consecutive failed attempts to one subscription that open its circuit (its deliveries are held)",
        (1, 1_000_000),
    )
    circuit_probe_seconds: float = _setting(
        30.0, "while a circuit is open, one probe attempt every this many seconds", (0.001, 86400)
    )
    disable_after_hours: float = _setting(
        72.0,
        "a subscription whose circuit stays open this long is disabled (its held deliveries are kept)",
        (0.0001, 87600),
    )

    def as_dict(self) -> dict[str, Any]:
        """name -> value, in the order of the table."""
        return {s.name: getattr(self, s.name) for s in SETTINGS}


@dataclass(frozen=True)
class Setting:
    """A row of the settings table, as `ae config show` and the loader read it."""

    name: str
    kind: type
    default: Any
    help: str
    bounds: tuple[float, float] | None = None


_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, _KINDS[str(f.type)], f.default, f.metadata["help"], f.metadata["bounds"]) for f in fields(Settings)
)
#: Inclusive bounds of the numeric settings.
BOUNDS: dict[str, tuple[float, float]] = {s.name: s.bounds for s in SETTINGS if s.bounds is not None}
#: The longest single back-off (backoff_max_seconds units of backoff_unit_seconds).
MAX_BACKOFF_SECONDS = 30 * 24 * 3600
AMQP_SCHEMES = ("amqp", "amqps")
POSTGRES_SCHEMES = ("postgresql", "postgres")
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def is_url(value: str) -> bool:
    """A `scheme://...` value (a SQLite path never looks like one)."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) is not None


def _split_service_url(url: str) -> tuple[SplitResult, int | None] | str:
    """A service URL split into its parts and port, or why it cannot be: the checks
    the database and AMQP URLs share before their own."""
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        return "it contains whitespace or a control character"
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError as exc:
        return str(exc)


def _port_problem(port: int | None) -> str | None:
    return f"port {port} is out of range" if port is not None and not 0 < port < 65536 else None


def database_url_problem(url: str) -> str | None:
    """Why `url` is not a postgresql://[user[:password]@][host][:port]/dbname URL, or None."""
    split = _split_service_url(url)
    if isinstance(split, str):
        return split
    parts, port = split
    if parts.scheme.lower() not in POSTGRES_SCHEMES:
        return f"the scheme {parts.scheme!r} is not postgresql (a SQLite store is a file path, not a URL)"
    if not parts.path.strip("/"):
        return "it names no database (postgresql://user:password@host:5432/dbname)"
    return _port_problem(port)


def validate_settings(settings: Settings, where: Mapping[str, str]) -> None:
    """Refuse values that are each well typed but out of bounds or inconsistent; `where` names
    each setting's source (the file, or its environment variable) for the message."""

    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"{where[name]}: {name} {why}")

    if settings.queue not in QUEUE_BACKENDS:
        raise bad("queue", f"must be one of {', '.join(QUEUE_BACKENDS)}, got {settings.queue!r}")
    for name, (low, high) in BOUNDS.items():
        value = getattr(settings, name)
        if not math.isfinite(value):
            raise bad(name, f"must be a finite number, got {value}")
        if not low <= value <= high:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise bad(name, f"must be between {low:g} and {high:g}, got {shown}")
    longest = settings.backoff_max_seconds * settings.backoff_unit_seconds
    if longest > MAX_BACKOFF_SECONDS:
        raise bad(
            "backoff_unit_seconds",
            f"x backoff_max_seconds gives a longest back-off of {longest:g} s;"
            f" at most {MAX_BACKOFF_SECONDS} s (30 days)",
        )
    if not settings.database:
        raise bad("database", "must not be empty")
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        found = control_character(value) if isinstance(value, str) else None
        if found is not None:
            raise bad(setting.name, f"must not contain a control character (found {found})")
    if is_url(settings.database):
        why = database_url_problem(settings.database)
        if why:
            raise bad("database", f"is not a PostgreSQL URL ({why}): {redact_url(settings.database, keep_user=True)!r}")
    if settings.log_format not in LOG_FORMATS:
        raise bad("log_format", f"must be one of {', '.join(LOG_FORMATS)}, got {settings.log_format!r}")
    if not settings.metrics_host.strip():
        raise bad("metrics_host", "must not be empty")
    if not 1 <= len(settings.eventbridge_source.strip()) <= 256:
        raise bad("eventbridge_source", "must be 1 to 256 characters")
    source = settings.cloudevents_source
    if not 1 <= len(source) <= 256 or any(c.isspace() or not c.isprintable() for c in source):
        raise bad("cloudevents_source", "must be 1 to 256 printable characters without spaces (a URI-reference)")
    why = amqp_url_problem(settings.amqp_url)
    if why:
        raise bad("amqp_url", f"is not an AMQP URL ({why}): {redact_url(settings.amqp_url, keep_user=True)!r}")


def amqp_url_problem(url: str) -> str | None:
    """Why `url` is not an amqp(s)://[user[:password]@]host[:port][/vhost] URL, or None."""
    split = _split_service_url(url)
    if isinstance(split, str):
        return split
    parts, port = split
    if parts.scheme not in AMQP_SCHEMES:
        return "the scheme must be amqp or amqps"
    if not parts.hostname:
        return "it names no host"
    return _port_problem(port)
