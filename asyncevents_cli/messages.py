"""The two wire formats, exactly as the Magento module writes them.

Trigger: a JSON array ``[event_name, "<json arguments>", store_id]``; the
arguments are themselves a JSON *string*, and the store id may be missing.

Retry: a JSON object ``{"subscription_id", "death_count", "content", "uuid"}``
where ``content`` is the payload as a JSON string.

Decoding is strict, because a consumer must be able to act on whatever it
accepts: ids within the store's integer range, a death count of 0 or more, a
uuid that is a uuid, JSON that `strict_json` accepts. Anything else raises
`MalformedMessage`, and the consumer parks the message with that reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .strict_json import JsonRejected, loads

#: Store ids are Magento's `smallint unsigned`-or-wider store ids; 2^31-1 keeps
#: them inside every integer column and every language's int.
MAX_STORE_ID = 2**31 - 1
#: The largest id or count anything stores or carries (subscription ids, log ids, a
#: message's generation and death count): a signed 64-bit integer, what SQLite's INTEGER
#: and PostgreSQL's BIGINT hold. Written here only; the store, the engine and the API import it.
MAX_ID = 2**63 - 1
MAX_DEATH_COUNT = 2**31 - 1
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DIGITS = re.compile(r"^[0-9]{1,19}$")


class MalformedMessage(InputError):
    """A message body that is not in the expected wire format."""


def whole_number(value: Any, what: str, low: int, high: int) -> int:
    """An integer field: a JSON integer, or a string of digits (PHP sends ids both ways)."""
    if isinstance(value, str) and DIGITS.match(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"{what} must be an integer, got {_show(value)}")
    if not low <= value <= high:
        raise MalformedMessage(f"{what} must be between {low} and {high}, got {value}")
    return value


def check_store_id(store_id: int) -> int:
    """A store id as `ae publish --store` and the trigger decoder accept it."""
    if isinstance(store_id, bool) or not isinstance(store_id, int) or not 0 <= store_id <= MAX_STORE_ID:
        raise InputError(f"store id must be between 0 and {MAX_STORE_ID}, got {store_id}")
    return store_id


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=repr) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _loads(data: str | bytes, what: str) -> Any:
    try:
        return loads(data)
    except JsonRejected as exc:
        raise MalformedMessage(f"{what}: {exc}") from exc


@dataclass(frozen=True)
class TriggerMessage:
    event_name: str
    arguments: dict[str, Any]
    store_id: int = 0

    def encode(self) -> bytes:
        arguments = json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)
        return json.dumps([self.event_name, arguments, self.store_id], ensure_ascii=False).encode()

    @classmethod
    def decode(cls, body: bytes) -> TriggerMessage:
        value = _loads(body, "trigger message")
        if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
            raise MalformedMessage("trigger message must be [event_name, arguments, store_id]")
        arguments = value[1]
        if isinstance(arguments, str):
            arguments = _loads(arguments, "trigger arguments") if arguments else {}
        if arguments is None or arguments == []:
            arguments = {}  # PHP's json_encode([]) of an empty argument list
        if not isinstance(arguments, dict):
            raise MalformedMessage("trigger arguments must be a JSON object")
        store_id = value[2] if len(value) == 3 and value[2] is not None else 0
        store_id = whole_number(store_id, "trigger store id", 0, MAX_STORE_ID)
        return cls(value[0], arguments, store_id)


@dataclass(frozen=True)
class RetryMessage:
    subscription_id: int
    death_count: int
    content: str  # the payload, JSON-encoded
    uuid: str

    def encode(self) -> bytes:
        return json.dumps(
            {
                "subscription_id": self.subscription_id,
                "death_count": self.death_count,
                "content": self.content,
                "uuid": self.uuid,
            }
        ).encode()

    @classmethod
    def decode(cls, body: bytes) -> RetryMessage:
        value = _loads(body, "retry message")
        if not isinstance(value, dict):
            raise MalformedMessage("retry message must be a JSON object")
        missing = [k for k in ("subscription_id", "death_count", "content", "uuid") if k not in value]
        if missing:
            raise MalformedMessage(f"retry message lacks {', '.join(missing)}")
        content, uuid = value["content"], value["uuid"]
        if not isinstance(content, str):
            raise MalformedMessage(f"retry content must be a JSON string, got {_show(content)}")
        _loads(content, "retry content")  # the payload must be JSON we can send
        if not isinstance(uuid, str) or not UUID_TEXT.match(uuid):
            raise MalformedMessage(f"retry uuid must be a uuid string, got {_show(uuid)}")
        return cls(
            subscription_id=whole_number(value["subscription_id"], "retry subscription_id", 1, MAX_ID),
            death_count=whole_number(value["death_count"], "retry death_count", 0, MAX_DEATH_COUNT),
            content=content,
            uuid=uuid,
        )

    @property
    def payload(self) -> Any:
        return loads(self.content)
