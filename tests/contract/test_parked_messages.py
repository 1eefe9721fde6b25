"""Parked messages, on both queue backends (one module, so one RabbitMQ vhost):
poison messages at the head of the queues are parked and the rest delivered
(issue 7, item 1), and `ae deadletters`, `purge` and `requeue` (item 10): dead
letters resolved by a later success are neither listed nor counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import EVENT, Receiver, ae, ok, ok_json, write_config

UUID = "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
DEEP = "[" * 100_000 + "]" * 100_000


def parked(config: Path, *extra: str) -> list[dict[str, Any]]:
    return ok_json(config, "deadletters", *extra)


def test_a_dead_letter_is_resolved_when_its_replay_is_delivered(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    config = write_config(tmp_path, max_deaths=1, **backend)
    ok(config, "subscribe", EVENT, receiver.script("/hook", 500, 500, 200), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    ok(config, "consume", "all", "--until-empty")
    [letter] = parked(config)
    assert letter["origin"] == "retry" and letter["resolved"] is False
    assert ok_json(config, "status")["queues"]["dead_letters"] == 1

    ok(config, "replay", letter["uuid"])
    ok(config, "consume", "all", "--until-empty")
    assert ok_json(config, "trace", letter["uuid"])["status"].startswith("Delivered")
    assert parked(config) == []
    assert [r["resolved"] for r in parked(config, "--all")] == [True]
    assert ok_json(config, "status")["queues"]["dead_letters"] == 0
    [row] = ok_json(config, "status")["subscriptions"]
    assert row["dead_lettered"] == 0


def test_parked_triggers_are_requeued_once_their_cause_is_fixed(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    config = write_config(tmp_path, **backend)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    text = config.read_text()
    config.write_text(text.replace(f'[events."{EVENT}"]', '[events."renamed.event"]'))
    ok(config, "consume", "all", "--until-empty")  # the event is no longer defined: parked
    [letter] = parked(config)
    assert letter["origin"] == "trigger" and "not defined" in letter["reason"]

    config.write_text(text)
    result = ok(config, "deadletters", "requeue")
    assert "requeued 1 parked trigger(s)" in result.stderr and len(result.stdout.split()) == 1
    ok(config, "consume", "all", "--until-empty")
    assert [r.json for r in receiver.to("/hook")] == [{"data": {"n": 1}}]
    assert parked(config, "--all") == []


def test_purge_asks_first_and_honours_before(tmp_path: Path, backend: dict[str, Any]) -> None:
    config = write_config(tmp_path, **backend)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
    for n in range(2):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    config.write_text(config.read_text().replace(f'[events."{EVENT}"]', '[events."renamed.event"]'))
    ok(config, "consume", "all", "--until-empty")
    assert len(parked(config)) == 2

    refused = ae(config, "deadletters", "purge", input="y\n")  # stdin is not a terminal: no question, no purge
    assert refused.exit_code == 2 and "refusing without --yes" in refused.stderr and len(parked(config)) == 2
    assert ok(config, "deadletters", "purge", "--before", "2000-01-01", "--yes").stdout == "purged 0 dead letter(s)\n"
    assert len(parked(config)) == 2
    assert (
        ok(config, "deadletters", "purge", "--before", "2999-01-01T00:00Z", "--yes").stdout
        == "purged 2 dead letter(s)\n"
    )
    assert parked(config, "--all") == []
    assert ok_json(config, "status")["queues"]["dead_letters"] == 0


# -- raw queue messages (the bad-input catalogue's last family): parked, never a crash -----------

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


def _enqueue_raw(config: Path, messages: list[tuple[str, bytes]]) -> None:
    """What a foreign publisher could put on the queues: bytes `ae` did not write."""
    from asyncevents_cli.runtime import Runtime

    with Runtime(config) as rt:
        if rt.config.settings.queue == "amqp":
            import pika

            ok(config, "status")  # declares the topology
            connection = pika.BlockingConnection(pika.URLParameters(rt.config.settings.amqp_url))
            channel = connection.channel()
            channel.confirm_delivery()
            for kind, body in messages:
                exchange, key = ("event", "event.trigger") if kind == "trigger" else ("event.failover", "event.retry")
                channel.basic_publish(exchange, key, body, pika.BasicProperties(delivery_mode=2))
            connection.close()
            return
        with rt.store.transaction():
            for kind, body in messages:
                queue = {"trigger": "event.trigger", "retry": "event.failover.retry"}[kind]
                rt.queue._insert(queue, body, 0.0)  # type: ignore[attr-defined]


def test_poison_messages_are_parked_and_the_messages_behind_them_delivered(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    """Every raw body above at the head of the queues, five good events behind them:
    one consumer run parks each bad one with its reason and delivers all five."""
    config = write_config(tmp_path, **backend)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    bad = [("trigger", b) for b, _r in RAW_TRIGGERS] + [("retry", _raw(b)) for b, _r in RAW_RETRIES]
    reasons = {(k, b): r for (k, b), (_b, r) in zip(bad, RAW_TRIGGERS + RAW_RETRIES)}
    _enqueue_raw(config, bad)
    for n in range(5):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    result = ok(config, "consume", "all", "--until-empty")
    assert f"handled {len(bad) + 5} message(s)" in result.stderr
    assert sorted(r.json["data"]["n"] for r in receiver.to("/hook")) == [0, 1, 2, 3, 4]
    from asyncevents_cli.runtime import Runtime

    with Runtime(config) as rt:
        parked = {(letter.origin, letter.body): letter.reason for letter in rt.queue.peek_dead_letters(1000)}
    assert set(parked) == set(reasons)
    for key, reason in parked.items():
        assert reasons[key].lower() in reason.lower() and "\n" not in reason, (key, reason)
    assert all(log["success"] for log in ok_json(config, "logs", "--limit", "100"))
