"""The I/O edge of the per-endpoint state: what settles, refreshes and takes kept work.

Runs on the consumer's I/O thread, inside the store's transactions. What it
learns (states, transitions) is queued in `updates` for the event loop to
apply to its `Lanes`, so only the loop ever changes a lane.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ..messages import TriggerMessage
from ..operator_events import DISABLED, FAILING, RECOVERED, operator_trigger, raises_about, subscription_payload
from ..states import DeliveryState
from ..store import EndpointState, PendingDelivery, Store
from .circuit import Answer, CircuitRules, Transition, due_for_disable, observe
from .decisions import Settlement

log = logging.getLogger("asyncevents_cli")

#: Seconds between reads of every endpoint's state (other consumers' findings, auto-disable).
REFRESH_EVERY = 1.0
#: Seconds between looks for subscriptions with kept deliveries this consumer does not know of.
DISCOVER_EVERY = 1.0


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


#: the operator event each transition raises
OPERATOR_EVENT_OF = {Transition.OPENED: FAILING, Transition.CLOSED: RECOVERED, Transition.DISABLED: DISABLED}


class Endpoints:
    def __init__(
        self,
        rules: CircuitRules,
        clock: Callable[[], float] = time.time,
        raise_event: Callable[[TriggerMessage], object] | None = None,
    ) -> None:
        self.rules = rules
        self.clock = clock
        #: publishes an operator event (the consumer's `queue.publish_trigger`); called inside
        #: the transaction that makes the transition, on the I/O thread
        self.raise_event = raise_event
        #: (states as now stored, transitions) for the loop to apply, oldest first
        self.updates: list[tuple[list[EndpointState], list[tuple[int, Transition]], bool]] = []
        #: subscriptions the loop thinks unhealthy: all-success batches for others write nothing
        self.unhealthy: frozenset[int] = frozenset()
        self.last_refresh = 0.0
        self.last_discover = 0.0

    def record(self, store: Store, settlements: Sequence[Settlement]) -> None:
        """Inside the settle's transaction: the run of failures, circuits and deferrals after these attempts."""
        now = self.clock()
        answers: dict[int, list[Answer]] = {}
        for settlement in settlements:
            for outcome, follow in settlement.attempts:
                defer = None
                if follow.state == DeliveryState.PENDING and follow.keep is not None:
                    defer = max(0.0, follow.keep.due - now)
                answers.setdefault(outcome.subscription.subscription_id, []).append(
                    Answer(outcome.result.success, defer)
                )
        touched = [i for i, got in answers.items() if i in self.unhealthy or not all(a.success for a in got)]
        if not touched:
            return  # the fast path: healthy endpoints answering well change nothing
        current = store.lanes.endpoint_states(touched)
        changed: list[EndpointState] = []
        transitions: list[tuple[int, Transition]] = []
        for subscription_id in touched:
            before = current.get(subscription_id) or EndpointState(subscription_id)
            after, happened = observe(before, answers[subscription_id], now, self.rules)
            if after != before:
                changed.append(after)
            for transition in happened:
                self.transition(store, after, transition)
                transitions.append((subscription_id, transition))
        store.lanes.save_endpoint_states(changed)
        self.updates.append((changed, transitions, False))

    def transition(self, store: Store, state: EndpointState, transition: Transition) -> None:
        """Every circuit transition passes here, inside the transaction that makes it."""
        subscription_id = state.subscription_id
        if transition is Transition.OPENED:
            since = _when(state.failing_since or self.clock())
            log.warning(
                "subscription %s: circuit opened after %d consecutive failures (failing since %s UTC);"
                " its deliveries are held",
                subscription_id,
                state.consecutive_failures,
                since,
            )
            store.lanes.mark_pending(subscription_id, DeliveryState.HELD)
        elif transition is Transition.CLOSED:
            log.warning("subscription %s: circuit closed; its held deliveries drain", subscription_id)
            store.lanes.mark_pending(subscription_id, DeliveryState.PENDING)
        elif transition is Transition.DISABLED:
            reason = f"circuit open since {_when(state.opened_at or self.clock())} UTC: endpoint failing"
            log.warning("subscription %s disabled: %s", subscription_id, reason)
            store.lanes.auto_disable(subscription_id, reason)
        self._raise_operator_event(store, state, transition)

    def _raise_operator_event(self, store: Store, state: EndpointState, transition: Transition) -> None:
        """`ae.subscription.failing`, `.recovered` or `.disabled`, published in the transition's
        transaction (the same one on a table queue; before it commits on a broker, as retries are:
        a crash may repeat the event, never lose it). Only when some enabled subscription takes
        it, and never about an operator subscription itself (no loops)."""
        event_name = OPERATOR_EVENT_OF[transition]
        if self.raise_event is None or not store.subscriptions.has_subscribers(event_name):
            return
        sub = store.subscriptions.subscription(state.subscription_id)
        if not raises_about(sub.event_name):
            return
        now = self.clock()
        if transition is Transition.OPENED:
            since = state.failing_since or now
            reason = f"{state.consecutive_failures} failed attempts in a row"
        elif transition is Transition.CLOSED:
            since, reason = now, "an attempt succeeded"
        else:
            since = state.opened_at or now
            reason = f"circuit open since {_when(since)} UTC: endpoint failing"
        payload = subscription_payload(
            subscription_id=sub.subscription_id,
            event_name=sub.event_name,
            recipient_url=sub.recipient_url,
            since=datetime.fromtimestamp(since, UTC),
            reason=reason,
        )
        self.raise_event(operator_trigger(event_name, payload))

    def refresh(self, store: Store) -> None:
        """Every endpoint's state as stored (other consumers' findings too); disable what stayed open too long."""
        now = self.clock()
        self.last_refresh = now
        states = store.lanes.endpoint_states()
        transitions: list[tuple[int, Transition]] = []
        for state in states.values():
            if due_for_disable(state, now, self.rules) and state.next_probe is not None:
                with store.transaction():
                    self.transition(store, state, Transition.DISABLED)
                transitions.append((state.subscription_id, Transition.DISABLED))
        self.updates.append((list(states.values()), transitions, True))

    def take(
        self, store: Store, rooms: dict[int, int], probes: Sequence[int], lease_until: float
    ) -> list[tuple[PendingDelivery, bool]]:
        """Lease kept deliveries for lanes with room, and one per open circuit whose probe this consumer wins."""
        now = self.clock()
        taken: list[tuple[PendingDelivery, bool]] = []
        for subscription_id in probes:
            if store.lanes.claim_probe(subscription_id, now, now + self.rules.probe_seconds):
                taken += [(row, True) for row in store.lanes.take_pending(subscription_id, 1, now, lease_until)]
        for subscription_id, room in rooms.items():
            taken += [(row, False) for row in store.lanes.take_pending(subscription_id, room, now, lease_until)]
        return taken

    def discover(self, store: Store) -> set[int]:
        """Subscriptions with kept deliveries due now."""
        self.last_discover = self.clock()
        return set(store.lanes.due_pending(self.last_discover))
