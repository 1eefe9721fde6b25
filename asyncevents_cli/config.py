"""`events.toml` and the AE_* environment: event definitions and settings.

Precedence for each setting: environment variable ``AE_<KEY>``, then the
``[settings]`` table, then the default. The config file is ``--config``, else
``AE_CONFIG``, else ``./events.toml``. Everything is validated on load so a
bad file fails before anything is written.
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .backoff import RetryPolicy
from .config_input import control_character, is_ascii_number, read_config_text
from .errors import ConfigError, InputError
from .redaction import redact_url

EVENT_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
DEFAULT_CONFIG = "events.toml"
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
#: where a host keeps its own files (index, session key) when the store is PostgreSQL
LOCAL_FOLDER = ".ae"
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
EVENT_KEYS = {"description", "service"}


@dataclass(frozen=True)
class EventDefinition:
    name: str
    description: str = ""
    service: str | None = None  # "package.module:function"
    folder: Path | None = field(default=None, compare=False, repr=False)  # where a service module may sit

    def resolve_service(self) -> Callable[..., Any] | None:
        """Import the payload-building callable, if the event names one.

        The config file's folder is on the import path (after the installed packages,
        so a file there cannot shadow one of them): `service = "mysvc:fn"` finds
        `mysvc.py` beside events.toml without PYTHONPATH."""
        if not self.service:
            return None
        if self.folder is not None and str(self.folder) not in sys.path:
            sys.path.append(str(self.folder))
        module_name, _, attribute = self.service.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"event {self.name!r}: cannot import service {self.service!r}: {exc}") from None
        if not callable(target):
            raise ConfigError(f"event {self.name!r}: service {self.service!r} is not callable")
        return target


def check_event_name(name: str) -> str:
    """A name that could be an event. (Filters such as `ae logs --event` accept names
    no longer defined: their logs and subscriptions outlive the definition.)"""
    if not EVENT_NAME.match(name or ""):
        raise InputError(f"invalid event name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


@dataclass(frozen=True)
class Config:
    path: Path
    events: dict[str, EventDefinition]
    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)  # setting -> "default" | "file" | "env AE_X"

    @property
    def uses_postgres(self) -> bool:
        return is_url(self.settings.database)

    @property
    def database(self) -> str | Path:
        """What `Store` opens: the PostgreSQL URL, or the SQLite file's path."""
        return self.settings.database if self.uses_postgres else self.database_path

    @property
    def database_display(self) -> str:
        """The database as it may be printed: a URL's password is ***."""
        return redact_url(self.settings.database, keep_user=True) if self.uses_postgres else str(self.database_path)

    @property
    def database_path(self) -> Path:
        """The SQLite file (a PostgreSQL store has none)."""
        if self.uses_postgres:
            raise ConfigError(f"the database is PostgreSQL ({self.database_display}), not a SQLite file")
        return self._local(self.settings.database)

    @property
    def local_folder(self) -> Path:
        """Where this host keeps files of its own: beside the SQLite file, or for a
        shared PostgreSQL store, `.ae/` beside the config file."""
        return self._local(LOCAL_FOLDER) if self.uses_postgres else self.database_path.parent

    @property
    def index_path(self) -> Path:
        """The search index folder: settings.index_path, or the default beside the store."""
        if self.settings.index_path:
            return self._local(self.settings.index_path)
        if self.uses_postgres:
            return self.local_folder / "ae.index"
        return self.database_path.with_name(self.database_path.name + ".index")

    def _local(self, setting: str) -> Path:
        path = Path(setting).expanduser()
        return path if path.is_absolute() else self.path.parent / path

    @property
    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(
            max_deaths=s.max_deaths,
            exponent=s.backoff_exponent,
            max_seconds=s.backoff_max_seconds,
            unit_seconds=s.backoff_unit_seconds,
        )

    def event(self, name: str) -> EventDefinition:
        """A defined event, or one of the operator events `ae` raises itself."""
        from .operator_events import OPERATOR_EVENTS

        check_event_name(name)
        if name in OPERATOR_EVENTS:
            return EventDefinition(name, OPERATOR_EVENTS[name])
        try:
            return self.events[name]
        except KeyError:
            raise InputError(f"event {name!r} is not defined in {self.path}", hint=self._event_hint(name)) from None

    def _event_hint(self, name: str) -> str:
        """'did you mean' the closest defined names (difflib: a typo, a swapped letter), else the listing."""
        close = difflib.get_close_matches(name, list(self.events), n=3, cutoff=0.75)
        if close:
            return "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return "run `ae events list` to see the defined events"


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


