"""`load_config`: defaults, file values, AE_* overrides, sources, paths, and validation messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import write_config

from asyncevents_cli.config import DEFAULT_AMQP_URL, SETTINGS, EventDefinition, load_config
from asyncevents_cli.errors import ConfigError, InputError
from asyncevents_cli.redaction import redact_url

DEFAULTS = {
    "database": ".ae/ae.db",
    "queue": "db",
    "amqp_url": DEFAULT_AMQP_URL,
    "max_deaths": 5,
    "backoff_exponent": 2.0,
    "backoff_max_seconds": 60.0,
    "backoff_unit_seconds": 1.0,
    "indexing": True,
    "index_path": "",
    "log_retention_days": 30,
    "deny_private_targets": False,
    "concurrency": 64,
    "subscription_concurrency": 32,
    "eventbridge_source": "ae",
    "cloudevents_source": "/ae",
    "metrics_port": 0,
    "metrics_host": "127.0.0.1",
    "metrics_public": False,
    "log_format": "text",
    "retry_after_max_seconds": 3600.0,
    "service_timeout_seconds": 30.0,
    "serve_max_body_bytes": 2 * 1024 * 1024,
    "serve_read_timeout_seconds": 15.0,
    "serve_search_seconds": 10.0,
    "circuit_failure_threshold": 10,
    "circuit_probe_seconds": 30.0,
    "disable_after_hours": 72.0,
}


def write(folder: Path, text: str, name: str = "events.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[events."sales.order.created"]\n')
    config = load_config(path, environ={})
    assert config.settings.as_dict() == DEFAULTS
    assert set(config.sources.values()) == {"default"}
    assert list(config.settings.as_dict()) == [s.name for s in SETTINGS]
    assert config.path == path
    assert config.database_path == tmp_path / ".ae" / "ae.db"
    policy = config.retry_policy
    assert (policy.max_deaths, policy.exponent, policy.max_seconds, policy.unit_seconds) == (5, 2.0, 60.0, 1.0)


def test_an_empty_file_is_a_valid_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.events == {}
    assert config.settings.as_dict() == DEFAULTS


def test_events(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        events={
            "sales.order.created": {"description": "An order was placed", "service": "json:dumps"},
            "customer-created_v2": {},
        },
    )
    config = load_config(path, environ={})
    assert config.events == {
        "sales.order.created": EventDefinition("sales.order.created", "An order was placed", "json:dumps"),
        "customer-created_v2": EventDefinition("customer-created_v2", "", None),
    }
    assert config.event("sales.order.created").resolve_service() is __import__("json").dumps
    assert config.event("customer-created_v2").resolve_service() is None


def test_file_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[settings]
database = "data/events.db"
queue = "amqp"
amqp_url = "amqp://u:p@rabbit:5672/shop"
max_deaths = 2
backoff_exponent = 3      # an int is accepted for a float
backoff_max_seconds = 30.5
backoff_unit_seconds = 0.5
indexing = false
index_path = "/var/cache/ae/index"
log_retention_days = 7
deny_private_targets = true
concurrency = 128
subscription_concurrency = 8
eventbridge_source = "shop.example"
cloudevents_source = "https://shop.example/ae"
metrics_port = 9464
metrics_host = "0.0.0.0"
metrics_public = true
log_format = "json"
retry_after_max_seconds = 600
service_timeout_seconds = 2.5
serve_max_body_bytes = 4096
serve_read_timeout_seconds = 2
serve_search_seconds = 0.5
circuit_failure_threshold = 5
circuit_probe_seconds = 10
disable_after_hours = 24
""",
    )
    config = load_config(path, environ={})
    assert config.settings.as_dict() == {
        "database": "data/events.db",
        "queue": "amqp",
        "amqp_url": "amqp://u:p@rabbit:5672/shop",
        "max_deaths": 2,
        "backoff_exponent": 3.0,
        "backoff_max_seconds": 30.5,
        "backoff_unit_seconds": 0.5,
        "indexing": False,
        "index_path": "/var/cache/ae/index",
        "log_retention_days": 7,
        "deny_private_targets": True,
        "concurrency": 128,
        "subscription_concurrency": 8,
        "eventbridge_source": "shop.example",
        "cloudevents_source": "https://shop.example/ae",
        "metrics_port": 9464,
        "metrics_host": "0.0.0.0",
        "metrics_public": True,
        "log_format": "json",
        "retry_after_max_seconds": 600.0,
        "service_timeout_seconds": 2.5,
        "serve_max_body_bytes": 4096,
        "serve_read_timeout_seconds": 2.0,
        "serve_search_seconds": 0.5,
        "circuit_failure_threshold": 5,
        "circuit_probe_seconds": 10.0,
        "disable_after_hours": 24.0,
    }
    assert isinstance(config.settings.backoff_exponent, float)
    assert set(config.sources.values()) == {"file"}


