"""The consumer's decisions, as pure functions: no queue, no store, no clock of their own.

What a message becomes (delivered, retried, dead-lettered, parked, dropped) is
decided here from plain values, and applied by `settle` at the I/O edge.
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..backoff import RetryPolicy
from ..messages import MAX_ID, RetryMessage
from ..notifiers import NotifyResult
from ..queues.base import Envelope
from ..queues.headers import GENERATION_HEADER
from ..states import DeliveryState
from ..store import PendingDelivery, Subscription

# uuids derive from (message id, subscription) so a message taken twice, after
# a consumer died mid-way, reuses them: receivers can de-duplicate on the
# Idempotency-Key header, and the trace keeps one chain.
UUID_NAMESPACE = uuidlib.UUID("5b0e2f4c-8a51-4c35-9d1b-6f0d3e7a9c21")

_NAMESPACE_BYTES = UUID_NAMESPACE.bytes


def delivery_uuid(message_id: str | None, subscription_id: int) -> str:
    """``str(uuid5(UUID_NAMESPACE, f"{message_id}:{subscription_id}"))``, computed without
    the UUID object (this runs once per attempt); a random uuid when there is no id."""
    if not message_id:
        return str(uuidlib.uuid4())
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{message_id}:{subscription_id}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode_payload(payload: Any) -> str:
    """The payload as carried in a retry message's ``content`` (strict JSON: no NaN)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def serialize_body(payload: Any) -> bytes:
    """The exact bytes POSTed and logged: ``{"data": payload}``."""
    return json.dumps({"data": payload}, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def body_of(content: str) -> bytes:
    """`serialize_body` of the payload `content` encodes (`encode_payload`), without
    serializing it again: the same bytes, since both use the same compact separators."""
    return f'{{"data":{content}}}'.encode()


def message_generation(envelope: Envelope) -> int:
    """The chain generation a retry was placed in; 0 when it carries none (or nonsense)."""
    value = envelope.headers.get(GENERATION_HEADER, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID else 0


def retry_problem(message: RetryMessage) -> str | None:
    """Why a decoded retry cannot be attempted at all, or None."""
    if not 1 <= message.subscription_id <= MAX_ID:
        return f"retry subscription_id {message.subscription_id} is out of range"
    if not 1 <= message.death_count <= MAX_ID:
        return f"retry death_count {message.death_count} is out of range (a retry's starts at 1)"
    return None


def ownership_problem(message: RetryMessage, chain: dict[str, Any] | None) -> str | None:
    """A retry must continue a chain this store started, for that same subscription."""
    if chain is None:
        return f"retry uuid {message.uuid} is not a delivery in this store"
    if chain["subscription_id"] != message.subscription_id:
        return (
            f"retry uuid {message.uuid} belongs to subscription {chain['subscription_id']}, "
            f"not {message.subscription_id}"
        )
    return None


def is_superseded(message_generation: int, chain: dict[str, Any]) -> bool:
    """A retry from before the chain's latest replay: the replay's own retry replaces it."""
    return message_generation < int(chain.get("generation") or 0)


@dataclass(frozen=True)
class Outcome:
    """One finished attempt, with what is needed to log it and to decide what follows."""

    subscription: Subscription
    uuid: str
    death_count: int
    body: bytes
    content: str
    result: NotifyResult
    message_id: str | None
    generation: int = 0


@dataclass(frozen=True)
class FollowUp:
    """The decision after one attempt, applied to the queue and the store together."""

    state: DeliveryState  # DELIVERED, RETRYING, DEAD_LETTERED, or PENDING / HELD in the store
    retry: RetryMessage | None = None  # the message to place, or to park as a dead letter
    delay: float = 0.0
    next_attempt_at: datetime | None = None
    reason: str = ""
    keep: PendingDelivery | None = None  # PENDING / HELD: the delivery kept in the store for its lane


def pending_of(outcome: Outcome, due: float) -> PendingDelivery:
    """The delivery of `outcome`, to be kept in the store and attempted again at `due` (epoch seconds)."""
    sub = outcome.subscription
    return PendingDelivery(
        outcome.uuid,
        sub.subscription_id,
        sub.event_name,
        outcome.content,
        outcome.death_count,
        outcome.generation,
        outcome.message_id,
        due,
    )


def follow_up(
    policy: RetryPolicy, outcome: Outcome, now: datetime, defer: float | None = None, held: bool = False
) -> FollowUp:
    """What a result calls for next: nothing, a retry after a back-off, or the dead letters.

    Two failures count no death, and keep the delivery in the store instead:
    - `defer` seconds the receiver asked for (a 429 or 503 with Retry-After): it said
      "later", not "never", so the delivery waits that long (PENDING);
    - `held`: the subscription's circuit is open (or this attempt was its probe): the
      delivery waits for the circuit to close (HELD).
    """
    if outcome.result.success:
        return FollowUp(DeliveryState.DELIVERED)
    if held:
        return FollowUp(DeliveryState.HELD, keep=pending_of(outcome, now.timestamp()))
    if defer is not None:
        due = now + timedelta(seconds=defer)
        return FollowUp(DeliveryState.PENDING, next_attempt_at=due, keep=pending_of(outcome, due.timestamp()))
    sub_id = outcome.subscription.subscription_id
    next_death = policy.next_death_count(outcome.death_count)
    if next_death is None:
        retry = RetryMessage(sub_id, outcome.death_count, outcome.content, outcome.uuid)
        return FollowUp(DeliveryState.DEAD_LETTERED, retry, reason=f"failed {outcome.death_count + 1} attempt(s)")
    delay = policy.delay_seconds(next_death)
    retry = RetryMessage(sub_id, next_death, outcome.content, outcome.uuid)
    return FollowUp(DeliveryState.RETRYING, retry, delay, next_attempt_at=now + timedelta(seconds=delay))


@dataclass
class Settlement:
    """What to do with one received message once its work is done.

    Exactly one of: `attempts` made (log them, place their follow-ups), `park`
    the message itself with a reason, mark a chain `stopped`, or nothing (drop:
    ack only). `release` gives the message back untouched instead of acking it.
    """

    #: None for a delivery that was kept in the store (`pending_deliveries`), not a message
    envelope: Envelope | None
    attempts: list[tuple[Outcome, FollowUp]] = field(default_factory=list)
    park: str | None = None  # the reason, when the message itself is dead-lettered
    stopped: tuple[str, int, str, int, int] | None = None  # uuid, subscription, event, death count, generation
    release: bool = False
    placed: bool = False  # its follow-ups are on the broker already (a retried settle must not repeat them)
    filtered: list[int] = field(default_factory=list)  # subscriptions whose filter held the event back
    #: deliveries left to wait in the store (no room in their lane, a Retry-After, an open circuit)
    waiting: list[tuple[PendingDelivery, DeliveryState]] = field(default_factory=list)
    #: deliveries whose attempt is still under way, detached from the message: kept leased
    #: by this consumer (`lease_until`) so that they are attempted again if it dies
    running: list[PendingDelivery] = field(default_factory=list)
    lease_until: float = 0.0
    #: kept deliveries this settlement is done with (attempted, or their chain stopped)
    finished: list[str] = field(default_factory=list)
