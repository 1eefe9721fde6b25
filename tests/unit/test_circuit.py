"""The circuit's decisions, as pure functions: tables of what happened and what follows."""

from __future__ import annotations

import pytest

from asyncevents_cli.engine.circuit import (
    Answer,
    CircuitRules,
    Route,
    Transition,
    defer_seconds,
    due_for_disable,
    observe,
    route,
)
from asyncevents_cli.store import EndpointState

RULES = CircuitRules(threshold=3, probe_seconds=30.0, disable_after=72 * 3600.0)
OK, FAIL = Answer(True), Answer(False)
HEALTHY = EndpointState(7)
OPEN = EndpointState(7, 3, 100.0, True, 100.0, 130.0)


@pytest.mark.parametrize(
    "before, answers, failures, is_open, transitions",
    [
        (HEALTHY, [OK, OK], 0, False, []),
        (HEALTHY, [FAIL, FAIL], 2, False, []),
        (HEALTHY, [FAIL, FAIL, FAIL], 3, True, [Transition.OPENED]),
        (HEALTHY, [FAIL, FAIL, OK, FAIL, FAIL], 2, False, []),  # a success resets the run
        (HEALTHY, [FAIL, FAIL, FAIL, FAIL], 4, True, [Transition.OPENED]),  # opens once
        (OPEN, [FAIL], 4, True, []),  # a failed probe keeps it open
        (OPEN, [OK], 0, False, [Transition.CLOSED]),
        (OPEN, [OK, FAIL, FAIL, FAIL], 3, True, [Transition.CLOSED, Transition.OPENED]),
    ],
)
def test_observe(
    before: EndpointState, answers: list[Answer], failures: int, is_open: bool, transitions: list[Transition]
) -> None:
    after, happened = observe(before, answers, 200.0, RULES)
    assert (after.consecutive_failures, after.circuit_open, happened) == (failures, is_open, transitions)


def test_opening_sets_the_first_probe_and_keeps_when_the_failures_began() -> None:
    after, _ = observe(HEALTHY, [FAIL], 10.0, RULES)
    after, _ = observe(after, [FAIL, FAIL], 50.0, RULES)
    assert (after.failing_since, after.opened_at, after.next_probe) == (10.0, 50.0, 80.0)


def test_a_failed_probe_puts_the_next_one_a_full_interval_later() -> None:
    after, _ = observe(OPEN, [FAIL], 200.0, RULES)
    assert after.next_probe == 230.0 and after.opened_at == 100.0


def test_a_success_forgets_the_run_and_the_circuit() -> None:
    after, _ = observe(OPEN, [OK], 200.0, RULES)
    assert after == EndpointState(7)


def test_a_retry_after_defers_the_lane_and_still_counts_a_failure() -> None:
    after, _ = observe(HEALTHY, [Answer(False, 5.0), Answer(False, 2.0)], 100.0, RULES)
    assert (after.deferred_until, after.consecutive_failures) == (105.0, 2)


@pytest.mark.parametrize(
    "state, has_room, expected",
    [
        (None, True, Route.ATTEMPT),
        (None, False, Route.WAIT),
        (HEALTHY, True, Route.ATTEMPT),
        (OPEN, True, Route.HOLD),
        (EndpointState(7, deferred_until=150.0), True, Route.WAIT),
        (EndpointState(7, deferred_until=90.0), True, Route.ATTEMPT),  # the deferral is over
        (EndpointState(7, 2), True, Route.ATTEMPT),  # failing, not open yet
    ],
)
def test_route(state: EndpointState | None, has_room: bool, expected: Route) -> None:
    assert route(state, has_room, 100.0) is expected


@pytest.mark.parametrize(
    "status, retry_after, expected",
    [
        (429, 5.0, 5.0),
        (503, 5.0, 5.0),
        (503, 7200.0, 3600.0),  # capped
        (429, None, None),  # no header: the back-off applies
        (500, 5.0, None),  # only 429 and 503 ask for time
        (None, 5.0, None),
        (429, -3.0, 0.0),
    ],
)
def test_defer_seconds(status: int | None, retry_after: float | None, expected: float | None) -> None:
    assert defer_seconds(status, retry_after, 3600.0) == expected


@pytest.mark.parametrize(
    "state, now, expected",
    [
        (OPEN, 100.0 + 72 * 3600 - 1, False),
        (OPEN, 100.0 + 72 * 3600, True),
        (HEALTHY, 1e12, False),
    ],
)
def test_due_for_disable(state: EndpointState, now: float, expected: bool) -> None:
    assert due_for_disable(state, now, RULES) is expected