def test_env_overrides_the_file_with_type_coercion(tmp_path: Path) -> None:
    path = write_config(tmp_path, max_deaths=3, backoff_exponent=1.5, indexing=True)
    env = {
        "AE_MAX_DEATHS": "7",
        "AE_BACKOFF_EXPONENT": "2.5",
        "AE_BACKOFF_MAX_SECONDS": "10",
        "AE_INDEXING": "false",
        "AE_LOG_RETENTION_DAYS": " 14 ",
        "AE_QUEUE": "amqp",
        "AE_CONCURRENCY": "32",
        "UNRELATED": "x",
    }
    config = load_config(path, environ=env)
    s = config.settings
    assert (s.max_deaths, s.backoff_exponent, s.backoff_max_seconds) == (7, 2.5, 10.0)
    assert type(s.max_deaths) is int and type(s.backoff_max_seconds) is float
    assert s.indexing is False
    assert s.log_retention_days == 14
    assert s.queue == "amqp"
    assert s.concurrency == 32
    assert config.sources == {
        "database": "default",
        "queue": "env AE_QUEUE",
        "amqp_url": "default",
        "max_deaths": "env AE_MAX_DEATHS",
        "backoff_exponent": "env AE_BACKOFF_EXPONENT",
        "backoff_max_seconds": "env AE_BACKOFF_MAX_SECONDS",
        "backoff_unit_seconds": "file",
        "indexing": "env AE_INDEXING",
        "index_path": "default",
        "log_retention_days": "env AE_LOG_RETENTION_DAYS",
        "deny_private_targets": "default",
        "concurrency": "env AE_CONCURRENCY",
        "subscription_concurrency": "default",
        "eventbridge_source": "default",
        "cloudevents_source": "default",
        "metrics_port": "default",
        "metrics_host": "default",
        "metrics_public": "default",
        "log_format": "default",
        "retry_after_max_seconds": "default",
        "service_timeout_seconds": "default",
        "serve_max_body_bytes": "default",
        "serve_read_timeout_seconds": "default",
        "serve_search_seconds": "default",
        "circuit_failure_threshold": "default",
        "circuit_probe_seconds": "default",
        "disable_after_hours": "default",
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_env_booleans(tmp_path: Path, text: str, expected: bool) -> None:
    config = load_config(write_config(tmp_path, indexing=not expected), environ={"AE_INDEXING": text})
    assert config.settings.indexing is expected


@pytest.mark.parametrize(
    "variable, value, kind",
    [
        ("AE_MAX_DEATHS", "abc", "int"),
        ("AE_MAX_DEATHS", "2.5", "int"),
        ("AE_MAX_DEATHS", "", "int"),
        ("AE_BACKOFF_EXPONENT", "fast", "float"),
        ("AE_INDEXING", "maybe", "bool"),
        ("AE_INDEXING", "2", "bool"),
        ("AE_LOG_RETENTION_DAYS", "a week", "int"),
    ],
)
def test_bad_env_values_name_the_variable(tmp_path: Path, variable: str, value: str, kind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path), environ={variable: value})
    message = str(caught.value)
    setting = variable.removeprefix("AE_").lower()
    assert message == f"environment {variable}: {setting} must be {kind}, got {value!r}"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "variable, value, fragment",
    [
        ("AE_QUEUE", "kafka", "queue must be one of db, amqp, got 'kafka'"),
        ("AE_MAX_DEATHS", "-1", "max_deaths must be between 0 and 1000, got -1"),
        ("AE_BACKOFF_UNIT_SECONDS", "-0.5", "backoff_unit_seconds must be between 0 and 3600, got -0.5"),
        ("AE_BACKOFF_EXPONENT", "nan", "backoff_exponent must be a finite number, got nan"),
        ("AE_CONCURRENCY", "0", "concurrency must be between 1 and 10000, got 0"),
        ("AE_SUBSCRIPTION_CONCURRENCY", "100000", "subscription_concurrency must be between 1 and 10000, got 100000"),
        ("AE_DATABASE", "", "database must not be empty"),
    ],
)
def test_invalid_env_values_name_the_variable(tmp_path: Path, variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path), environ={variable: value})
    assert str(caught.value) == f"environment {variable}: {fragment}"


