"""`ae subscribe --signature/--header`, `ae subscriptions rotate-secret|set-headers`, and the
store migration that added their columns: real CLI, real SQLite, real receiver."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import EVENT, ORDER, Receiver, ae, assert_error, db_path, expected_signature, ok, ok_json
from standardwebhooks import Webhook

TOKEN_VALUE = "Bearer tok-7f3a9c"


def subscriptions_table(config: Path) -> list[tuple]:
    with sqlite3.connect(db_path(config)) as conn:
        return conn.execute("SELECT * FROM subscriptions ORDER BY subscription_id").fetchall()


def deliver_one(config: Path) -> None:
    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    ok(config, "consume", "all", "--until-empty")


def test_custom_headers_are_sent_and_listed_by_name_only(config_path: Path, receiver: Receiver) -> None:
    url = receiver.endpoint("/hook")
    sid = ok(
        config_path,
        "subscribe",
        EVENT,
        url,
        "--secret",
        "s",
        "--header",
        f"Authorization: {TOKEN_VALUE}",
        "--header",
        "X-Tenant:  shop-1 ",
    ).stdout.strip()
    deliver_one(config_path)
    [request] = receiver.requests
    assert request.headers["authorization"] == TOKEN_VALUE
    assert request.headers["x-tenant"] == "shop-1"
    assert request.signed_with("s")

    listed = ok(config_path, "subscriptions", "list")
    shown = ok(config_path, "subscriptions", "show", sid)
    as_json = ok_json(config_path, "subscriptions", "show", sid)
    assert as_json["header_names"] == ["Authorization", "X-Tenant"]
    assert ok_json(config_path, "subscriptions", "list")[0]["header_names"] == ["Authorization", "X-Tenant"]
    for output in (listed.stdout, shown.stdout, json.dumps(as_json)):
        assert "Authorization, X-Tenant" in output or '"Authorization"' in output
        assert "tok-7f3a9c" not in output and "shop-1" not in output


def test_set_headers_replaces_and_clear_removes(config_path: Path, receiver: Receiver) -> None:
    sid = ok(config_path, "subscribe", EVENT, receiver.endpoint("/hook"), "--header", "X-Old: 1").stdout.strip()
    assert (
        ok(config_path, "subscriptions", "set-headers", sid, "X-New: 2", "X-Other: 3").stdout
        == f"{sid}\tX-New, X-Other\n"
    )
    deliver_one(config_path)
    headers = receiver.requests[-1].headers
    assert (headers.get("x-old"), headers["x-new"], headers["x-other"]) == (None, "2", "3")
    assert ok(config_path, "subscriptions", "set-headers", sid, "--clear").stdout == f"{sid}\t(none)\n"
    assert ok_json(config_path, "subscriptions", "show", sid)["header_names"] == []


@pytest.mark.parametrize(
    "header, fragment",
    [
        ("Host: evil.example", "'Host' cannot be set per subscription: the HTTP client sets it"),
        ("Content-Length: 0", "'Content-Length' cannot be set"),
        ("Connection: close", "hop-by-hop"),
        ("Transfer-Encoding: chunked", "hop-by-hop"),
        ("Keep-Alive: timeout=5", "hop-by-hop"),
        ("Upgrade: websocket", "hop-by-hop"),
        ("TE: trailers", "hop-by-hop"),
        ("x-magento-signature: forged", "signature header"),
        ("Webhook-Signature: v1,forged", "signature header"),
        ("webhook-id: 1", "signature header"),
        ("webhook-timestamp: 1", "signature header"),
        ("Idempotency-Key: 1", "ae sets it on every delivery"),
        ("Authorization", "must look like 'Name: value'"),
        ("Bad Name: x", "invalid header name 'Bad Name'"),
        ("X-Empty:", "has no value"),
    ],
)
def test_refused_headers_exit_2_and_change_nothing(config_path: Path, header: str, fragment: str) -> None:
    sid = ok(config_path, "subscribe", EVENT, "http://127.0.0.1:9/h", "--header", "X-Keep: 1").stdout.strip()
    before = subscriptions_table(config_path)
    assert_error(ae(config_path, "subscribe", EVENT, "http://127.0.0.1:9/h", "--header", header), 2, fragment)
    assert_error(ae(config_path, "subscriptions", "set-headers", sid, header), 2, fragment)
    assert subscriptions_table(config_path) == before


def test_set_headers_input_errors(config_path: Path) -> None:
    sid = ok(config_path, "subscribe", EVENT, "http://127.0.0.1:9/h").stdout.strip()
    assert_error(ae(config_path, "subscriptions", "set-headers", sid), 2, "--clear")
    assert_error(ae(config_path, "subscriptions", "set-headers", sid, "X-A: 1", "x-a: 2"), 2, "given twice")
    assert_error(ae(config_path, "subscriptions", "set-headers", "99", "X-A: 1"), 1, "no subscription with id 99")


def test_standard_webhooks_subscription_end_to_end(config_path: Path, receiver: Receiver) -> None:
    result = ok(config_path, "subscribe", EVENT, receiver.endpoint("/hook"), "--signature", "standard-webhooks")
    secret = result.stderr.splitlines()[0].removeprefix("secret: ")
    assert secret.startswith("whsec_") and "(webhook-signature)" in result.stderr
    assert ok_json(config_path, "subscriptions", "list")[0]["signature_scheme"] == "standard-webhooks"
    deliver_one(config_path)
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers) == {"data": ORDER}
    [log] = ok_json(config_path, "logs")
    assert request.headers["webhook-id"] == log["uuid"]  # the delivery uuid, as the Idempotency-Key
    assert request.headers["idempotency-key"] == log["uuid"]


def test_rotate_secret_prints_the_new_secret_once(config_path: Path, receiver: Receiver) -> None:
    first = ok(config_path, "subscribe", EVENT, receiver.endpoint("/hook"), "--signature", "standard-webhooks")
    old = first.stderr.splitlines()[0].removeprefix("secret: ")
    rotated = ok(config_path, "subscriptions", "rotate-secret", "1", "--grace", "2h")
    new = rotated.stdout.strip()
    assert new.startswith("whsec_") and new != old and rotated.stdout == new + "\n"
    assert rotated.stderr.startswith("Deliveries are signed with both secrets until ")
    shown = ok_json(config_path, "subscriptions", "show", "1")
    assert shown["previous_secret_until"] is not None
    assert new not in json.dumps(shown) and old not in json.dumps(shown)
    deliver_one(config_path)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)


def test_rotate_secret_magento_switches_at_once(config_path: Path, receiver: Receiver) -> None:
    ok(config_path, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "old")
    rotated = ok(config_path, "subscriptions", "rotate-secret", "1")
    assert rotated.stderr == "magento signatures use the new secret from now on.\n"
    deliver_one(config_path)
    request = receiver.requests[-1]
    assert request.headers["x-magento-signature"] == expected_signature(request.body, rotated.stdout.strip())
    assert ok_json(config_path, "subscriptions", "show", "1")["previous_secret_until"] is None


def test_rotate_secret_input_errors(config_path: Path) -> None:
    ok(config_path, "subscribe", EVENT, "http://127.0.0.1:9/h", "--signature", "standard-webhooks")
    ok(config_path, "subscribe", EVENT, "orders", "--notifier", "eventbridge")
    before = subscriptions_table(config_path)
    assert_error(ae(config_path, "subscriptions", "rotate-secret", "1", "--grace", "soon"), 2, "invalid duration")
    assert_error(ae(config_path, "subscriptions", "rotate-secret", "1", "--grace", "400d"), 2, "0 and 365 days")
    assert_error(ae(config_path, "subscriptions", "rotate-secret", "1", "--secret", "plain"), 2, "whsec_")
    assert_error(ae(config_path, "subscriptions", "rotate-secret", "2"), 2, "does not sign HTTP requests")
    assert_error(ae(config_path, "subscriptions", "rotate-secret", "9"), 1, "no subscription with id 9")
    assert subscriptions_table(config_path) == before


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--signature", "svix"], "unknown signature scheme 'svix'; use one of: magento, standard-webhooks"),
        (["--signature", "standard-webhooks", "--secret", "not-whsec"], "must start with 'whsec_'"),
    ],
)
def test_subscribe_signature_errors(config_path: Path, args: list[str], fragment: str) -> None:
    assert_error(ae(config_path, "subscribe", EVENT, "http://127.0.0.1:9/h", *args), 2, fragment)
    assert ok_json(config_path, "subscriptions", "list") == []


OLD_SCHEMA = """
CREATE TABLE subscriptions (subscription_id INTEGER PRIMARY KEY, event_name TEXT NOT NULL,
  recipient_url TEXT NOT NULL, verification_token TEXT NOT NULL, status INTEGER NOT NULL,
  subscribed_at TEXT, modified TEXT, notifier TEXT NOT NULL, store_id INTEGER NOT NULL);
INSERT INTO subscriptions VALUES (1, 'sales.order.created', '{url}', 'legacy-secret', 1,
  '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 'http', 0);
"""


def test_a_store_from_before_gains_the_columns(config_path: Path, receiver: Receiver) -> None:
    path = db_path(config_path)
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA.format(url=receiver.endpoint("/hook")))
    [row] = ok_json(config_path, "subscriptions", "list")
    assert (row["signature_scheme"], row["header_names"], row["previous_secret_until"]) == ("magento", [], None)
    assert row["rate_limit"] is None
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(subscriptions)")]
    added = ["signature_scheme", "custom_headers", "previous_token", "previous_token_expires"]
    assert [c for c in columns if c in added] == added  # later migrations add more after them
    deliver_one(config_path)
    assert receiver.requests[0].signed_with("legacy-secret")
    ok(config_path, "subscriptions", "list")  # opening again finds nothing to migrate
