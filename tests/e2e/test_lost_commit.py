"""A PostgreSQL connection lost while COMMIT's reply is in flight, on a real server.

The store's connection really commits, then its backend is ended with
pg_terminate_backend before the client reads the reply, so the client sees the
connection drop exactly where `test_scale_durability.py`'s killer sometimes
hits it. The consumer retries a failed settle in place (`Retrying.call`); a
settle that did commit must not be logged again.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from postgres_db import TEST_SECRET_KEY, postgres_admin_url

from asyncevents_cli.engine.retrying import Retrying
from asyncevents_cli.errors import CommitUnknown, DatabaseUnavailable
from asyncevents_cli.messages import TriggerMessage
from asyncevents_cli.queues.postgres import PostgresQueue
from asyncevents_cli.store import Attempt, Store
from asyncevents_cli.store.factory import store_on
from asyncevents_cli.store.postgres import PostgresBackend

pytestmark = pytest.mark.postgres


def terminate(pid: int) -> None:
    with psycopg.connect(postgres_admin_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


class CutBackend(PostgresBackend):
    """A backend whose next COMMIT loses its connection: after the server committed
    (`lose="reply"`), or before it could (`lose="commit"`)."""

    lose: str | None = None

    def _send(self, conn: Any, verb: str) -> None:
        lose, self.lose = self.lose, None
        if verb != "COMMIT" or lose is None:
            return super()._send(conn, verb)
        pid = conn.info.backend_pid
        if lose == "reply":
            conn.execute("COMMIT")  # committed on the server...
        terminate(pid)
        conn.execute("SELECT 1")  # ...and the client learns only that the connection is gone


@pytest.fixture
def store(postgres_url: str) -> Any:
    opened = store_on(CutBackend(postgres_url), environ={"AE_SECRET_KEY": TEST_SECRET_KEY})
    yield opened
    opened.close()


def attempt(uuid: str) -> Attempt:
    return Attempt(uuid, 1, "sales.order.created", True, 200, "ok", "{}", 0, 0.01)


def lose_next_commit(store: Store, how: str) -> None:
    """`how`: "reply" or "commit" (see `CutBackend`)."""
    assert isinstance(store.backend, CutBackend)
    store.backend.lose = how


def logged(store: Store, uuid: str) -> int:
    return int(store.backend.execute("SELECT COUNT(*) FROM delivery_log WHERE uuid = ?", (uuid,)).scalar())


def test_a_commit_whose_reply_is_lost_but_committed_counts_as_committed(store: Store) -> None:
    lose_next_commit(store, "reply")
    with store.transaction():
        store.log.log_attempts([attempt("u-reply")])
    assert logged(store, "u-reply") == 1
    store.log.log_attempts([attempt("u-after")])  # the pool replaced the broken connection
    assert logged(store, "u-after") == 1


def test_a_commit_lost_before_the_server_committed_is_reported_and_wrote_nothing(store: Store) -> None:
    lose_next_commit(store, "commit")
    with pytest.raises(DatabaseUnavailable) as raised, store.transaction():
        store.log.log_attempts([attempt("u-lost")])
    assert not isinstance(raised.value, CommitUnknown)  # the server said: aborted, so safe to run again
    assert logged(store, "u-lost") == 0


def test_a_retried_settle_whose_commit_reply_was_lost_logs_its_attempt_once(store: Store) -> None:
    """What the consumer does on the table queue: log and acknowledge in one
    transaction, retried in place after a lost connection (`engine/consumer.py`)."""
    queue = PostgresQueue(store)
    queue.publish_trigger(TriggerMessage("sales.order.created", {"n": 1}))
    [envelope] = queue.receive_many(["trigger"], 1, timeout=1)
    retrying = Retrying(give_up_after=5)

    def settle() -> None:
        with store.transaction():
            store.log.log_attempts([attempt("u-settle")])
            queue.ack_many([envelope])

    lose_next_commit(store, "reply")
    retrying.call(settle)
    assert retrying.retries == 0  # it committed: nothing to run again
    assert logged(store, "u-settle") == 1
    assert queue.is_empty(["trigger"])


def test_a_settle_lost_before_commit_is_run_again_and_logged_once(store: Store) -> None:
    queue = PostgresQueue(store)
    queue.publish_trigger(TriggerMessage("sales.order.created", {"n": 2}))
    [envelope] = queue.receive_many(["trigger"], 1, timeout=1)
    retrying = Retrying(give_up_after=5)

    def settle() -> None:
        with store.transaction():
            store.log.log_attempts([attempt("u-again")])
            queue.ack_many([envelope])

    lose_next_commit(store, "commit")
    retrying.call(settle)
    assert retrying.retries == 1
    assert logged(store, "u-again") == 1
    assert queue.is_empty(["trigger"])


def test_a_commit_whose_outcome_cannot_be_learnt_is_not_retried_in_place(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stays away after the lost reply: `CommitUnknown`, and `Retrying`
    hands it up (the consumer restarts) instead of logging the attempt again."""
    monkeypatch.setattr("asyncevents_cli.store.postgres.COMMIT_STATUS_WAIT_SECONDS", 0.3)
    name = store.backend.url.rsplit("/", 1)[1]

    def refuse_connections(allowed: bool, but: int = 0) -> None:
        with psycopg.connect(postgres_admin_url(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
            if not allowed:  # and the pool's idle connections go too: none is left to ask
                admin.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                    (name, but),
                )

    def settle() -> None:
        with store.transaction():
            store.log.log_attempts([attempt("u-unknown")])
            refuse_connections(False, but=store.backend._held.info.backend_pid)

    lose_next_commit(store, "reply")
    retrying = Retrying(give_up_after=5)
    try:
        with pytest.raises(CommitUnknown, match="whether it committed is unknown"):
            retrying.call(settle)
    finally:
        refuse_connections(True)
    assert retrying.retries == 0
    assert logged(store, "u-unknown") == 1