def test_database_path_is_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_config(project, database="data/ae.db")
    assert load_config(path, environ={}).database_path == project / "data" / "ae.db"
    # A relative --config is taken from the working directory, the database from the file's folder.
    assert load_config("../project/events.toml", environ={}).database_path == (
        elsewhere / ".." / "project" / "data" / "ae.db"
    )
    absolute = tmp_path / "abs.db"
    assert load_config(path, environ={"AE_DATABASE": str(absolute)}).database_path == absolute
    home = load_config(path, environ={"AE_DATABASE": "~/ae.db"}).database_path
    assert home == Path("~/ae.db").expanduser() and home.is_absolute()


def test_default_file_is_events_toml_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, events={"here.event": {}})
    config = load_config(None, environ={})
    assert config.path == tmp_path / "events.toml"
    assert list(config.events) == ["here.event"]


def test_ae_config_chooses_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, events={"cwd.event": {}})
    other = write(tmp_path, '[events."other.event"]\n', name="other.toml")
    config = load_config(None, environ={"AE_CONFIG": str(other)})
    assert config.path == other
    assert list(config.events) == ["other.event"]
    assert config.sources["max_deaths"] == "default"  # AE_CONFIG is not a setting


def test_config_argument_beats_ae_config(tmp_path: Path) -> None:
    chosen = write(tmp_path, '[events."chosen.event"]\n', name="chosen.toml")
    other = write(tmp_path, '[events."other.event"]\n', name="other.toml")
    config = load_config(chosen, environ={"AE_CONFIG": str(other)})
    assert config.path == chosen
    assert list(config.events) == ["chosen.event"]


def test_ae_config_is_read_from_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, events={"env.event": {}})
    monkeypatch.setenv("AE_CONFIG", str(path))
    monkeypatch.setenv("AE_MAX_DEATHS", "9")
    config = load_config()
    assert config.path == path
    assert config.settings.max_deaths == 9


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.toml", environ={})
    assert str(caught.value) == f"config file {tmp_path / 'missing.toml'} not found"
    assert caught.value.hint and "AE_CONFIG" in caught.value.hint


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={})
    assert str(tmp_path) in str(caught.value)


