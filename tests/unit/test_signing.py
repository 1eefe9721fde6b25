"""Signature schemes, checked by an independent verifier: the `standardwebhooks` reference library.

Deliveries go over real HTTP to the local receiver; what it recorded is handed
to `standardwebhooks.Webhook.verify` (or to the receiver-side HMAC in conftest
for the magento scheme), never to ae's own signing code.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Receiver, expected_signature, write_config
from standardwebhooks import Webhook, WebhookVerificationError

from asyncevents_cli.config import load_config
from asyncevents_cli.errors import InputError
from asyncevents_cli.notifiers import HttpNotifier
from asyncevents_cli.notifiers.http import request_headers
from asyncevents_cli.notifiers.signing import check_secret, generate_secret
from asyncevents_cli.store import Store, open_store, utcnow
from asyncevents_cli.subscribe import parse_duration, rotate_secret, subscribe

EVENT = "sales.order.created"
BODY = json.dumps({"data": {"increment_id": "CK00000101", "grand_total": 45.5}}).encode()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "ae.db") as s:
        yield s


@pytest.fixture
def config(tmp_path: Path):
    return load_config(write_config(tmp_path), environ={})


@pytest.fixture
def notifier() -> HttpNotifier:
    n = HttpNotifier(connect_timeout=2.0, total_timeout=5.0)
    yield n
    n.close()


def deliver(notifier: HttpNotifier, receiver: Receiver, subscription, uuid: str = "delivery-1"):
    result = notifier.notify(subscription, BODY, uuid)
    assert result.success, result
    return receiver.requests[-1]


def test_standard_webhooks_delivery_verifies_with_the_reference_library(
    config, store: Store, receiver: Receiver, notifier: HttpNotifier
) -> None:
    subscription, secret = subscribe(config, store, EVENT, receiver.endpoint("/hook"), signature="standard-webhooks")
    assert secret is not None and secret.startswith("whsec_")
    request = deliver(notifier, receiver, subscription, uuid="0a6d6b1e-uuid")
    assert request.headers["webhook-id"] == "0a6d6b1e-uuid"
    assert abs(int(request.headers["webhook-timestamp"]) - utcnow().timestamp()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert "x-magento-signature" not in request.headers
    assert Webhook(secret).verify(request.body, request.headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):  # another secret
        Webhook(generate_secret("standard-webhooks")).verify(request.body, request.headers)


def test_a_tampered_body_is_rejected(config, store: Store, receiver: Receiver, notifier: HttpNotifier) -> None:
    subscription, secret = subscribe(config, store, EVENT, receiver.endpoint("/hook"), signature="standard-webhooks")
    request = deliver(notifier, receiver, subscription)
    tampered = request.body.replace(b"45.5", b"0.01")
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(tampered, request.headers)


def test_a_stale_timestamp_is_rejected(config, store: Store) -> None:
    subscription, secret = subscribe(config, store, EVENT, "http://127.0.0.1:9/hook", signature="standard-webhooks")
    ten_minutes_ago = utcnow() - timedelta(minutes=10)
    headers = request_headers(subscription, BODY, "delivery-1", now=ten_minutes_ago)
    assert headers["webhook-timestamp"] == str(int(ten_minutes_ago.timestamp()))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)
    fresh = request_headers(subscription, BODY, "delivery-1")
    Webhook(secret).verify(BODY, fresh)  # the same delivery signed now passes


def test_the_id_is_signed_too(config, store: Store) -> None:
    subscription, secret = subscribe(config, store, EVENT, "http://127.0.0.1:9/hook", signature="standard-webhooks")
    headers = request_headers(subscription, BODY, "delivery-1")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "delivery-2"})


def test_magento_scheme_is_the_default_and_unchanged(
    config, store: Store, receiver: Receiver, notifier: HttpNotifier
) -> None:
    subscription, secret = subscribe(config, store, EVENT, receiver.endpoint("/hook"), secret="my-secret")
    assert subscription.signature_scheme == "magento" and secret is None
    request = deliver(notifier, receiver, subscription)
    assert request.headers["x-magento-signature"] == expected_signature(request.body, "my-secret")
    assert not {"webhook-id", "webhook-timestamp", "webhook-signature"} & set(request.headers)


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    config, store: Store, receiver: Receiver, notifier: HttpNotifier
) -> None:
    subscription, old = subscribe(config, store, EVENT, receiver.endpoint("/hook"), signature="standard-webhooks")
    rotated, new = rotate_secret(store, subscription.subscription_id, "24h")
    assert new != old and new.startswith("whsec_")
    request = deliver(notifier, receiver, rotated)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    # A receiver still on the old secret and one already on the new both accept it.
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)

    # Grace ends by time alone: the same subscription, a day and a minute later.
    # (The reference library's `sign` computes the expected values: verify would
    # refuse a timestamp a day ahead.)
    moment = utcnow() + timedelta(hours=24, minutes=1)
    later = request_headers(rotated, BODY, "delivery-1", now=moment)
    assert later["webhook-signature"] == Webhook(new).sign("delivery-1", moment, BODY.decode())
    assert Webhook(old).sign("delivery-1", moment, BODY.decode()) not in later["webhook-signature"]


def test_rotation_without_grace_drops_the_old_secret_at_once(config, store: Store) -> None:
    subscription, old = subscribe(config, store, EVENT, "http://127.0.0.1:9/hook", signature="standard-webhooks")
    rotated, new = rotate_secret(store, subscription.subscription_id, "0")
    headers = request_headers(rotated, BODY, "delivery-1")
    assert len(headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, headers)
    assert rotated.previous_token is None


def test_magento_rotation_switches_at_once(config, store: Store, receiver: Receiver, notifier: HttpNotifier) -> None:
    subscription, _ = subscribe(config, store, EVENT, receiver.endpoint("/hook"), secret="old-secret")
    rotated, new = rotate_secret(store, subscription.subscription_id, "24h")
    request = deliver(notifier, receiver, rotated)
    assert request.headers["x-magento-signature"] == expected_signature(request.body, new)
    assert not request.signed_with("old-secret")


@pytest.mark.parametrize(
    "secret, fragment",
    [
        ("my-secret", "must start with 'whsec_'"),
        ("whsec_not base64!", "followed by base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes, got 5"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24 to 64 bytes, got 65"),
        ("   ", "must not be empty"),
    ],
)
def test_standard_webhooks_secrets_are_checked(secret: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        check_secret("standard-webhooks", secret)


def test_a_given_standard_webhooks_secret_is_used(config, store: Store) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    subscription, generated = subscribe(
        config, store, EVENT, "https://example.com/h", secret=secret, signature="standard-webhooks"
    )
    assert generated is None
    Webhook(secret).verify(BODY, request_headers(subscription, BODY, "u"))


@pytest.mark.parametrize(
    "text, seconds",
    [("24h", 86400), ("30m", 1800), ("90s", 90), ("2d", 172800), ("0", 0), ("1.5h", 5400), (" 15 ", 15)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "24 hours", "1w", "nan"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InputError, match="invalid duration"):
        parse_duration(text)
