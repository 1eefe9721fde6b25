"""`events.toml` and the AE_* environment, read into one `Config`.

Precedence for each setting: environment variable ``AE_<KEY>``, then the
``[settings]`` table, then the default. The config file is ``--config``, else
``AE_CONFIG``, else ``./events.toml``. Everything is validated on load so a
bad file fails before anything is written.

The table of settings and its rules live in `settings`, the `[events]` tables in
`event_definitions`; the names the rest of the package imports from here are
re-exported (`__all__`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backoff import RetryPolicy
from .config_input import control_character, is_ascii_number, read_config_text
from .errors import ConfigError, InputError
from .event_definitions import EventDefinition, check_event_name, parse_events
from .redaction import redact_url
from .settings import (
    BOUNDS,
    DEFAULT_AMQP_URL,
    LOG_FORMATS,
    MAX_CONCURRENCY,
    SETTINGS,
    SETTINGS_BY_NAME,
    Setting,
    Settings,
    is_url,
    validate_settings,
)

__all__ = [
    "BOUNDS",
    "DEFAULT_AMQP_URL",
    "DEFAULT_CONFIG",
    "LOG_FORMATS",
    "MAX_CONCURRENCY",
    "SETTINGS",
    "SETTINGS_BY_NAME",
    "Config",
    "EventDefinition",
    "Setting",
    "Settings",
    "check_event_name",
    "load_config",
    "redact_url",
]

DEFAULT_CONFIG = "events.toml"
#: where a host keeps its own files (index, session key) when the store is PostgreSQL
LOCAL_FOLDER = ".ae"


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
        except KeyError as exc:
            raise InputError(f"event {name!r} is not defined in {self.path}", hint=self._event_hint(name)) from exc

    def _event_hint(self, name: str) -> str:
        """'did you mean' the closest defined names (difflib: a typo, a swapped letter), else the listing."""
        close = difflib.get_close_matches(name, list(self.events), n=3, cutoff=0.75)
        if close:
            return "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return "run `ae events list` to see the defined events"


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
        except ValueError as exc:
            raise ConfigError(f"{where}: {setting.name} must be {kind.__name__}, got {value!r}") from exc
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {setting.name} must be {kind.__name__}, got {value!r}")
    return value


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file and the AE_* environment."""
    env = os.environ if environ is None else environ
    config_path = _config_path(path or env.get("AE_CONFIG") or DEFAULT_CONFIG)
    raw = _read_toml(config_path)
    unknown_tables = set(raw) - {"events", "settings"}
    if unknown_tables:
        raise ConfigError(
            f"{config_path}: unknown top-level key(s) {', '.join(sorted(unknown_tables))}; allowed: events, settings"
        )
    events = parse_events(raw.get("events", {}), config_path)
    values, sources = _setting_values(_settings_table(raw, config_path), env, config_path)
    where = {
        name: (f"environment AE_{name.upper()}" if src.startswith("env") else str(config_path))
        for name, src in sources.items()
    }
    settings = Settings(**values)
    validate_settings(settings, where)
    return Config(config_path, events, settings, sources)


def _config_path(chosen: str | os.PathLike[str]) -> Path:
    found = control_character(str(chosen))
    if found is not None:
        raise ConfigError(f"the config file's path must not contain a control character (found {found})")
    return Path(chosen).expanduser().absolute()


def _read_toml(config_path: Path) -> dict[str, Any]:
    try:
        text = read_config_text(config_path)
    except FileNotFoundError as error:
        raise ConfigError(
            f"config file {config_path} not found",
            hint="run `ae init` to write one here, or point --config / AE_CONFIG at one",
        ) from error
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: invalid TOML: {exc}") from exc


def _settings_table(raw: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """The file's `[settings]` table, with only known keys."""
    file_settings = raw.get("settings", {})
    if not isinstance(file_settings, dict):
        raise ConfigError(f"{config_path}: [settings] must be a table")
    unknown = set(file_settings) - set(SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(
            f"{config_path}: [settings] has unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(SETTINGS_BY_NAME)}"
        )
    return file_settings


def _setting_values(
    file_settings: dict[str, Any], env: Mapping[str, str], config_path: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each setting's value and where it came from: the environment, else the file, else its default."""
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
    return values, sources
