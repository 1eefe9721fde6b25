"""What a delivery's body looks like: the module's `{"data": payload}`, or a CloudEvent.

A subscription chooses its format (`ae subscribe --format`). Bodies are built
as text around the payload's JSON (`content`), which was encoded once per
event, so a second format or a second subscriber costs a string join, not
another JSON encoding.

CloudEvents, structured mode (JSON event format, spec 1.0): the body is
`application/cloudevents+json` with
- `specversion` "1.0";
- `id` the delivery uuid: the same on every retry and replay, as the
  Idempotency-Key header is, so a receiver de-duplicates on either;
- `source` the `cloudevents_source` setting (default "/ae");
- `type` the event name;
- `time` when the event was first sent to this subscription (RFC 3339, UTC);
- `datacontenttype` "application/json";
- `data` the payload.
A retry resends the bytes of its chain's first attempt, so `time` does not
move and signatures cover the same body.
"""

from __future__ import annotations

import json
from datetime import datetime

from .errors import InputError

DATA = "data"
CLOUDEVENTS = "cloudevents"
FORMATS = (DATA, CLOUDEVENTS)
CONTENT_TYPES = {DATA: "application/json", CLOUDEVENTS: "application/cloudevents+json"}
SPEC_VERSION = "1.0"


def check_format(name: str) -> str:
    """A body format by name; InputError (exit 2) for any other."""
    if name not in FORMATS:
        raise InputError(f"unknown format {name!r}: use {' or '.join(FORMATS)}")
    return name


def content_type(body_format: str) -> str:
    return CONTENT_TYPES.get(body_format, CONTENT_TYPES[DATA])


def data_body(content: str) -> bytes:
    """`{"data": payload}` from the payload's compact JSON, as the module sends it."""
    return f'{{"data":{content}}}'.encode()


def rfc3339(moment: datetime) -> str:
    """UTC with microseconds and a Z, as CloudEvents' `time` wants it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CloudEventTemplate:
    """One event's CloudEvents body, less its id: built once per event, finished per
    delivery uuid (`body(uuid)`), since only the id differs between subscribers."""

    __slots__ = ("_tail",)

    def __init__(self, content: str, event_name: str, source: str, moment: datetime) -> None:
        dump = json.dumps
        self._tail = (
            f',"source":{dump(source)},"type":{dump(event_name)},"time":"{rfc3339(moment)}",'
            f'"datacontenttype":"application/json","data":{content}}}'
        ).encode()

    def body(self, uuid: str) -> bytes:
        # a delivery uuid is hex and dashes: nothing in it needs escaping
        return b'{"specversion":"' + SPEC_VERSION.encode() + b'","id":"' + uuid.encode() + b'"' + self._tail


def is_cloudevent(body: str | bytes | None) -> bool:
    """Whether a logged body is a CloudEvent (a retry reuses it as it was sent)."""
    if not body:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("specversion") == SPEC_VERSION and "data" in value
