"""`--format cloudevents` (issue 22): structured-mode CloudEvents 1.0 bodies.

Receivers read deliveries with the CloudEvents Python SDK (`cloudevents.v1.http.from_http`),
not with a hand-written check; signatures are checked by the tests' own HMAC
and by the standard-webhooks reference library, over the exact bytes received.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudevents.v1.http import from_http
from conftest import Receiver, ae, assert_error, backend_environ, ok, ok_json, write_config
from standardwebhooks import Webhook

from asyncevents_cli.publishing import publish
from asyncevents_cli.replay import replay
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.search import matching_log_ids, search_logs
from asyncevents_cli.subscribe import subscribe
from asyncevents_cli.trace import trace

EVENT = "sales.order.created"
ORDER = {"increment_id": "CK00000042", "grand_total": 120.5, "status": "pending", "name": "Roni Cost"}


def as_cloudevent(request: Any) -> Any:
    return from_http(request.headers, request.body)


def test_a_cloudevents_subscription_is_sent_the_same_event_on_every_retry(
    tmp_path: Path, backend: dict[str, Any], receiver: Receiver
) -> None:
    config = write_config(tmp_path, **backend)
    with Runtime(config, environ=backend_environ()) as rt:
        subscription, _ = subscribe(
            rt.config, rt.store, EVENT, receiver.script("/ce", 500, 200), secret="tok", body_format="cloudevents"
        )
        plain, _ = subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/plain"), secret="tok")
        before = datetime.now(UTC)
        publish(rt.config, rt.queue, EVENT, ORDER)
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
        first, second = receiver.to("/ce")
        [module] = receiver.to("/plain")
        assert module.json == {"data": ORDER}  # the default stays the module's body
        assert module.headers["content-type"] == "application/json"

        event = as_cloudevent(first)
        assert event["specversion"] == "1.0"
        assert event["id"] == first.headers["idempotency-key"]
        assert (event["source"], event["type"], event["datacontenttype"]) == ("/ae", EVENT, "application/json")
        assert event.data == ORDER
        sent_at = datetime.fromisoformat(event["time"])
        assert before - timedelta(seconds=1) <= sent_at <= datetime.now(UTC)
        assert first.headers["content-type"] == "application/cloudevents+json"
        # the retry resends the same bytes: same id, same time, same signature
        assert second.body == first.body and as_cloudevent(second)["id"] == event["id"]
        assert first.signed_with("tok") and second.signed_with("tok")

        # trace and search show what was sent
        shown = trace(rt.store, event["id"])
        assert shown["payload"] == json.loads(first.body) and len(shown["attempts"]) == 2
        assert shown["subscription_id"] == subscription.subscription_id
        ids = matching_log_ids(rt.config, rt.store, f"data.type:{EVENT} AND data.data.increment_id:CK00000042")
        logged = {r["log_id"]: r for r in rt.store.log.recent_logs(limit=10)}
        assert sorted(logged[i]["serialized_data"].encode() for i in ids) == [first.body, second.body]
        hits = search_logs(rt.config, rt.store, "data.data.grand_total:[100 TO 200]")
        assert {json.dumps(h["payload"], sort_keys=True) for h in hits.rows} == {
            json.dumps(json.loads(first.body), sort_keys=True),
            json.dumps({"data": ORDER}, sort_keys=True),
        }

        # a replay starts a new chain with the same uuid: the same event again
        receiver.requests.clear()
        replay(rt.store, rt.queue, rt.config.retry_policy, event["id"])
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
        [again] = receiver.to("/ce")
        assert again.body == first.body
        assert plain.subscription_id != subscription.subscription_id


def test_standard_webhooks_signs_the_exact_cloudevent(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path, cloudevents_source="https://shop.example.com/ae")
    with Runtime(config, environ={}) as rt:
        _, secret = subscribe(
            rt.config,
            rt.store,
            EVENT,
            receiver.endpoint("/sw"),
            signature="standard-webhooks",
            body_format="cloudevents",
        )
        publish(rt.config, rt.queue, EVENT, ORDER)
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
    [request] = receiver.to("/sw")
    assert secret is not None
    verified = Webhook(secret).verify(request.body, request.headers)
    assert verified == json.loads(request.body)
    event = as_cloudevent(request)
    assert event["source"] == "https://shop.example.com/ae"
    assert event["id"] == request.headers["webhook-id"] == request.headers["idempotency-key"]


def test_a_filter_and_cloudevents_together(tmp_path: Path, receiver: Receiver) -> None:
    """A filter reads the payload at the same paths whatever the format."""
    config = write_config(tmp_path)
    with Runtime(config, environ={}) as rt:
        subscribe(
            rt.config,
            rt.store,
            EVENT,
            receiver.endpoint("/big"),
            payload_filter="data.data.grand_total:[100 TO *]",
            body_format="cloudevents",
        )
        for total in (50, 150, 250):
            publish(rt.config, rt.queue, EVENT, {**ORDER, "grand_total": total})
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
    assert sorted(as_cloudevent(r).data["grand_total"] for r in receiver.to("/big")) == [150, 250]


def test_the_format_option_is_checked(config_path: Path) -> None:
    url = "https://erp.example.com/hooks"
    assert_error(ae(config_path, "subscribe", EVENT, url, "--format", "xml"), 2, "unknown format 'xml'")
    assert_error(
        ae(config_path, "subscribe", EVENT, "default", "--notifier", "eventbridge", "--format", "cloudevents"),
        2,
        "its own envelope",
    )
    assert ok_json(config_path, "subscriptions", "list") == []
    sid = ok(config_path, "subscribe", EVENT, url, "--format", "cloudevents").stdout.strip()
    assert ok_json(config_path, "subscriptions", "show", sid)["format"] == "cloudevents"
    assert_error(ae(config_path, "subscriptions", "update", sid, "--format", "yaml"), 2, "unknown format")
    ok(config_path, "subscriptions", "update", sid, "--format", "data")
    assert ok_json(config_path, "subscriptions", "show", sid)["format"] == "data"
    assert_error(ae(config_path, "subscriptions", "update", sid), 2, "nothing to change")


def test_a_bad_cloudevents_source_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, cloudevents_source="has space")
    assert_error(ae(config, "subscriptions", "list"), 2, "cloudevents_source")
