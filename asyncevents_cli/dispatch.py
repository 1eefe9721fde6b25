"""Handling one received message: resolve, fan out, notify, log, retry.

The dispatcher does not loop and does not know which backend it talks to; the
`Worker` feeds it envelopes. Its one rule about durability: a message is
acknowledged only after its attempts are logged and its retries placed, and
on the SQLite backend all three commit in one transaction.
"""

from __future__ import annotations

import json
import logging
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .backoff import RetryPolicy
from .config import Config
from .errors import AeError
from .messages import MalformedMessage, RetryMessage, TriggerMessage
from .notifiers import Notifiers, NotifyResult
from .queues.base import RETRY, TRIGGER, Envelope, Queue
from .store import DEAD_LETTERED, DELIVERED, RETRYING, STOPPED, Attempt, Store, Subscription, utcnow

log = logging.getLogger("asyncevents_cli")

# uuids derive from (message id, subscription) so a message taken twice, after
# a consumer died mid-way, reuses them: receivers can de-duplicate on the
# Idempotency-Key header, and the trace keeps one chain.
UUID_NAMESPACE = uuidlib.UUID("5b0e2f4c-8a51-4c35-9d1b-6f0d3e7a9c21")

# Subscribers of one event notified at once: bounded so a popular event cannot
# open hundreds of connections, enough that a slow receiver does not stall the rest.
FAN_OUT_THREADS = 8


def delivery_uuid(message_id: str | None, subscription_id: int) -> str:
    if not message_id:
        return str(uuidlib.uuid4())
    return str(uuidlib.uuid5(UUID_NAMESPACE, f"{message_id}:{subscription_id}"))


def encode_payload(payload: Any) -> str:
    """The payload as carried in a retry message's ``content``."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def serialize_body(payload: Any) -> bytes:
    """The exact bytes POSTed and logged: ``{"data": payload}``."""
    return json.dumps({"data": payload}, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class FollowUp:
    """The decision after one attempt, applied to the queue and the store together."""

    state: str  # DELIVERED, RETRYING or DEAD_LETTERED
    retry: RetryMessage | None = None  # the message to place, or to park as a dead letter
    delay: float = 0.0
    next_attempt_at: datetime | None = None
    reason: str = ""


class PayloadError(AeError):
    """An event's service could not build the payload."""


@dataclass(frozen=True)
class Outcome:
    subscription: Subscription
    uuid: str
    death_count: int
    body: bytes
    content: str
    result: NotifyResult
    message_id: str | None


