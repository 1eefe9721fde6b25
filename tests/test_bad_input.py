"""The bad-input catalogue (issue 7): every case is refused with its documented exit
code and exactly one line on stderr, and changes nothing.

Three families share one populated store (a subscription, a logged attempt, a
queued retry and trigger, a search index and a key file), snapshotted before and
after each case:
- command lines (publish, subscribe, subscriptions, logs, search, replay, ...);
- configuration (AE_* variables and events.toml files pointing at that store);
- raw queue messages, in `RAW_TRIGGERS` / `RAW_RETRIES`: those are not refused
  but parked with their reason, and the consumer goes on (tested on both backends
  in `test_parked_messages.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import ae, ok, write_config
from test_cli import EVENT

UUID = "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
DEEP = "[" * 100_000 + "]" * 100_000
TOO_DEEP_OBJECT = '{"a":' + "[" * 200 + "]" * 200 + "}"


@pytest.fixture(scope="module")
def store_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one of everything: a subscription, a failed attempt, a queued
    retry and trigger, a search index and a key file."""
    folder = tmp_path_factory.mktemp("catalogue")
    config = write_config(folder, backoff_unit_seconds=60.0)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s3cret")
    ok(config, "publish", EVENT, "--data", '{"increment_id": "1"}')
    ok(config, "consume", "trigger", "--max-messages", "1")  # refused: logged, retry queued
    ok(config, "publish", EVENT, "--data", '{"increment_id": "2"}')
    ok(config, "search", "increment_id")  # builds the index
    return folder