# Each case: the file's text and what the message must name (besides the file).
INVALID = [
    pytest.param('[events."a"\n', ["invalid TOML", "line 1"], id="malformed-toml"),
    pytest.param("events = 3\n", ["[events] must be a table"], id="events-not-a-table"),
    pytest.param('[events]\n"a" = 3\n', ['[events."a"] must be a table'], id="event-not-a-table"),
    pytest.param('[events."sales order!"]\n', ["invalid event name 'sales order!'"], id="event-name-space"),
    pytest.param('[events."a/b"]\n', ["invalid event name 'a/b'"], id="event-name-slash"),
    pytest.param('[events.""]\n', ["invalid event name ''"], id="event-name-empty"),
    pytest.param(
        '[events."a"]\ndescripton = "x"\n',
        ['[events."a"]', "descripton", "allowed: description, service"],
        id="unknown-event-key",
    ),
    pytest.param(
        '[events."a"]\ndescription = 3\n', ['[events."a"]', "description must be a string"], id="description-not-string"
    ),
    pytest.param(
        '[events."a"]\nservice = "no colon"\n', ['[events."a"]', "service must look like"], id="service-format"
    ),
    pytest.param('[events."a"]\nservice = 3\n', ['[events."a"]', "service must look like"], id="service-type"),
    pytest.param("settings = 3\n", ["[settings] must be a table"], id="settings-not-a-table"),
    pytest.param("[settings]\nmax_death = 3\n", ["[settings]", "max_death", "allowed:"], id="unknown-setting"),
    pytest.param(
        "[subscriptions]\n", ["unknown top-level key(s) subscriptions", "allowed: events, settings"], id="unknown-table"
    ),
    pytest.param('title = "x"\n', ["unknown top-level key(s) title"], id="unknown-top-level-key"),
    pytest.param('[settings]\nqueue = "kafka"\n', ["queue must be one of db, amqp, got 'kafka'"], id="queue-kafka"),
    pytest.param(
        "[settings]\nmax_deaths = -1\n", ["max_deaths must be between 0 and 1000, got -1"], id="negative-max-deaths"
    ),
    pytest.param("[settings]\nmax_deaths = 2.5\n", ["max_deaths must be int, got 2.5"], id="float-for-int"),
    pytest.param("[settings]\nmax_deaths = true\n", ["max_deaths must be int, got True"], id="bool-for-int"),
    pytest.param('[settings]\nmax_deaths = "3"\n', ["max_deaths must be int, got '3'"], id="string-for-int"),
    pytest.param('[settings]\nindexing = "yes"\n', ["indexing must be bool, got 'yes'"], id="string-for-bool"),
    pytest.param("[settings]\nindexing = 1\n", ["indexing must be bool, got 1"], id="int-for-bool"),
    pytest.param(
        "[settings]\nbackoff_exponent = -2\n", ["backoff_exponent must be between 0 and 10"], id="negative-exponent"
    ),
    pytest.param("[settings]\nbackoff_max_seconds = nan\n", ["backoff_max_seconds must be a finite number"], id="nan"),
    pytest.param(
        '[settings]\nbackoff_unit_seconds = "fast"\n', ["backoff_unit_seconds must be float"], id="string-for-float"
    ),
    pytest.param(
        '[settings]\neventbridge_source = ""\n', ["eventbridge_source must be 1 to 256"], id="empty-eventbridge-source"
    ),
    pytest.param(
        "[settings]\nlog_retention_days = -3\n",
        ["log_retention_days must be between 0 and 36500"],
        id="negative-retention",
    ),
    pytest.param('[settings]\ndatabase = ""\n', ["database must not be empty"], id="empty-database"),
    pytest.param("[settings]\ndatabase = 3\n", ["database must be str"], id="database-not-string"),
]


@pytest.mark.parametrize("text, fragments", INVALID)
def test_validation_errors_name_the_file_and_the_key(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_an_env_override_does_not_hide_a_bad_file(tmp_path: Path) -> None:
    """The file is validated whole, even for keys the environment overrides."""
    path = write(tmp_path, "[settings]\nmax_death = 3\n")
    with pytest.raises(ConfigError, match="max_death"):
        load_config(path, environ={"AE_MAX_DEATHS": "3"})


def test_an_env_override_replaces_a_bad_file_value_without_reading_it(tmp_path: Path) -> None:
    path = write(tmp_path, '[settings]\nqueue = "kafka"\n')
    assert load_config(path, environ={"AE_QUEUE": "db"}).settings.queue == "db"


def test_event_lookup(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path), environ={})
    assert config.event("sales.order.created").description == "An order was placed"
    with pytest.raises(InputError) as caught:
        config.event("catalog.product.saved")
    assert str(caught.value) == f"event 'catalog.product.saved' is not defined in {config.path}"
    assert caught.value.hint and "ae events list" in caught.value.hint
    with pytest.raises(InputError) as misspelt:
        config.event("sales.ordr.created")
    assert misspelt.value.hint == "did you mean 'sales.order.created'?"
    with pytest.raises(InputError, match="invalid event name 'sales order!'"):
        config.event("sales order!")
    with pytest.raises(InputError, match="invalid event name ''"):
        config.event("")


def test_unimportable_service_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        events={
            "a": {"service": "no_such_module_xyz:build"},
            "b": {"service": "json:no_such_function"},
            "c": {"service": "json:__name__"},
        },
    )
    config = load_config(path, environ={})
    with pytest.raises(ConfigError, match="event 'a': cannot import service 'no_such_module_xyz:build'"):
        config.event("a").resolve_service()
    with pytest.raises(ConfigError, match="event 'b': cannot import service 'json:no_such_function'"):
        config.event("b").resolve_service()
    with pytest.raises(ConfigError, match="event 'c': service .* is not callable"):
        config.event("c").resolve_service()