class Dispatcher:
    def __init__(
        self,
        config: Config,
        store: Store,
        queue: Queue,
        notifiers: Notifiers,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.queue = queue
        self.notifiers = notifiers
        self.policy: RetryPolicy = config.retry_policy
        self.now = now
        self._pool: ThreadPoolExecutor | None = None  # fan-out threads, made on first need

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def handle(self, envelope: Envelope) -> None:
        if envelope.kind == TRIGGER:
            self.handle_trigger(envelope)
        elif envelope.kind == RETRY:
            self.handle_retry(envelope)
        else:  # pragma: no cover - backends only deliver the two kinds
            raise ValueError(f"unknown message kind {envelope.kind!r}")

    # -- trigger ---------------------------------------------------------

    def resolve_payload(self, message: TriggerMessage) -> Any:
        event = self.config.event(message.event_name)
        service = event.resolve_service()
        if service is None:
            return message.arguments
        try:
            payload = service(**message.arguments)
            json.dumps(payload)
        except Exception as exc:  # the user's code: any failure parks the message
            raise PayloadError(f"service {event.service} failed: {exc.__class__.__name__}: {exc}") from None
        return payload

    def handle_trigger(self, envelope: Envelope) -> None:
        try:
            message = TriggerMessage.decode(envelope.body)
            payload = self.resolve_payload(message)
        except AeError as exc:  # malformed, undefined event, or the service failed
            self._park(envelope, TRIGGER, exc.message)
            return
        content = encode_payload(payload)
        body = serialize_body(payload)
        subscriptions = [
            s for s in self.store.subscriptions_for(message.event_name, message.store_id)
            if not self._seen(envelope, s)
        ]
        self._settle(envelope, self._fan_out(envelope, subscriptions, body, content))

    def _fan_out(
        self, envelope: Envelope, subscriptions: list[Subscription], body: bytes, content: str
    ) -> list[Outcome]:
        """Notify every subscriber, several at a time, so one slow receiver does not
        hold up the others. Only this thread touches the queue and the store."""
        if len(subscriptions) <= 1:
            return [
                self._attempt(envelope, s, delivery_uuid(envelope.message_id, s.subscription_id), 0, body, content)
                for s in subscriptions
            ]
        self.queue.extend(envelope)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=FAN_OUT_THREADS, thread_name_prefix="ae-notify")
        for subscription in subscriptions:
            self.notifiers.for_subscription(subscription)  # create notifiers here, not racing in threads
        futures = [
            self._pool.submit(self._notify, envelope, s, delivery_uuid(envelope.message_id, s.subscription_id),
                              0, body, content)
            for s in subscriptions
        ]
        for _ in as_completed(futures):
            self.queue.extend(envelope)  # a long fan-out must not let the lease run out
        return [future.result() for future in futures]

    # -- retry -----------------------------------------------------------

    def handle_retry(self, envelope: Envelope) -> None:
        try:
            message = RetryMessage.decode(envelope.body)
            payload = message.payload
        except (MalformedMessage, ValueError) as exc:
            self._park(envelope, RETRY, str(exc))
            return
        subscription = self.store.find_subscription(message.subscription_id)
        if subscription is None or not subscription.enabled:
            # Only still-enabled subscriptions are retried: the chain stops here.
            def stop() -> None:
                self.store.set_delivery_state(
                    message.uuid,
                    message.subscription_id,
                    subscription.event_name if subscription else "",
                    STOPPED,
                    message.death_count,
                    attempted=False,
                )

            self._commit(envelope, lambda: None, stop)
            return
        if self._seen(envelope, subscription):
            self._commit(envelope, lambda: None)
            return
        outcome = self._attempt(
            envelope, subscription, message.uuid, message.death_count, serialize_body(payload), message.content
        )
        self._settle(envelope, [outcome])

    # -- shared ----------------------------------------------------------

    def _seen(self, envelope: Envelope, subscription: Subscription) -> bool:
        """A redelivered message whose attempt for this subscriber is already logged
        (its ack was lost): do not deliver or log it twice."""
        return bool(envelope.message_id) and self.store.already_attempted(
            envelope.message_id or "", subscription.subscription_id
        )

    def _attempt(
        self, envelope: Envelope, subscription: Subscription, uuid: str, death_count: int, body: bytes, content: str
    ) -> Outcome:
        self.queue.extend(envelope)  # a slow subscriber must not let the lease run out
        return self._notify(envelope, subscription, uuid, death_count, body, content)

    def _notify(
        self, envelope: Envelope, subscription: Subscription, uuid: str, death_count: int, body: bytes, content: str
    ) -> Outcome:
        """One delivery attempt. Safe on a fan-out thread: touches neither queue nor store."""
        result = self.notifiers.for_subscription(subscription).notify(subscription, body, uuid)
        return Outcome(subscription, uuid, death_count, body, content, result, envelope.message_id)

    def _settle(self, envelope: Envelope, outcomes: list[Outcome]) -> None:
        follow_ups = [self._follow_up(outcome) for outcome in outcomes]

        def to_queue() -> None:
            for follow_up in follow_ups:
                if follow_up.retry is None:
                    continue  # delivered
                if follow_up.state == RETRYING:
                    self.queue.publish_retry(follow_up.retry, follow_up.delay)
                else:
                    self.queue.dead_letter(follow_up.retry.encode(), follow_up.reason, RETRY)

        def to_store() -> None:
            for outcome, follow_up in zip(outcomes, follow_ups):
                self._log(outcome, follow_up)

        self._commit(envelope, to_queue, to_store)

    def _follow_up(self, outcome: Outcome) -> "FollowUp":
        """What a result calls for next: nothing, a retry after a back-off, or the dead letters."""
        if outcome.result.success:
            return FollowUp(DELIVERED)
        sub = outcome.subscription
        next_death = self.policy.next_death_count(outcome.death_count)
        if next_death is None:
            retry = RetryMessage(sub.subscription_id, outcome.death_count, outcome.content, outcome.uuid)
            return FollowUp(DEAD_LETTERED, retry, reason=f"failed {outcome.death_count + 1} attempt(s)")
        delay = self.policy.delay_seconds(next_death)
        retry = RetryMessage(sub.subscription_id, next_death, outcome.content, outcome.uuid)
        return FollowUp(RETRYING, retry, delay, next_attempt_at=self.now() + timedelta(seconds=delay))

    def _log(self, outcome: Outcome, follow_up: "FollowUp") -> None:
        sub, result = outcome.subscription, outcome.result
        self.store.log_attempt(
            Attempt(
                uuid=outcome.uuid,
                subscription_id=sub.subscription_id,
                event_name=sub.event_name,
                success=result.success,
                status_code=result.status_code,
                response_data=result.response_data,
                serialized_data=outcome.body.decode(),
                death_count=outcome.death_count,
                duration=result.duration,
                message_id=outcome.message_id,
            )
        )
        self.store.set_delivery_state(
            outcome.uuid, sub.subscription_id, sub.event_name, follow_up.state, outcome.death_count,
            next_attempt_at=follow_up.next_attempt_at,
        )

    def _commit(
        self, envelope: Envelope, to_queue: Callable[[], None], to_store: Callable[[], None] = lambda: None
    ) -> None:
        """Place follow-up messages, write the store, then acknowledge.

        On SQLite all three are one transaction. On a broker, follow-ups are
        published before the log commits and outside the SQLite write lock: a
        crash in between repeats an attempt (same uuid) rather than losing a
        retry, and a slow broker never holds up other writers.
        """
        if self.queue.shares_store_transaction:
            with self.store.transaction():
                to_queue()
                to_store()
                self.queue.ack(envelope)
        else:
            to_queue()
            with self.store.transaction():
                to_store()
            self.queue.ack(envelope)

    def _park(self, envelope: Envelope, kind: str, reason: str) -> None:
        log.warning("dead-lettering %s message %s: %s", kind, envelope.message_id, reason)
        def to_queue() -> None:
            self.queue.dead_letter(envelope.body, reason, kind)

        self._commit(envelope, to_queue)