def snapshot(folder: Path) -> dict[str, Any]:
    """Every row of every table, and the files beside the database."""
    database = folder / ".ae" / "ae.db"
    conn = sqlite3.connect(database)
    try:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        rows = {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        conn.close()
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (folder / ".ae").iterdir()
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
    return {
        "rows": rows,
        "files": files,
        "index": sorted(p.name for p in (folder / ".ae" / "ae.db.index").iterdir()),
        "beside the config": sorted(p.name for p in folder.iterdir()),  # e.g. a database named with a newline
    }


def assert_refused(result: Any, exit_code: int, fragment: str = "") -> None:
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ae: error: "), lines[0]
    assert "Traceback" not in result.stderr and "unexpected error" not in lines[0]
    assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    assert result.stdout == ""


# -- command lines -----------------------------------------------------------------

LONG_URL = "http://example.com/" + "a" * 3000
COMMANDS = [
    # publish: data
    (["publish", EVENT, "--data", '{"a": NaN}'], 2, "NaN"),
    (["publish", EVENT, "--data", '{"a": Infinity}'], 2, "Infinity"),
    (["publish", EVENT, "--data", '{"a": -Infinity}'], 2, "Infinity"),
    (["publish", EVENT, "--data", '{"a": 1e400}'], 2, "too large"),
    (["publish", EVENT, "--data", '{"a": -1e999}'], 2, "too large"),
    (["publish", EVENT, "--data", "[1, 2]"], 2, "JSON object"),
    (["publish", EVENT, "--data", '"text"'], 2, "JSON object"),
    (["publish", EVENT, "--data", "null"], 2, "JSON object"),
    (["publish", EVENT, "--data", DEEP], 2, "nested deeper"),
    (["publish", EVENT, "--data", TOO_DEEP_OBJECT], 2, "nested deeper"),
    (["publish", EVENT, "--data", '{"a": "\\ud800"}'], 2, "surrogate"),
    (["publish", EVENT, "--data", '{"\\udfff": 1}'], 2, "surrogate"),
    (["publish", EVENT, "--data", '{"a": ["x\\udbff"]}'], 2, "surrogate"),
    (["publish", EVENT, "--data", '{"a": 1'], 2, "not valid JSON"),
    (["publish", EVENT, "--data", '{"a": 1}{"b": 2}'], 2, "not valid JSON"),
    (["publish", EVENT, "--data", '{"a": ' + "9" * 5000 + "}"], 2, "not valid JSON"),
    (["publish", EVENT, "--data", "{'a': 1}"], 2, "not valid JSON"),
    (["publish", EVENT, "--data", '{"a": "' + "x" * (1024 * 1024) + '"}'], 2, "larger than"),
    (["publish", EVENT, "--data", "{}", "--data-file", "x.json"], 2, "once"),
    (["publish", EVENT, "--data-file", "/nonexistent/data.json"], 2, "cannot read"),
    (["publish", EVENT, "--batch", "/nonexistent/batch.jsonl"], 2, "cannot read"),
    (["publish", EVENT, "--batch", "b.jsonl", "--data", "{}"], 2, "--batch"),
    (["publish", EVENT, "x"], 2, "unexpected argument"),
    # publish: store id and event
    (["publish", EVENT, "--store", "1180591620717411303424"], 2, "store id"),
    (["publish", EVENT, "--store", "2147483648"], 2, "store id"),
    (["publish", EVENT, "--store", "-1"], 2, "store id"),
    (["publish", EVENT, "--store", "one"], 2, "--store"),
    (["publish", "customer.deleted"], 2, "not defined"),
    (["publish", "bad name!"], 2, "invalid event name"),
    (["publish", ""], 2, "invalid event name"),
    # subscribe: URLs the HTTP client would refuse
    (["subscribe", EVENT, "http://a\r\nb.example/x"], 2, "control character"),
    (["subscribe", EVENT, "http://example.com/a\r\nX-Injected: 1"], 2, "control character"),
    (["subscribe", EVENT, "http://example.com/\x00"], 2, "control character"),
    (["subscribe", EVENT, "http://exa mple.com/"], 2, "whitespace"),
    (["subscribe", EVENT, "http://example.com/a\tb"], 2, "whitespace"),
    (["subscribe", EVENT, "http://xn--invalid--.example/x"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://[::1/x"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://[::1"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://[v1.x]/"], 2, "not a valid IPv6 address"),
    (["subscribe", EVENT, "ftp://example.com/"], 2, "http or https"),
    (["subscribe", EVENT, "javascript:alert(1)"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://"], 2, "recipient URL"),
    (["subscribe", EVENT, "//example.com/x"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://example.com:99999/"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://example.com:0/"], 2, "port 0"),
    (["subscribe", EVENT, "http://example.com:-1/"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://300.1.1.1/"], 2, "not a valid IPv4 address"),
    # subscribe: rate limits (ASCII digits, /s or /m, 1..1000000)
    (["subscribe", EVENT, "http://example.com/", "--rate-limit", "50"], 2, "rate limit must look like 50/s"),
    (["subscribe", EVENT, "http://example.com/", "--rate-limit", "50/h"], 2, "rate limit must look like 50/s"),
    (["subscribe", EVENT, "http://example.com/", "--rate-limit", "５0/s"], 2, "rate limit must look like 50/s"),
    (["subscribe", EVENT, "http://example.com/", "--rate-limit", "0/s"], 2, "between 1 and 1000000"),
    (["subscriptions", "update", "1", "--rate-limit", "fast"], 2, "rate limit must look like 50/s"),
    (["subscribe", EVENT, "http://\u2603.net/"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://-bad.example/"], 2, "domain name"),
    (["subscribe", EVENT, "http://a..b.example/"], 2, "recipient URL"),
    (["subscribe", EVENT, "http://" + "a" * 64 + ".example/"], 2, "domain name"),
    (["subscribe", EVENT, LONG_URL], 2, "longer than"),
    (["subscribe", EVENT, ""], 2, "empty"),
    # subscribe: the SSRF guard, always on
    (["subscribe", EVENT, "http://169.254.169.254/latest/meta-data/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://169.254.1.1:8080/hook"], 2, "link-local"),
    (["subscribe", EVENT, "http://[fe80::1]/hook"], 2, "link-local"),
    (["subscribe", EVENT, "http://[fd00:ec2::254]/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://[::ffff:169.254.169.254]/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://2852039166/"], 2, "169.254.169.254"),
    # issue 18: IPv6 forms that carry the metadata address
    (["subscribe", EVENT, "http://[::a9fe:a9fe]/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://[64:ff9b::a9fe:a9fe]/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://[2002:a9fe:a9fe::1]/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://[2001:0:4136:e378:8000:63bf:5601:5601]/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://alice:pa55word@exa mple/"], 2, "***@exa"),  # redacted in the error
    (["subscribe", EVENT, "http://metadata.google.internal/computeMetadata/v1/"], 2, "cloud-metadata"),
    (["subscribe", EVENT, "http://METADATA.google.internal./"], 2, "cloud-metadata"),
    # subscribe: secrets, store, notifier, event
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret", ""], 2, "--secret"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret", "   "], 2, "--secret"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret", "a\nb"], 2, "--secret"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret", "x" * 5000], 2, "--secret"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret-file", "/nonexistent/secret"], 2, "cannot read"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret", "a", "--secret-file", "f"], 2, "once"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--store", "-1"], 2, "store id"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--store", "2147483648"], 2, "store id"),
    (["subscribe", EVENT, "http://127.0.0.1:9/x", "--notifier", "pigeon"], 2, "unknown notifier"),
    (["subscribe", "customer.deleted", "http://127.0.0.1:9/x"], 2, "not defined"),
    # subscriptions
    (["subscriptions", "show", "999"], 1, "no subscription"),
    (["subscriptions", "show", "abc"], 2, "subscription_id"),
    (["subscriptions", "enable", "1", "999"], 1, "no subscription"),
    (["subscriptions", "disable", "999"], 1, "no subscription"),
    (["subscriptions", "delete", "999"], 1, "no subscription"),
    (["subscriptions", "delete", "99999999999999999999999"], 1, "no subscription"),
    (["subscriptions", "list", "--event", "bad name!"], 2, "invalid event name"),
    # logs, trace, replay
    (["logs", "prune", "--older-than", "1e12"], 2, "--older-than"),
    (["logs", "prune", "--older-than", "inf"], 2, "--older-than"),
    (["logs", "prune", "--older-than", "nan"], 2, "--older-than"),
    (["logs", "prune", "--older-than", "-1"], 2, "--older-than"),
    (["logs", "--limit", "0"], 2, "--limit"),
    (["logs", "--event", "bad name!"], 2, "invalid event name"),
    (["trace", UUID], 1, "no delivery"),
    (["replay", UUID], 1, "no delivery"),
    (["replay", "--query", "*:*", "--yes"], 2, "*:*"),
    (["replay", "--query", "((", "--yes"], 2, "malformed query"),
    # search
    (["search", "*:*"], 2, "*:*"),
    (["search", "(("], 2, "malformed query"),
    (["search", "data:"], 2, "malformed query"),
    (["search", 'success:""'], 2, "malformed query"),
    (["search", "increment_id", "--limit", "0"], 2, "--limit"),
    (["search", "increment_id", "--offset", "-1"], 2, "--offset"),
    # inspection
    (["deadletters", "--limit", "0"], 2, "--limit"),
    (["deadletters", "purge", "--before", "nope", "--yes"], 2, "--before"),
    (["deadletters", "purge", "--before", "2026-13-45", "--yes"], 2, "--before"),
    (["consume", "all", "--max-messages", "0"], 2, "--max-messages"),
    # issue 23: the consumer's options out of range are refused, never clamped
    (["consume", "all", "--max-messages", "-1"], 2, "--max-messages"),
    (["consume", "all", "--concurrency", "0"], 2, "--concurrency"),
    (["consume", "trigger", "--concurrency", "-5"], 2, "--concurrency"),
    (["consume", "retry", "--concurrency", "10001"], 2, "--concurrency"),
    (["consume", "all", "--metrics-port", "65536"], 2, "--metrics-port"),
    (["consume", "all", "--metrics-port", "0"], 2, "--metrics-port"),
    (["consume", "nothing"], 2, "nothing"),
]


@pytest.mark.parametrize(
    "args, exit_code, fragment", COMMANDS, ids=[f"{n}-{' '.join(a[:2])}" for n, (a, _c, _f) in enumerate(COMMANDS)]
)
def test_bad_command_line(store_folder: Path, args: list[str], exit_code: int, fragment: str) -> None:
    before = snapshot(store_folder)
    assert_refused(ae(store_folder / "events.toml", *args), exit_code, fragment)
    assert snapshot(store_folder) == before


# -- configuration -----------------------------------------------------------------

ENVIRONMENTS = [
    ({"AE_BACKOFF_UNIT_SECONDS": "inf"}, "backoff_unit_seconds"),
    ({"AE_BACKOFF_UNIT_SECONDS": "nan"}, "backoff_unit_seconds"),
    ({"AE_BACKOFF_UNIT_SECONDS": "7200"}, "backoff_unit_seconds"),
    ({"AE_BACKOFF_EXPONENT": "1e308"}, "backoff_exponent"),
    ({"AE_BACKOFF_EXPONENT": "-inf"}, "backoff_exponent"),
    ({"AE_BACKOFF_MAX_SECONDS": "-1"}, "backoff_max_seconds"),
    ({"AE_BACKOFF_MAX_SECONDS": "1e400"}, "backoff_max_seconds"),
    ({"AE_BACKOFF_UNIT_SECONDS": "3600", "AE_BACKOFF_MAX_SECONDS": "1000"}, "30 days"),
    ({"AE_MAX_DEATHS": "1001"}, "max_deaths"),
    ({"AE_MAX_DEATHS": "1.5"}, "max_deaths"),
    ({"AE_MAX_DEATHS": "99999999999999999999999"}, "max_deaths"),
    ({"AE_MAX_DEATHS": ""}, "max_deaths"),
    ({"AE_AMQP_URL": "notaurl"}, "amqp_url"),
    ({"AE_AMQP_URL": "http://rabbit/"}, "amqp_url"),
    ({"AE_AMQP_URL": "amqp://"}, "amqp_url"),
    ({"AE_AMQP_URL": "amqp://rabbit:99999/"}, "amqp_url"),
    ({"AE_AMQP_URL": "amqp://rabbit:port/"}, "amqp_url"),
    ({"AE_AMQP_URL": "amqp://ra bbit/"}, "amqp_url"),
    ({"AE_QUEUE": "kafka"}, "queue"),
    ({"AE_INDEXING": "maybe"}, "indexing"),
    ({"AE_DENY_PRIVATE_TARGETS": "perhaps"}, "deny_private_targets"),
    ({"AE_LOG_RETENTION_DAYS": "99999"}, "log_retention_days"),
    ({"AE_LOG_RETENTION_DAYS": "-1"}, "log_retention_days"),
    ({"AE_DATABASE": ""}, "database"),
    ({"AE_SECRET_KEY": "not-a-fernet-key"}, "AE_SECRET_KEY"),
    # issue 18: numbers in ASCII digits only, no control characters in paths and URLs
    ({"AE_MAX_DEATHS": "\uff15"}, "max_deaths"),  # a full-width 5
    ({"AE_MAX_DEATHS": "5_0"}, "max_deaths"),
    ({"AE_CONCURRENCY": "\u0663"}, "concurrency"),  # an Arabic-Indic 3
    ({"AE_LOG_RETENTION_DAYS": "1_0"}, "log_retention_days"),
    ({"AE_BACKOFF_EXPONENT": "\uff12.0"}, "backoff_exponent"),
    ({"AE_BACKOFF_UNIT_SECONDS": "0x10"}, "backoff_unit_seconds"),
    ({"AE_BACKOFF_MAX_SECONDS": "1_000"}, "backoff_max_seconds"),
    ({"AE_DATABASE": "new\nline.db"}, "control character"),
    ({"AE_DATABASE": "tab\t.db"}, "control character"),
    ({"AE_INDEX_PATH": "index\rhere"}, "control character"),
    ({"AE_AMQP_URL": "amqp://rabbit/\x1b[31m"}, "control character"),
    ({"AE_EVENTBRIDGE_SOURCE": "ae\x7f"}, "control character"),
    ({"AE_DATABASE": "line\u2028separator.db"}, "control character"),
    ({"AE_SERVE_MAX_BODY_BYTES": "100"}, "serve_max_body_bytes"),
    ({"AE_SERVE_MAX_BODY_BYTES": "2MiB"}, "serve_max_body_bytes"),
    ({"AE_SERVE_READ_TIMEOUT_SECONDS": "0"}, "serve_read_timeout_seconds"),
    ({"AE_SERVE_SEARCH_SECONDS": "inf"}, "serve_search_seconds"),
    # issue 23: the consumer's settings out of range are refused, never clamped
    ({"AE_CONCURRENCY": "0"}, "concurrency"),
    ({"AE_CONCURRENCY": "10001"}, "concurrency"),
    ({"AE_SUBSCRIPTION_CONCURRENCY": "0"}, "subscription_concurrency"),
    ({"AE_SUBSCRIPTION_CONCURRENCY": "-1"}, "subscription_concurrency"),
    ({"AE_METRICS_PORT": "65536"}, "metrics_port"),
]


@pytest.mark.parametrize("env, fragment", ENVIRONMENTS, ids=[json.dumps(e) for e, _f in ENVIRONMENTS])
def test_bad_environment(store_folder: Path, env: dict[str, str], fragment: str) -> None:
    before = snapshot(store_folder)
    exit_code = 1 if "AE_SECRET_KEY" in env else 2  # a wrong key is an operational failure
    args = ["publish", EVENT, "--data", "{}"]
    if "AE_SECRET_KEY" in env:  # publishing needs no key: subscribing does
        args = ["subscribe", EVENT, "http://127.0.0.1:9/y"]
    result = ae(store_folder / "events.toml", *args, env=env)
    assert_refused(result, exit_code, fragment)
    assert snapshot(store_folder) == before


def test_a_wrong_secret_key_is_refused_before_signing(store_folder: Path) -> None:
    """A key that is a Fernet key but not this store's: exit 1 on consuming, and no
    request is made with a wrong signature."""
    from cryptography.fernet import Fernet

    before = snapshot(store_folder)
    env = {"AE_SECRET_KEY": Fernet.generate_key().decode()}
    assert_refused(
        ae(store_folder / "events.toml", "consume", "trigger", "--max-messages", "1", env=env), 1, "cannot decrypt"
    )
    assert snapshot(store_folder) == before


FILES = [
    ("[settings\n", "invalid TOML"),
    ("[kafka]\n", "unknown top-level"),
    ("[settings]\nmax_death = 3\n", "unknown key"),
    ('[settings]\nmax_deaths = "3"\n', "max_deaths"),
    ("[settings]\nmax_deaths = 9223372036854775807\n", "max_deaths"),
    ("[settings]\nbackoff_unit_seconds = inf\n", "backoff_unit_seconds"),
    ("[settings]\nbackoff_exponent = nan\n", "backoff_exponent"),
    ("[settings]\nbackoff_exponent = 1e308\n", "backoff_exponent"),
    ('[settings]\namqp_url = "notaurl"\n', "amqp_url"),
    ('[settings]\nqueue = "kafka"\n', "queue"),
    ("[settings]\nconcurrency = 0\n", "concurrency"),
    ("[settings]\nsubscription_concurrency = 100000\n", "subscription_concurrency"),
    ("[settings]\nindexing = 1\n", "indexing"),
    ('[settings]\ndeny_private_targets = "yes"\n', "deny_private_targets"),
    ('settings = "x"\n', "[settings]"),
    ('[events."bad name!"]\n', "invalid event name"),
    ('[events."x"]\ncolour = "red"\n', "unknown key"),
    ('[events."x"]\nservice = 3\n', "service"),
    ('[events."x"]\ndescription = 3\n', "description"),
    ("events = 3\n", "[events]"),
]


@pytest.mark.parametrize("text, fragment", FILES, ids=[t.strip()[:30] for t, _f in FILES])
def test_bad_config_file(store_folder: Path, text: str, fragment: str) -> None:
    """Each file names the catalogue's database, so a write would show in the snapshot."""
    folder = store_folder / "bad-config"
    folder.mkdir(exist_ok=True)
    database = json.dumps(str(store_folder / ".ae" / "ae.db"))
    path = folder / "events.toml"
    path.write_text(text if "settings" in text else text + f"\n[settings]\ndatabase = {database}\n")
    if "[settings]\n" in text and "database" not in text:
        path.write_text(text.replace("[settings]\n", f"[settings]\ndatabase = {database}\n", 1))
    before = snapshot(store_folder)
    assert_refused(ae(path, "publish", EVENT, "--data", "{}"), 2, fragment)
    assert snapshot(store_folder) == before


CONFIG_PATHS = [
    ("/dev/zero", "not a regular file"),
    ("/dev/null", "not a regular file"),
    (".", "not a regular file"),
    ("new\nline.toml", "control character"),
]


@pytest.mark.parametrize("chosen, fragment", CONFIG_PATHS)
def test_a_config_path_that_is_not_a_small_regular_file_is_refused_at_once(
    store_folder: Path, chosen: str, fragment: str
) -> None:
    """Issue 18: AE_CONFIG=/dev/zero read forever; now exit 2 at once, from the variable
    as from --config."""
    import time

    before = snapshot(store_folder)
    for result in (
        ae(Path(chosen), "publish", EVENT, "--data", "{}"),
        runner_without_config("publish", EVENT, "--data", "{}", env={"AE_CONFIG": chosen}),
    ):
        assert_refused(result, 2, fragment)
    assert snapshot(store_folder) == before
    fifo = store_folder / "fifo.toml"
    os.mkfifo(fifo)
    try:
        started = time.monotonic()
        assert_refused(ae(fifo, "publish", EVENT, "--data", "{}"), 2, "not a regular file")
        assert time.monotonic() - started < 5  # opening a FIFO would block forever
    finally:
        fifo.unlink()


def test_a_config_file_too_large_is_refused(store_folder: Path) -> None:
    from asyncevents_cli.config_input import MAX_CONFIG_BYTES

    big = store_folder / "big" / "events.toml"
    big.parent.mkdir(exist_ok=True)
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    before = snapshot(store_folder)
    assert_refused(ae(big, "publish", EVENT, "--data", "{}"), 2, "larger than")
    assert snapshot(store_folder) == before


def runner_without_config(*args: str, env: dict[str, str]) -> Any:
    from conftest import runner

    from asyncevents_cli.cli import app

    return runner.invoke(app, list(args), env=env)


# -- raw queue messages: parked with the reason, never a crash ----------------------

RAW_TRIGGERS = [
    (b"", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"not json", "not valid JSON"),
    (b"{}", "must be [event_name"),
    (b"[]", "must be [event_name"),
    (b'["sales.order.created"]', "must be [event_name"),
    (b'[1, "{}", 0]', "must be [event_name"),
    (b'["sales.order.created", "{}", 1e400]', "too large"),
    (b'["sales.order.created", "{}", 18446744073709551616]', "store id"),
    (b'["sales.order.created", "{}", 1180591620717411303424]', "store id"),
    (b'["sales.order.created", "{}", -1]', "store id"),
    (b'["sales.order.created", "{}", 1.5]', "store id"),
    (b'["sales.order.created", "{}", "1e3"]', "store id"),
    (b'["sales.order.created", "{}", true]', "store id"),
    (b'["sales.order.created", "{\\"a\\": NaN}", 0]', "NaN"),
    (b'["sales.order.created", {"a": Infinity}, 0]', "Infinity"),
    (b'["sales.order.created", "{\\"a\\": \\"\\\\ud800\\"}", 0]', "surrogate"),
    (b'["sales.order.created", "[1]", 0]', "JSON object"),
    (b'["sales.order.created", "{", 0]', "not valid JSON"),
    (DEEP.encode(), "nested deeper"),
    (b'["sales.order.created", "' + b"[" * 5000 + b'", 0]', "nested deeper"),
    (b'["customer.deleted", "{}", 0]', "not defined"),
    (b'["bad name!", "{}", 0]', "invalid event name"),
]
RAW_RETRIES = [
    (b"[]", "JSON object"),
    (b"{}", "lacks"),
    (b'{"subscription_id": 1e400, "death_count": 1, "content": "{}", "uuid": "%s"}', "too large"),
    (b'{"subscription_id": 1.0, "death_count": 1, "content": "{}", "uuid": "%s"}', "subscription_id"),
    (b'{"subscription_id": 99999999999999999999, "death_count": 1, "content": "{}", "uuid": "%s"}', "subscription_id"),
    (b'{"subscription_id": 0, "death_count": 1, "content": "{}", "uuid": "%s"}', "subscription_id"),
    (b'{"subscription_id": 1, "death_count": -5, "content": "{}", "uuid": "%s"}', "death_count"),
    (b'{"subscription_id": 1, "death_count": "x", "content": "{}", "uuid": "%s"}', "death_count"),
    (b'{"subscription_id": 1, "death_count": null, "content": "{}", "uuid": "%s"}', "death_count"),
    (b'{"subscription_id": 1, "death_count": 1, "content": "{}", "uuid": null}', "uuid"),
    (b'{"subscription_id": 1, "death_count": 1, "content": "{}", "uuid": 5}', "uuid"),
    (b'{"subscription_id": 1, "death_count": 1, "content": "{}", "uuid": "not-a-uuid"}', "uuid"),
    (b'{"subscription_id": 1, "death_count": 1, "content": {"a": 1}, "uuid": "%s"}', "content"),
    (b'{"subscription_id": 1, "death_count": 1, "content": "{\\"a\\": NaN}", "uuid": "%s"}', "NaN"),
    (b'{"subscription_id": 1, "death_count": 1, "content": "{", "uuid": "%s"}', "not valid JSON"),
    (b'{"subscription_id": 1, "death_count": 1, "content": "\\"\\\\udc00\\"", "uuid": "%s"}', "surrogate"),
]


def _raw(body: bytes) -> bytes:
    return body.replace(b"%s", UUID.encode()) if b"%s" in body else body