def _coerce(setting: Setting, value: Any, where: str, parse: bool = False) -> Any:
    """Check a value's type; with `parse` (values from the environment) strings are parsed.

    TOML values are typed already: `max_deaths = "3"` in the file is an error, not 3."""
    kind = setting.kind
    if parse and isinstance(value, str) and kind is not str:
        text = value.strip(" \t").lower()  # ASCII blanks only: str.strip() also eats U+00A0
        try:
            if kind is bool:
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if not is_ascii_number(text, kind):  # int() takes "５" and "5_0"; nobody means those
                raise ValueError(value)
            return kind(text)
        except ValueError:
            raise ConfigError(f"{where}: {setting.name} must be {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {setting.name} must be {kind.__name__}, got {value!r}")
    return value


def _validate(settings: Settings, where: Mapping[str, str]) -> None:
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


def _parse_events(raw: Any, path: Path) -> dict[str, EventDefinition]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [events] must be a table of event tables")
    events: dict[str, EventDefinition] = {}
    for name, body in raw.items():
        if not EVENT_NAME.match(name):
            raise ConfigError(f"{path}: invalid event name {name!r}: use letters, digits, '.', '_' and '-'")
        if not isinstance(body, dict):
            raise ConfigError(f'{path}: [events."{name}"] must be a table')
        unknown = set(body) - EVENT_KEYS
        if unknown:
            raise ConfigError(
                f'{path}: [events."{name}"] has unknown key(s) {", ".join(sorted(unknown))}; '
                f"allowed: {', '.join(sorted(EVENT_KEYS))}"
            )
        description = body.get("description", "")
        service = body.get("service")
        if not isinstance(description, str):
            raise ConfigError(f'{path}: [events."{name}"] description must be a string')
        if service is not None and (not isinstance(service, str) or not re.match(r"^[\w.]+:[\w.]+$", service)):
            raise ConfigError(f'{path}: [events."{name}"] service must look like "package.module:function"')
        events[name] = EventDefinition(name, description, service, path.parent)
    return events


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file and the AE_* environment."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("AE_CONFIG") or DEFAULT_CONFIG
    found = control_character(str(chosen))
    if found is not None:
        raise ConfigError(f"the config file's path must not contain a control character (found {found})")
    config_path = Path(chosen).expanduser().absolute()
    try:
        text = read_config_text(config_path)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {config_path} not found",
            hint="run `ae init` to write one here, or point --config / AE_CONFIG at one",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: invalid TOML: {exc}") from None

    unknown_tables = set(raw) - {"events", "settings"}
    if unknown_tables:
        raise ConfigError(
            f"{config_path}: unknown top-level key(s) {', '.join(sorted(unknown_tables))}; allowed: events, settings"
        )
    events = _parse_events(raw.get("events", {}), config_path)

    file_settings = raw.get("settings", {})
    if not isinstance(file_settings, dict):
        raise ConfigError(f"{config_path}: [settings] must be a table")
    unknown = set(file_settings) - set(SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(
            f"{config_path}: [settings] has unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(SETTINGS_BY_NAME)}"
        )

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        env_name = f"AE_{setting.name.upper()}"
        if env_name in env:
            values[setting.name] = _coerce(setting, env[env_name], f"environment {env_name}", parse=True)
            sources[setting.name] = f"env {env_name}"
        elif setting.name in file_settings:
            values[setting.name] = _coerce(setting, file_settings[setting.name], str(config_path))
            sources[setting.name] = "file"
        else:
            values[setting.name] = setting.default
            sources[setting.name] = "default"
    where = {
        name: (f"environment AE_{name.upper()}" if src.startswith("env") else str(config_path))
        for name, src in sources.items()
    }
    settings = Settings(**values)
    _validate(settings, where)
    return Config(config_path, events, settings, sources)
