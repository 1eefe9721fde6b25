"""Per subscription, whether an event is wanted (its filter) and the body it is sent (its format).

Pure functions of plain values, called where a trigger's subscriptions are
listed. A filter is compiled once per text (`search.filtering.compiled`) and
each event's terms are worked out once, for every filter that reads them. Each
body format is built once per event (`EventBodies`), not once per subscriber.

A stored filter that no longer parses (written by another version of `ae`)
never hides events: the event is delivered and a warning logged, once per
filter, so the operator can fix it with `ae subscriptions update ID --filter`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..envelopes import CLOUDEVENTS, CloudEventTemplate, data_body
from ..errors import InputError
from ..store import Subscription

log = logging.getLogger("asyncevents_cli")
_unreadable: set[str] = set()


class EventView:
    """One event's payload as filters read it: the body `{"data": payload}`, its terms made on demand."""

    __slots__ = ("payload", "_view")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self._view: Any = None

    def view(self) -> Any:
        if self._view is None:
            from ..search.filtering import BodyView  # loads whoosh: only once a filter is used

            self._view = BodyView({"data": self.payload})
        return self._view


def wanted(subscription: Subscription, event: EventView) -> bool:
    """Whether the subscription's filter lets the event through (no filter: always)."""
    text = subscription.payload_filter
    if not text:
        return True
    from ..search.filtering import compiled

    try:
        return compiled(text).matches(event.view())
    except InputError as exc:
        if text not in _unreadable:
            _unreadable.add(text)
            log.warning(
                "subscription %s: its filter cannot be read (%s); delivering every event",
                subscription.subscription_id,
                exc.message,
            )
        return True


def split_wanted(subscriptions: Sequence[Subscription], payload: Any) -> tuple[list[Subscription], list[int]]:
    """(the subscriptions to attempt, the ids of those whose filter held the event back)."""
    if not any(s.payload_filter for s in subscriptions):
        return list(subscriptions), []
    event = EventView(payload)
    kept: list[Subscription] = []
    held: list[int] = []
    for subscription in subscriptions:
        if wanted(subscription, event):
            kept.append(subscription)
        else:
            held.append(subscription.subscription_id)
    return kept, held


class EventBodies:
    """The bodies of one event, each format built once, for every subscriber."""

    __slots__ = ("content", "event_name", "source", "moment", "_data", "_cloudevent")

    def __init__(self, content: str, event_name: str, source: str, moment: datetime) -> None:
        self.content = content
        self.event_name = event_name
        self.source = source
        self.moment = moment
        self._data: bytes | None = None
        self._cloudevent: CloudEventTemplate | None = None

    def for_subscription(self, subscription: Subscription, uuid: str) -> bytes:
        if subscription.body_format == CLOUDEVENTS:
            if self._cloudevent is None:
                self._cloudevent = CloudEventTemplate(self.content, self.event_name, self.source, self.moment)
            return self._cloudevent.body(uuid)
        if self._data is None:
            self._data = data_body(self.content)
        return self._data