@pytest.mark.parametrize(
    "url, shown",
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("amqp://user@host/v", "amqp://user@host/v"),
        ("amqp://host/v", "amqp://host/v"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url, keep_user=True) == shown


@pytest.mark.parametrize(
    "name, value",
    [
        ("AE_BACKOFF_MAX_SECONDS", "inf"),
        ("AE_BACKOFF_UNIT_SECONDS", "inf"),
        ("AE_BACKOFF_EXPONENT", "1e308"),
        ("AE_BACKOFF_EXPONENT", "-inf"),
    ],
)
def test_float_settings_must_be_finite_and_bounded(tmp_path: Path, name: str, value: str) -> None:
    """Infinity once meant "no cap" and overflowed later, in the consumer (issue 7)."""
    with pytest.raises(ConfigError, match=name.removeprefix("AE_").lower()):
        load_config(write_config(tmp_path), environ={name: value})


def test_settings_are_typed_and_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[settings]\nmax_deaths = 3\n"), environ={})
    assert config.settings.max_deaths == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settings.max_deaths = 4  # type: ignore[misc]
    assert [(s.name, s.kind) for s in SETTINGS][:4] == [
        ("database", str),
        ("queue", str),
        ("amqp_url", str),
        ("max_deaths", int),
    ]
    assert {s.kind for s in SETTINGS} == {str, int, float, bool}


def test_an_unknown_ae_variable_gets_one_warning_naming_the_nearest_known_one(tmp_path: Path) -> None:
    """Issue 18: a typo such as AE_MAX_DEATH used to be ignored silently."""
    from conftest import ae, ok

    from asyncevents_cli.config import SETTINGS_BY_NAME
    from asyncevents_cli.config_input import unknown_variables

    config = write_config(tmp_path)
    result = ok(config, "events", "list", env={"AE_MAX_DEATH": "3"})
    assert result.stderr.splitlines() == [
        "ae: warning: AE_MAX_DEATH is not an ae setting and is ignored; did you mean AE_MAX_DEATHS?"
    ]
    assert "sales.order.created" in result.stdout
    quiet = ae(config, "events", "list", env={"AE_MAX_DEATHS": "3", "AE_DEBUG": "0", "AE_REQUIRE_AMQP": "1"})
    assert quiet.exit_code == 0 and quiet.stderr == ""
    warnings = unknown_variables(
        {"AE_DATABSE": "x", "AE_SECRETKEY": "k", "AE_ZZZZZZZZZZZZZ": "1", "HOME": "/", "AE_QUEUE": "db"},
        SETTINGS_BY_NAME,
    )
    assert [w.split(" is not")[0] for w in warnings] == [
        "ae: warning: AE_DATABSE",
        "ae: warning: AE_SECRETKEY",
        "ae: warning: AE_ZZZZZZZZZZZZZ",
    ]
    assert "did you mean AE_DATABASE?" in warnings[0] and "did you mean AE_SECRET_KEY?" in warnings[1]
    assert "known: AE_AMQP_URL" in warnings[2]


def test_toml_numbers_keep_toml_syntax_and_the_environment_takes_ascii_digits_only(tmp_path: Path) -> None:
    """`5_0` is a TOML integer (the file's own grammar); in AE_* it is refused, as `５` is."""
    config = tmp_path / "events.toml"
    config.write_text("[settings]\nmax_deaths = 5_0\n")
    assert load_config(config, environ={}).settings.max_deaths == 50
    assert load_config(config, environ={"AE_MAX_DEATHS": " 7 "}).settings.max_deaths == 7
    assert load_config(config, environ={"AE_BACKOFF_EXPONENT": "1.5e0"}).settings.backoff_exponent == 1.5
    for text in ("\uff15", "5_0", "\u0665", "1\u00a0", "0x5", "5.0"):
        with pytest.raises(ConfigError, match="max_deaths must be int"):
            load_config(config, environ={"AE_MAX_DEATHS": text})
