"""What one subscription's receiver has shown, and what it calls for: pure functions.

Like `backoff.py`: no I/O and no clock of its own. The store keeps each
subscription's `EndpointState` (shared by every consumer); `settle` passes the
attempts it records through `observe`, and the handler asks `route` where a
delivery goes before it is attempted.

- A run of `threshold` failed attempts opens the circuit: the subscription's
  deliveries are then held (kept, not attempted, no death counted), and one
  probe is let through every `probe_seconds`. A success closes it.
- A 429 or 503 with Retry-After defers the subscription's next attempt.
- A circuit open for `disable_after` seconds disables the subscription.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..store import EndpointState

#: Answers that say "too much, come back later"; with Retry-After they defer the lane.
OVERLOAD_STATUSES = (429, 503)


class Route(StrEnum):
    """Where a delivery goes now."""

    ATTEMPT = "attempt"  # its lane has room: attempt it now
    WAIT = "wait"  # kept in the store until its lane has room or its Retry-After passes
    HOLD = "hold"  # the circuit is open: kept, and marked held


class Transition(StrEnum):
    """A change of a circuit, each passing through `Settle.on_transition` (operator events hook in there)."""

    OPENED = "opened"
    CLOSED = "closed"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Answer:
    """What one finished attempt says about its receiver's health."""

    success: bool
    #: seconds the receiver asked to be left alone (Retry-After on a 429/503, capped), or None
    defer: float | None = None


@dataclass(frozen=True)
class CircuitRules:
    threshold: int  # consecutive failures that open the circuit
    probe_seconds: float
    disable_after: float  # seconds open before the subscription is disabled


def observe(
    state: EndpointState, answers: Sequence[Answer], now: float, rules: CircuitRules
) -> tuple[EndpointState, list[Transition]]:
    """The state after `answers` (in the order the attempts finished), and the transitions on the way."""
    transitions: list[Transition] = []
    for answer in answers:
        if answer.defer is not None:
            state = dataclasses.replace(state, deferred_until=max(state.deferred_until, now + answer.defer))
        if answer.success:
            if state.circuit_open:
                transitions.append(Transition.CLOSED)
            state = dataclasses.replace(
                state, consecutive_failures=0, failing_since=None, circuit_open=False, opened_at=None, next_probe=None
            )
            continue
        failures = state.consecutive_failures + 1
        state = dataclasses.replace(
            state,
            consecutive_failures=failures,
            failing_since=state.failing_since if state.failing_since is not None else now,
        )
        if state.circuit_open:  # a probe failed: the next one a full interval later
            state = dataclasses.replace(state, next_probe=max(state.next_probe or 0.0, now + rules.probe_seconds))
        elif failures >= rules.threshold:
            transitions.append(Transition.OPENED)
            state = dataclasses.replace(state, circuit_open=True, opened_at=now, next_probe=now + rules.probe_seconds)
    return state, transitions


def due_for_disable(state: EndpointState, now: float, rules: CircuitRules) -> bool:
    """The circuit has stayed open `disable_after` seconds: time to disable the subscription."""
    return state.circuit_open and state.opened_at is not None and now - state.opened_at >= rules.disable_after


def route(state: EndpointState | None, has_room: bool, now: float) -> Route:
    """Where a delivery to this endpoint goes now (a probe is taken from the store, never routed here)."""
    if state is not None:
        if state.circuit_open:
            return Route.HOLD
        if state.deferred_until > now:
            return Route.WAIT
    return Route.ATTEMPT if has_room else Route.WAIT


def is_healthy(state: EndpointState, now: float) -> bool:
    """Nothing the engine must consult: no failures, no circuit, no deferral still to come."""
    return state.consecutive_failures == 0 and not state.circuit_open and state.deferred_until <= now


def defer_seconds(status_code: int | None, retry_after: float | None, cap: float) -> float | None:
    """How long a receiver asked to be left alone: only a 429 or 503 asks, capped at `cap`."""
    if status_code not in OVERLOAD_STATUSES or retry_after is None:
        return None
    return min(max(retry_after, 0.0), cap)
