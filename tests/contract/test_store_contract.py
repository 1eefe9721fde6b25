"""One contract for the store, run against every backend: SQLite on a real file
in tmp_path, PostgreSQL on a database of this module (emptied before each test).

Every store operation the commands use goes through here; what only one
backend has (a read-only SQLite file, an unreachable PostgreSQL server) is
tested beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from asyncevents_cli.errors import AeError, NotFound
from asyncevents_cli.states import DeliveryState
from asyncevents_cli.store import (
    Attempt,
    ChainState,
    LogCondition,
    Store,
    utcnow,
)
from asyncevents_cli.store.schema import SCHEMA_VERSION, StoreTooNew

EVENT = "sales.order.created"


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()


def attempt(
    uuid: str,
    success: bool = True,
    subscription_id: int = 1,
    message_id: str | None = None,
    data: str = '{"data":{"increment_id":"A1"}}',
    death_count: int = 0,
) -> Attempt:
    return Attempt(
        uuid,
        subscription_id,
        EVENT,
        success,
        200 if success else 500,
        "reply",
        data,
        death_count,
        0.0123456789,
        message_id,
    )


# -- subscriptions and their secrets ---------------------------------------------


# Long enough that a Fernet token (base64url) cannot contain it by chance; "k1" could.
HEADER_SECRET = "header-secret-that-never-shows-in-plain-text"


def test_a_subscription_round_trips_with_its_secrets(store: Store) -> None:
    made = store.subscriptions.add_subscription(
        EVENT,
        "https://shop.example/hook",
        "tok-1",
        notifier="http",
        store_id=2,
        signature_scheme="standard",
        custom_headers=[("X-Key", HEADER_SECRET)],
    )
    assert made.subscription_id >= 1
    assert (made.event_name, made.recipient_url, made.store_id, made.notifier) == (
        EVENT,
        "https://shop.example/hook",
        2,
        "http",
    )
    assert made.verification_token == "tok-1" and made.custom_headers == (("X-Key", HEADER_SECRET),)
    assert made.signature_scheme == "standard" and made.enabled
    hidden = store.subscriptions.subscription(made.subscription_id, reveal=False)
    assert hidden.verification_token is None and hidden.custom_headers == (("X-Key", ""),)
    stored = store.backend.rows("SELECT verification_token, custom_headers FROM subscriptions")[0]
    assert stored["verification_token"].startswith("fernet:") and HEADER_SECRET not in stored["custom_headers"]


def test_subscriptions_list_filter_and_change(store: Store) -> None:
    a = store.subscriptions.add_subscription(EVENT, "https://a.example/", "ta")
    b = store.subscriptions.add_subscription("other.event", "https://b.example/", "tb", store_id=3)
    c = store.subscriptions.add_subscription(EVENT, "https://c.example/", "tc", store_id=4)
    assert [s.subscription_id for s in store.subscriptions.all()] == [
        a.subscription_id,
        b.subscription_id,
        c.subscription_id,
    ]
    assert [s.subscription_id for s in store.subscriptions.all(EVENT)] == [a.subscription_id, c.subscription_id]
    assert [s.subscription_id for s in store.subscriptions.subscriptions_for(EVENT, 4)] == [
        a.subscription_id,
        c.subscription_id,
    ]
    assert [s.subscription_id for s in store.subscriptions.subscriptions_for(EVENT, 5)] == [a.subscription_id]
    store.subscriptions.set_status([a.subscription_id], enabled=False)
    assert [s.subscription_id for s in store.subscriptions.subscriptions_for(EVENT, 4)] == [c.subscription_id]
    with pytest.raises(NotFound):  # all or nothing: c stays enabled
        store.subscriptions.set_status([c.subscription_id, 999], enabled=False)
    assert store.subscriptions.subscription(c.subscription_id).enabled
    updated = store.subscriptions.update_subscription(a.subscription_id, enabled=True, notifier="eventbridge")
    assert updated.enabled and updated.notifier == "eventbridge"
    headers = store.subscriptions.set_custom_headers(b.subscription_id, [("X-A", "1"), ("X-B", "2")])
    assert headers.custom_headers == (("X-A", "1"), ("X-B", "2"))
    assert store.subscriptions.set_custom_headers(b.subscription_id, []).custom_headers == ()
    gone = store.subscriptions.delete_subscription(b.subscription_id)
    assert (
        gone.subscription_id == b.subscription_id and store.subscriptions.find_subscription(b.subscription_id) is None
    )
    for missing in (0, 999, 2**63 - 1, 2**64):
        with pytest.raises(NotFound):
            store.subscriptions.subscription(missing)


def test_a_rotated_token_keeps_the_previous_one_until_its_end(store: Store) -> None:
    sub = store.subscriptions.add_subscription(EVENT, "https://a.example/", "old")
    until = utcnow() + timedelta(hours=1)
    rotated = store.subscriptions.rotate_token(sub.subscription_id, "new", until)
    assert rotated.verification_token == "new" and rotated.previous_token == "old"
    assert rotated.previous_token_until is not None and abs(rotated.previous_token_until - until) < timedelta(seconds=1)
    assert store.subscriptions.rotate_token(sub.subscription_id, "newer", None).previous_token is None


def test_a_subscription_made_by_one_store_is_seen_by_another(open_store: Callable[..., Store]) -> None:
    first, second = open_store(), open_store()
    made = first.subscriptions.add_subscription(EVENT, "https://a.example/", "shared-secret")
    assert second.subscriptions.subscription(made.subscription_id).verification_token == "shared-secret"
    second.subscriptions.check_secret_key()


# -- the delivery log ---------------------------------------------------------


def test_attempts_are_logged_in_order_and_read_back(store: Store) -> None:
    first = store.log.log_attempt(attempt("u1", success=False, message_id="m1"))
    store.log.log_attempts([attempt("u1", message_id="m2", death_count=1), attempt("u2", message_id="m3")])
    assert first >= 1
    rows = store.log.attempts("u1")
    assert [(r["success"], r["death_count"], r["message_id"]) for r in rows] == [(0, 0, "m1"), (1, 1, "m2")]
    assert rows[0]["log_id"] == first and rows[1]["log_id"] > first
    assert rows[0]["duration"] == pytest.approx(0.012346) and rows[0]["response_data"] == "reply"
    assert store.log.already_attempted("m2", 1) and not store.log.already_attempted("m2", 2)
    assert not store.log.already_attempted("nope", 1)
    assert store.log.max_log_id() == store.log.log_id_high_water() == rows[1]["log_id"] + 1
    assert [r["uuid"] for r in store.log.recent_logs()] == ["u2", "u1", "u1"]
    assert [r["uuid"] for r in store.log.recent_logs(failed_only=True)] == ["u1"]
    assert store.log.recent_logs(event_name="other") == []
    assert [r["log_id"] for r in store.log.recent_logs(limit=1)] == [store.log.max_log_id()]
    assert [r["log_id"] for r in store.log.logs_after(first)] == [first + 1, first + 2]
    assert [r["log_id"] for r in store.log.logs_after(first, limit=1)] == [first + 1]
    assert store.log.count_logs_after(first) == 2
    assert sorted(r["log_id"] for r in store.log.logs_by_id([first, first + 2, 12345])) == [first, first + 2]
    assert store.log.uuids_of([first, first + 1]) == {"u1"}
    assert sorted((r["uuid"], r["log_id"]) for r in store.log.latest_attempts(["u1", "u2"])) == [
        ("u1", first + 1),
        ("u2", first + 2),
    ]
    assert store.log.last_uuid(1) == "u2" and store.log.last_uuid(7) is None
    total, page = store.log.log_page(limit=2, offset=1)
    assert total == 3 and [r["log_id"] for r in page] == [first + 1, first]
    assert "serialized_data" not in page[0]


def test_a_reply_with_nul_characters_is_logged(store: Store) -> None:
    store.log.log_attempt(Attempt("u1", 1, EVENT, True, 200, "a\x00b", "{}", 0, 0.1))
    assert store.log.attempts("u1")[0]["response_data"] == "a\ufffdb"


def test_many_ids_are_read_in_chunks(store: Store) -> None:
    store.log.log_attempts([attempt(f"u{i}") for i in range(1200)])
    ids = list(range(1, 1201))
    assert len(store.log.logs_by_id(ids)) == 1200
    assert len(store.log.uuids_of(ids)) == 1200
    assert len(store.log.latest_attempts([f"u{i}" for i in range(1200)])) == 1200


def test_logs_matching_conditions(store: Store) -> None:
    store.log.log_attempts(
        [
            attempt("abc-1", data='{"data":{"sku":"Red_Shirt 100%"}}'),
            attempt("abd-2", success=False, data='{"data":{"sku":"blue shirt"}}'),
            attempt("xyz-3", data='{"data":{"sku":"RedXShirt"}}'),
        ]
    )

    def uuids(*conditions: LogCondition, **page: Any) -> tuple[int, list[str]]:
        total, rows = store.log.logs_matching(list(conditions), **page)
        return total, [r["uuid"] for r in rows]

    assert uuids() == (3, ["xyz-3", "abd-2", "abc-1"])
    assert uuids(LogCondition("success", "equals", False)) == (1, ["abd-2"])
    assert uuids(LogCondition("success", "equals", 1)) == (2, ["xyz-3", "abc-1"])
    assert uuids(LogCondition("uuid", "like", "ab?-*")) == (2, ["abd-2", "abc-1"])
    assert uuids(LogCondition("uuid", "like", "ABC-1")) == (1, ["abc-1"])  # ASCII case is ignored
    assert uuids(LogCondition("created", "starts", store.log.attempts("abc-1")[0]["created"][:10]))[0] == 3
    assert uuids(LogCondition("serialized_data", "contains", "red_shirt")) == (1, ["abc-1"])  # _ is literal
    assert uuids(LogCondition("serialized_data", "contains", "100%")) == (1, ["abc-1"])  # % is literal
    assert uuids(LogCondition("serialized_data", "contains", "red*shirt")) == (2, ["xyz-3", "abc-1"])
    assert uuids(LogCondition("log_id", "equals", 2)) == (1, ["abd-2"])
    assert uuids(limit=1, offset=1) == (3, ["abd-2"])
    with pytest.raises(ValueError):
        store.log.logs_matching([LogCondition("nope; DROP TABLE x", "equals", 1)])


# -- delivery states ---------------------------------------------------------


def test_chain_states_accumulate_and_ignore_older_generations(store: Store) -> None:
    later = utcnow() + timedelta(minutes=5)
    store.log.set_delivery_states([ChainState("u1", 1, EVENT, DeliveryState.RETRYING, 1, later)])
    store.log.set_delivery_state("u1", 1, EVENT, DeliveryState.DEAD_LETTERED, 2)
    row = store.log.delivery("u1")
    assert row is not None
    assert (row["state"], row["attempts"], row["death_count"]) == (DeliveryState.DEAD_LETTERED, 2, 2)
    store.log.set_delivery_states(
        [ChainState("u1", 1, EVENT, DeliveryState.RETRYING, 0, None, attempted=False, generation=1)]
    )
    store.log.set_delivery_states(
        [ChainState("u1", 1, EVENT, DeliveryState.DELIVERED, 3, generation=0)]
    )  # a stale attempt
    row = store.log.delivery("u1")
    assert row is not None and (row["state"], row["generation"], row["attempts"]) == (DeliveryState.RETRYING, 1, 2)
    store.log.set_delivery_states(
        [
            ChainState("u2", 1, EVENT, DeliveryState.DELIVERED, 0),
            ChainState("u3", 1, EVENT, DeliveryState.STOPPED, 0, attempted=False),
        ]
    )
    assert store.log.delivered_uuids(["u1", "u2", "u3", "u2", "nope"]) == {"u2"}
    assert store.log.delivery("nope") is None


def test_delivery_counts_per_subscription(store: Store) -> None:
    sub = store.subscriptions.add_subscription(EVENT, "https://user:pw@a.example/", "t")
    idle = store.subscriptions.add_subscription(EVENT, "https://b.example/", "t")
    store.subscriptions.set_status([idle.subscription_id], enabled=False)
    sid = sub.subscription_id
    store.log.log_attempts([attempt("u1", False, sid), attempt("u1", True, sid), attempt("u2", False, sid)])
    store.log.set_delivery_states(
        [
            ChainState("u1", sid, EVENT, DeliveryState.DELIVERED, 1),
            ChainState("u2", sid, EVENT, DeliveryState.RETRYING, 1),
            ChainState("u3", sid, EVENT, DeliveryState.DEAD_LETTERED, 5),
        ]
    )
    with store.transaction():
        store.subscriptions.count_filtered({sid: 2})
    store.subscriptions.count_filtered({sid: 1})  # added to, not replaced
    counts = store.log.delivery_counts()
    assert counts == [
        {
            "subscription_id": sid,
            "event_name": EVENT,
            "recipient_url": "https://user:pw@a.example/",
            "status": "enabled",
            "attempts": 3,
            "succeeded": 1,
            "failed": 2,
            "delivered": 1,
            "retrying": 1,
            "dead_lettered": 1,
            "filtered": 3,
        },
        {
            "subscription_id": idle.subscription_id,
            "event_name": EVENT,
            "recipient_url": "https://b.example/",
            "status": "disabled",
            "attempts": 0,
            "succeeded": 0,
            "failed": 0,
            "delivered": 0,
            "retrying": 0,
            "dead_lettered": 0,
            "filtered": 0,
        },
    ]
    assert store.subscriptions.filtered_counts() == {sid: 3}


def test_a_subscription_keeps_its_filter_and_format(store: Store) -> None:
    plain = store.subscriptions.add_subscription(EVENT, "https://a.example/", "t")
    assert (plain.payload_filter, plain.body_format) == (None, "data")
    shaped = store.subscriptions.add_subscription(
        EVENT, "https://b.example/", "t", payload_filter="data.data.x:1", body_format="cloudevents"
    )
    assert (shaped.payload_filter, shaped.body_format) == ("data.data.x:1", "cloudevents")
    assert store.subscriptions.subscriptions_for(EVENT, 0)[1].payload_filter == "data.data.x:1"
    changed = store.subscriptions.set_delivery_shape(shaped.subscription_id, None, "data")
    assert (changed.payload_filter, changed.body_format) == (None, "data")
    assert changed.public()["filter"] is None and changed.public()["format"] == "data"
    store.subscriptions.count_filtered({shaped.subscription_id: 4})
    store.subscriptions.delete_subscription(shaped.subscription_id)
    assert store.subscriptions.filtered_counts() == {}  # its count goes with it


def test_pruning_removes_finished_chains_only(store: Store) -> None:
    store.log.log_attempts([attempt("done"), attempt("retrying", False), attempt("dead", False)])
    store.log.set_delivery_states(
        [
            ChainState("done", 1, EVENT, DeliveryState.DELIVERED, 0),
            ChainState("retrying", 1, EVENT, DeliveryState.RETRYING, 1),
            ChainState("dead", 1, EVENT, DeliveryState.DEAD_LETTERED, 5),
        ]
    )
    high = store.log.max_log_id()
    assert store.log.prune_logs(1) == []  # nothing is a day old
    removed = store.log.prune_logs(0)
    assert removed == [1, 3]
    assert [r["uuid"] for r in store.log.recent_logs()] == ["retrying"]
    assert store.log.delivery("done") is None and store.log.delivery("retrying") is not None
    assert store.log.log_id_high_water() == high  # an id is never handed out twice
    store.log.log_attempt(attempt("next"))
    assert store.log.max_log_id() == high + 1


# -- transactions ------------------------------------------------------------------


def test_a_transaction_commits_all_or_nothing(open_store: Callable[..., Store]) -> None:
    store, other = open_store(), open_store()
    with pytest.raises(RuntimeError), store.transaction():
        store.log.log_attempts([attempt("u1")])
        with store.transaction():  # a nested one joins
            store.log.set_delivery_states([ChainState("u1", 1, EVENT, DeliveryState.DELIVERED, 0)])
        raise RuntimeError("boom")
    assert store.log.attempts("u1") == [] and other.log.delivery("u1") is None
    with store.transaction():
        store.log.log_attempts([attempt("u1")])
        store.log.set_delivery_states([ChainState("u1", 1, EVENT, DeliveryState.DELIVERED, 0)])
    assert len(other.log.attempts("u1")) == 1 and other.log.delivered_uuids(["u1"]) == {"u1"}


def test_log_ids_commit_in_the_order_they_are_handed_out(open_store: Callable[..., Store]) -> None:
    """A search index follows the log by id: it must never see id n+1 while n may still commit."""
    first, second, reader = open_store(), open_store(), open_store()
    logged: list[int] = []
    with first.transaction():
        first.log.log_attempts([attempt("u1")])
        thread = threading.Thread(target=lambda: logged.append(second.log.log_attempt(attempt("u2"))))
        thread.start()
        thread.join(2.0)  # the second writer waits for the first's commit ...
        assert thread.is_alive() and reader.log.logs_after(0) == []  # ... so no reader sees a later id first
    thread.join(60)
    assert not thread.is_alive()
    assert [r["uuid"] for r in reader.log.logs_after(0)] == ["u1", "u2"] and logged == [2]


# -- API tokens, identity, bookkeeping -------------------------------------------


def test_api_tokens(store: Store) -> None:
    made = store.api_tokens.add_token("ci", "hash-1", ["sales.*"])
    assert made["name"] == "ci" and made["events"] == ["sales.*"] and made["last_used"] is None
    with pytest.raises(AeError, match="already exists"):
        store.api_tokens.add_token("ci", "hash-2", ["*"])
    store.api_tokens.add_token("ops", "hash-3", ["*"])
    assert [t["name"] for t in store.api_tokens.tokens()] == ["ci", "ops"]
    assert store.api_tokens.token_by_hash("hash-3")["name"] == "ops" and store.api_tokens.token_by_hash("nope") is None
    store.api_tokens.touch_token("ci")
    assert store.api_tokens.tokens("ci")[0]["last_used"] is not None
    assert "token_hash" not in store.api_tokens.tokens()[0]
    store.api_tokens.revoke_token("ci")
    with pytest.raises(NotFound):
        store.api_tokens.revoke_token("ci")
    assert [t["name"] for t in store.api_tokens.tokens()] == ["ops"]


def test_identity_generation_and_delay_queues_persist(open_store: Callable[..., Store]) -> None:
    store = open_store()
    assert store.info.identity(create=False) is None
    identity = store.info.identity()
    generation = store.info.log_generation()
    assert len(identity or "") == 32 and len(generation) == 16
    store.info.record_delay_queue("event.delay.4")
    store.info.record_delay_queue("event.delay.1")
    store.info.record_delay_queue("event.delay.4")
    store.close()
    again = open_store()
    assert again.info.identity() == identity and again.info.log_generation() == generation
    assert again.info.delay_queue_names() == ["event.delay.1", "event.delay.4"]


# -- the schema version ------------------------------------------------------------


def test_a_new_store_is_at_the_code_schema_version(open_store: Callable[..., Store]) -> None:
    store = open_store()
    assert store.schema.schema_version() == SCHEMA_VERSION and store.schema.pending_migrations() == []
    assert store.schema.migrate() == []


def test_a_store_newer_than_the_code_is_refused(open_store: Callable[..., Store]) -> None:
    store = open_store()
    with store.transaction():
        store.backend.execute(
            "INSERT INTO schema_migrations (version, description, applied) VALUES (?, 'from the future', '')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StoreTooNew, match=f"schema version {SCHEMA_VERSION + 1}, newer than this ae"):
        open_store()
    with pytest.raises(StoreTooNew):
        open_store(migrate=False)
